"""Password reset links: single-use, expiring, kept only as a hash."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class PasswordReset(Model):
    """A "forgot password" link sent to an account's address.

    Only a hash of its token is stored, so a database dump hands out no working link.
    """

    id = fields.IntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    user = fields.ForeignKeyField(
        "models.User", related_name="password_resets", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    # Where it was asked from, for the account's owner and the rate limit.
    address = fields.CharField(max_length=64, default="")

    class Meta:
        table = "password_resets"
        indexes = (("user_id", "created_at"), ("address", "created_at"))
