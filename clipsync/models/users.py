from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    USER = "user"


class User(Model):
    id = fields.IntField(primary_key=True)
    # Stored case-folded, so `Ann@Example.org` and `ann@example.org` are one account.
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=255)
    role = fields.CharEnumField(Role, max_length=16, default=Role.USER)
    category = fields.CharField(max_length=64, db_index=True)
    # Part of every token; bumping it signs the user out everywhere.
    token_version = fields.IntField(default=1)
    is_active = fields.BooleanField(default=True)
    # For administrators to see: failed sign-ins since the last good one, and until
    # when some client address must wait before trying this account again. Neither
    # holds up the owner: waits are per address (see models/sign_ins.py).
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)
    # The name shown across the UI instead of the email ("" until they choose one).
    display_name = fields.CharField(max_length=80, default="")
    # The avatar image in the store (see storage/keys.py), None for none.
    avatar_key = fields.CharField(max_length=512, null=True)
    # Two-factor (TOTP, RFC 6238): the shared secret, sealed with the server's key,
    # set while enrolling; on once `totp_enabled_at` is set. `totp_last_step`: the
    # time step of the last code accepted, so no code works twice.
    totp_secret = fields.CharField(max_length=255, null=True)
    totp_enabled_at = fields.DatetimeField(null=True)
    totp_last_step = fields.BigIntField(null=True)
    # Quotas set by an admin for this person; None: the defaults of [quotas].
    storage_quota_bytes = fields.BigIntField(null=True)
    daily_upload_quota_bytes = fields.BigIntField(null=True)

    class Meta:
        table = "users"

    def __str__(self) -> str:
        return self.email

    def to_public(self) -> dict[str, object]:
        """What the API shows of a user: never the hash or the lockout counters.

        `displayName` is the name to show (services/profiles.py `display_name_of`);
        `avatarUrl` is null without an avatar.
        """
        from clipsync.services.profiles import avatar_url, display_name_of

        return {
            "id": self.id,
            "email": self.email,
            "displayName": display_name_of(self),
            "avatarUrl": avatar_url(self),
            "role": str(self.role),
            "categoryRole": self.category,
        }
