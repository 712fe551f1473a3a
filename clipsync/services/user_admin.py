"""Administering accounts: listing, changing role, category or active state, invites.

Only admins administer accounts. A person belongs to one primary category
(`categoryRole`) and may belong to others (`categories`: every one, the primary
included; services/memberships.py). A role or category change bumps the user's token
version, so every token issued before stops working at once, and revokes their
sign-in sessions, so no refresh token makes new ones: they sign in again.
Deactivating an account does the same. The last active admin can neither be
demoted nor deactivated, so a ClipSync can never lock its administrators out: not
even by two admins demoting each other at the same moment (see `update`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from clipsync import events
from clipsync.errors import Conflict, Forbidden, NotFound, ValidationFailed
from clipsync.models import Invite, Role, User
from clipsync.plugins import PluginHost
from clipsync.services import memberships, notifications, quotas
from clipsync.services.accounts import normalize_email
from clipsync.services.auth_sessions import end_sessions
from clipsync.services.moderation import record
from clipsync.services.notification_types import INVITE, Message
from clipsync.settings import Settings

MAX_INVITE_HOURS = 24 * 30
ACTIVE_ADMIN: dict[str, Any] = {"role": Role.ADMIN, "is_active": True}


def require_admin(user: User) -> User:
    if user.role != Role.ADMIN:
        raise Forbidden("Only administrators can manage accounts.")
    return user


def hash_invite(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_admin_json(user: User) -> dict[str, Any]:
    """An account as administrators see it; `categories` as `memberships.attach` loaded."""
    return user.to_public() | {
        "categories": memberships.categories_of(user),
        "active": user.is_active,
        "createdAt": user.created_at.isoformat() if user.created_at else None,
        "lastLoginAt": user.last_login_at.isoformat() if user.last_login_at else None,
        "locked": bool(user.locked_until and user.locked_until > datetime.now(UTC)),
        # null: the [quotas] default; 0: unlimited.
        "storageQuotaBytes": user.storage_quota_bytes,
        "dailyUploadQuotaBytes": user.daily_upload_quota_bytes,
    }


def invite_json(invite: Invite) -> dict[str, Any]:
    return {
        "id": invite.id,
        "categoryRole": invite.category,
        "role": str(invite.role),
        "createdAt": invite.created_at.isoformat() if invite.created_at else None,
        "expiresAt": invite.expires_at.isoformat(),
        "usedAt": invite.used_at.isoformat() if invite.used_at else None,
        "usedBy": invite.used_by_id,
    }


class UserAdminService:
    def __init__(self, settings: Settings, plugins: PluginHost) -> None:
        self.settings = settings
        self.plugins = plugins

    async def list(
        self, admin: User, page: int, page_size: int, search: str | None = None
    ) -> tuple[list[User], int]:
        require_admin(admin)
        query = User.all()
        if search:
            query = query.filter(Q(email__icontains=search.strip()) | Q(category=search.strip()))
        total = await query.count()
        users = await query.order_by("email").offset((page - 1) * page_size).limit(page_size)
        await memberships.attach(users)
        return list(users), total

    async def update(self, admin: User, user_id: Any, changes: dict[str, Any]) -> User:
        """Apply `categoryRole`, `categories`, `role`, `active` and/or the quotas to an account.

        Quotas (`storageQuotaBytes`, `dailyUploadQuotaBytes`: bytes, 0 for unlimited,
        null for the `[quotas]` default) change no rights: they sign nobody out.
        """
        require_admin(admin)
        unknown = set(changes) - {"categoryRole", "categories", "role", "active", *quotas.OVERRIDES}
        if unknown:
            raise ValidationFailed(
                f"Unknown field {sorted(unknown)[0]!r}: send categoryRole, categories, role, "
                "active, storageQuotaBytes or dailyUploadQuotaBytes."
            )
        if not changes:
            raise ValidationFailed("Send categoryRole, role, active or a quota to change.")
        category, role, active = self._parse(changes)
        extra = (
            memberships.parse_categories(self.settings, changes["categories"])
            if "categories" in changes
            else None
        )
        limits = quotas.parse_overrides(changes)
        if not str(user_id).isdigit():
            raise NotFound("There is no such account.")
        async with in_transaction():
            admins = await self._lock_admins()
            if admin.id not in admins:
                raise Forbidden("Only administrators can manage accounts.")
            user = await User.filter(id=user_id).select_for_update().first()
            if user is None:
                raise NotFound("There is no such account.")
            stops_being_admin = user.id in admins and (
                (role is not None and role != Role.ADMIN) or active is False
            )
            if stops_being_admin and len(admins) <= 1:
                raise Conflict("This is the last administrator: make someone else an admin first.")
            old_extra = await memberships.stored_extra(user.id)
            old = {
                "categoryRole": user.category, "role": str(user.role), "active": user.is_active,
                "categories": [user.category, *old_extra],
            }  # fmt: skip
            if category is not None:
                user.category = category
            if role is not None:
                user.role = role
            if active is not None:
                user.is_active = active
            # The other categories: as sent, or as they were (less a new primary one).
            _, new_extra = await memberships.replace_extra(
                user, extra if extra is not None else old_extra
            )
            new = {
                "categoryRole": user.category, "role": str(user.role), "active": user.is_active,
                "categories": [user.category, *new_extra],
            }  # fmt: skip
            changed = {k: (old[k], new[k]) for k in old if old[k] != new[k]}
            quota_changes = {
                name: {"old": getattr(user, column), "new": limits[column]}
                for name, column in quotas.OVERRIDES.items()
                if column in limits and getattr(user, column) != limits[column]
            }
            if quota_changes:
                for column, value in limits.items():
                    setattr(user, column, value)
                await user.save(update_fields=list(limits))
            if changed:
                await user.save(update_fields=["category", "role", "is_active"])
                # Any change of who someone is or may see ends their sessions.
                await User.filter(id=user.id).update(token_version=F("token_version") + 1)
                await end_sessions(user.id)
                await user.refresh_from_db()
                if stops_being_admin and not await User.filter(**ACTIVE_ADMIN).exists():
                    # The locks already rule this out on PostgreSQL; on SQLite, which has
                    # none, this count runs under the write lock and so is current.
                    raise Conflict(
                        "This is the last administrator: make someone else an admin first."
                    )
            elif quota_changes:
                # No rights changed: nobody is signed out.
                await record(
                    admin, "user_update", target=user, category=user.category, **quota_changes
                )
        if not changed:
            if quota_changes:
                # Committed: caches drop the old row (see clipsync/cache).
                await events.publish("account.quota_changed", userId=user.id)
            await memberships.attach([user])
            return user
        await record(
            admin, "user_update", target=user, category=user.category, **quota_changes,
            **{k: {"old": o, "new": n} for k, (o, n) in changed.items()},
        )  # fmt: skip
        if "categoryRole" in changed:
            old_category, new_category = changed["categoryRole"]
            await self.plugins.notify(
                "user_category_changed", user=user, old=old_category, new=new_category
            )
        # Live streams of the account end now rather than at their next check.
        await events.publish("account.sessions_ended", userId=user.id)
        # The person hears of it (a security notification, always sent).
        names = {
            "categoryRole": "category", "role": "role", "active": "active",
            "categories": "categories",
        }  # fmt: skip
        await events.publish(
            "account.access_changed",
            userId=user.id,
            **{names[k]: new for k, (_old, new) in changed.items()},
        )
        await memberships.attach([user])
        return user

    @staticmethod
    async def _lock_admins() -> set[int]:
        """The active administrators' ids, their rows locked until the transaction ends.

        Two admins demoting each other at once would otherwise each count two admins
        and both succeed. On PostgreSQL the second waits here for the first to commit,
        then sees one admin fewer. Rows are locked in id order, so two such changes
        never deadlock. SQLite has no row locks: one worker runs one transaction at a
        time, and of two workers whose transactions overlap the second cannot write
        over what it read (SQLite refuses it), so neither ends with no admin.
        """
        # Whole rows: Tortoise drops FOR UPDATE from a values_list() query.
        rows = await User.filter(**ACTIVE_ADMIN).order_by("id").select_for_update()
        return {row.id for row in rows}

    def _parse(self, changes: dict[str, Any]) -> tuple[str | None, Role | None, bool | None]:
        category = role = active = None
        if "categoryRole" in changes:
            value = changes["categoryRole"]
            if not isinstance(value, str) or self.settings.category(value) is None:
                names = ", ".join(c.name for c in self.settings.categories)
                raise ValidationFailed(
                    f"Choose one of these categories: {names}.", field="categoryRole"
                )
            category = value
        if "role" in changes:
            try:
                role = Role(changes["role"])
            except ValueError:
                raise ValidationFailed(
                    "role is one of admin, editor, user.", field="role"
                ) from None
        if "active" in changes:
            if not isinstance(changes["active"], bool):
                raise ValidationFailed("active is true or false.", field="active")
            active = changes["active"]
        return category, role, active

    # --- invites --------------------------------------------------------------------

    async def create_invite(
        self, admin: User, category: Any, role: Any, expires_in_hours: Any, email: Any = None
    ) -> tuple[Invite, str]:
        """A new single-use invite; the token is returned once and only its hash kept.

        With `email`, the link is also sent to that address (by the email channel, so
        it must be set up), and the audit entry names it.
        """
        require_admin(admin)
        address = await self._invitee(email) if email not in (None, "") else None
        category_name, role_value, _ = self._parse(
            {
                "categoryRole": category or self.settings.default_category.name,
                "role": role or "user",
            }
        )
        hours = expires_in_hours if expires_in_hours is not None else 72
        if (
            isinstance(hours, bool)
            or not isinstance(hours, int)
            or not 1 <= hours <= MAX_INVITE_HOURS
        ):
            raise ValidationFailed(
                f"expiresInHours is a whole number from 1 to {MAX_INVITE_HOURS}.",
                field="expiresInHours",
            )
        token = secrets.token_urlsafe(32)
        invite = await Invite.create(
            token_hash=hash_invite(token),
            category=category_name,
            role=role_value,
            created_by=admin,
            expires_at=datetime.now(UTC) + timedelta(hours=hours),
        )
        sent_to = {"sentTo": address} if address else {}
        await record(
            admin, "invite_create", category=category_name, role=str(role_value),
            invite=invite.id, **sent_to,
        )  # fmt: skip
        if address:
            await self._send_invite(admin, invite, token, address)
        return invite, token

    @staticmethod
    async def _invitee(email: Any) -> str:
        """The address an invite is mailed to: valid, with no account yet, email set up."""
        address = normalize_email(email)
        if not notifications.email_enabled():
            raise Conflict(
                "Email is not set up on this server ([plugins.notify_email] host): create "
                "the invite without an address and send the link yourself."
            )
        if await User.filter(email=address).exists():
            raise Conflict(f"{address} already has an account.", details={"field": "email"})
        return address

    async def _send_invite(self, admin: User, invite: Invite, token: str, address: str) -> None:
        site = self.settings.web.site_name
        label = self.settings.category(invite.category)
        category = label.label if label is not None else invite.category
        until = invite.expires_at.strftime("%d %B %Y, %H:%M UTC")
        await notifications.deliver(
            Message(
                None,
                INVITE,
                f"You are invited to {site}",
                f"{admin.email} invites you to {site}, to watch and share videos with "
                f"{category}. The link works once, until {until}.",
                f"/register?invite={token}",
                email=address,
                data={"invitedBy": admin.email, "category": category, "expiresAt": until},
            )
        )

    async def list_invites(self, admin: User) -> list[Invite]:
        require_admin(admin)
        return list(await Invite.all().order_by("-created_at").limit(200))

    async def revoke_invite(self, admin: User, invite_id: Any) -> None:
        require_admin(admin)
        invite = await Invite.get_or_none(id=invite_id) if str(invite_id).isdigit() else None
        if invite is None:
            raise NotFound("There is no such invite.")
        if invite.used_at is not None:
            raise Conflict("This invite has been used already: there is nothing to revoke.")
        await invite.delete()
        await record(admin, "invite_revoke", category=invite.category, invite=invite.id)
