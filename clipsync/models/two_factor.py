"""Two-factor recovery codes: single-use, kept only as hashes."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class RecoveryCode(Model):
    """One of the ten codes shown once at enrolment, for when the phone is lost."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField(
        "models.User", related_name="recovery_codes", on_delete=fields.CASCADE
    )
    code_hash = fields.CharField(max_length=64)
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "recovery_codes"
        unique_together = (("user_id", "code_hash"),)
