"""Email changes waiting for the new address to confirm them."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class EmailChange(Model):
    """A change of a person's email, made only once the link sent to the new one is used."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField(
        "models.User", related_name="email_changes", on_delete=fields.CASCADE
    )
    new_email = fields.CharField(max_length=254)
    # Only a hash of the link's token is kept.
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "email_changes"
