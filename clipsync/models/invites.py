from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from clipsync.models.users import Role


class Invite(Model):
    """A single-use, expiring registration link that presets category and role."""

    id = fields.IntField(primary_key=True)
    # Only a hash is kept: a database dump does not hand out working invites.
    token_hash = fields.CharField(max_length=64, unique=True)
    category = fields.CharField(max_length=64)
    role = fields.CharEnumField(Role, max_length=16, default=Role.USER)
    created_by = fields.ForeignKeyField(
        "models.User", related_name="invites_created", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    used_by = fields.ForeignKeyField(
        "models.User", related_name="invite_used", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "invites"
