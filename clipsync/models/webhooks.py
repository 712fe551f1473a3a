"""Webhooks: URLs an admin registered to hear about events."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Webhook(Model):
    """A URL that gets a signed POST for each event of the types it asked for."""

    id = fields.IntField(primary_key=True)
    url = fields.CharField(max_length=2048)
    # The HMAC-SHA256 key for the signature header; shown once, when it is created.
    secret = fields.CharField(max_length=128)
    # Event names (`video.approved`, ...) this URL hears.
    events = fields.JSONField(default=list)
    # "json" (ClipSync's own body) or "slack", "mattermost", "teams" (their
    # incoming-webhook bodies).
    format = fields.CharField(max_length=16, default="json")
    description = fields.CharField(max_length=200, default="")
    active = fields.BooleanField(default=True)
    created_by = fields.ForeignKeyField(
        "models.User", related_name="webhooks_created", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "webhooks"
