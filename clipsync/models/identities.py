"""Accounts at outside identity providers (single sign-on) linked to ClipSync users."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ExternalIdentity(Model):
    """A person known to an OpenID provider as `subject` of `issuer`, signed in as `user`.

    The pair (issuer, subject) is the provider's stable name for the person; the email
    may change there, so it is kept only to show and to link a first sign-in.
    """

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField(
        "models.User", related_name="external_identities", on_delete=fields.CASCADE
    )
    # The auth plugin that made the link, such as "auth_oidc".
    provider = fields.CharField(max_length=64)
    issuer = fields.CharField(max_length=255)
    subject = fields.CharField(max_length=255)
    email = fields.CharField(max_length=320, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_sign_in_at = fields.DatetimeField(null=True)

    class Meta:
        table = "external_identities"
        unique_together = (("issuer", "subject"),)
