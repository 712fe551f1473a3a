from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    """One decision someone made: who, when, what, on which video or account, and why."""

    id = fields.IntField(primary_key=True)
    actor = fields.ForeignKeyField(
        "models.User", related_name="audit_entries", null=True, on_delete=fields.SET_NULL
    )
    # Kept as text too, so the record survives the actor's account being deleted.
    actor_email = fields.CharField(max_length=254)
    action = fields.CharField(max_length=32, db_index=True)
    video = fields.ForeignKeyField(
        "models.Video", related_name="audit_entries", null=True, on_delete=fields.SET_NULL
    )
    video_title = fields.CharField(max_length=200, default="")
    # The category the decision was made in, so editors see their category's record.
    category = fields.CharField(max_length=64, null=True, db_index=True)
    target_user = fields.ForeignKeyField(
        "models.User", related_name="audit_about", null=True, on_delete=fields.SET_NULL
    )
    reason = fields.TextField(default="")
    details = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "audit_log"
        ordering = ["-created_at", "-id"]
