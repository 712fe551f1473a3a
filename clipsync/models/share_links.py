"""Share links: a URL that opens one video until it expires or is revoked."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ShareLink(Model):
    """A link to `video`; only the SHA-256 of its token is kept."""

    id = fields.IntField(primary_key=True)
    video = fields.ForeignKeyField(
        "models.Video", related_name="share_links", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    created_by = fields.ForeignKeyField(
        "models.User", related_name="share_links_made", null=True, on_delete=fields.SET_NULL
    )
    # A bcrypt hash when the link asks for a password.
    password_hash = fields.CharField(max_length=255, null=True)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    uses = fields.IntField(default=0)

    class Meta:
        table = "share_links"
        indexes = (("video_id", "created_at"),)


class ShareLinkUse(Model):
    """One opening of a share link: when, from where, and by whom when signed in."""

    id = fields.IntField(primary_key=True)
    link = fields.ForeignKeyField(
        "models.ShareLink", related_name="use_log", on_delete=fields.CASCADE
    )
    user = fields.ForeignKeyField(
        "models.User", related_name="share_link_uses", null=True, on_delete=fields.SET_NULL
    )
    address = fields.CharField(max_length=64, default="")
    user_agent = fields.CharField(max_length=255, default="")
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "share_link_uses"
        indexes = (("link_id", "at"),)
