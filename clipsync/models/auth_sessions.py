"""Sign-in sessions: one per sign-in, holding its refresh token, seen and ended by its owner."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuthSession(Model):
    """A signed-in device: short access tokens name it (`sid`); its refresh token renews them.

    Only a hash of the current refresh token is kept. The session slides forward
    with each refresh (`expires_at`) but never past `ends_at`.
    """

    # Random, URL-safe: the `sid` claim of the access tokens issued for it.
    id = fields.CharField(max_length=43, primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="sessions", on_delete=fields.CASCADE)
    # SHA-256 of the refresh token that renews it now.
    refresh_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(auto_now_add=True)
    # Sliding: `[auth] session_days` after the last refresh, capped by `ends_at`.
    expires_at = fields.DatetimeField()
    # `[auth] session_max_days` after it started, whatever happens.
    ends_at = fields.DatetimeField()
    # The device as a person recognises it ("Firefox 133 on Windows") and the address.
    device = fields.CharField(max_length=120, default="")
    address = fields.CharField(max_length=64, default="")
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "auth_sessions"
        indexes = (("user_id", "revoked_at"),)


class UsedRefreshToken(Model):
    """A refresh token already exchanged for a new one.

    Presenting it again means someone else holds a copy: its whole session ends.
    """

    token_hash = fields.CharField(max_length=64, primary_key=True)
    session = fields.ForeignKeyField(
        "models.AuthSession", related_name="used_tokens", on_delete=fields.CASCADE
    )
    used_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "used_refresh_tokens"
