from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class RevokedToken(Model):
    """A signed-out session token, refused until it would have expired anyway."""

    token_id = fields.CharField(max_length=64, primary_key=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "revoked_tokens"
