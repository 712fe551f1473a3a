from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class SignInFailures(Model):
    """Failed sign-ins to one email from one client address, and how long it must wait.

    Keyed by the email as typed (case-folded), not by account, so an address that
    does not exist is held up exactly like one that does; and by client address, so
    a stranger's failures never hold up the owner signing in from elsewhere.
    """

    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254)
    # An IPv4 or IPv6 address as the server sees it (after trusted proxies).
    address = fields.CharField(max_length=64)
    # Attempts counted so far, each one counted when it starts (see rate_limit.py).
    failures = fields.IntField(default=0)
    wait_until = fields.DatetimeField(null=True)
    last_failed_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "sign_in_failures"
        unique_together = (("email", "address"),)
