from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

# The one row of `site_state`; the migration that made the table inserted it.
SITE_STATE_ID = 1


class SiteState(Model):
    """Facts about the install as a whole, in one row.

    `set_up` turns true when the first administrator is created and never turns back,
    so the unauthenticated `/setup` page stays closed even if no administrator is
    left (`clipsync user create --role admin` is the way back in then).
    """

    id = fields.IntField(primary_key=True)
    set_up = fields.BooleanField(default=False)

    class Meta:
        table = "site_state"


class SiteAlert(Model):
    """When an alert to the admins (disk nearly full, ...) was last sent.

    Alerts from periodic checks go out at most once a day each; this row remembers.
    """

    name = fields.CharField(max_length=64, primary_key=True)
    last_sent_at = fields.DatetimeField()

    class Meta:
        table = "site_alerts"
