"""The kinds of notification ClipSync sends, and each person's choices about them.

Every type is listed here once, with who hears it, what it is called on the
preferences page, and whether each per-person channel ("inapp", "email") is on by
default. A person's choice is stored only where it differs from the default
(`NotificationPreference`); security types cannot be turned off.

`[notifications] email_off_by_default` and `inapp_off_by_default` change the
defaults of a whole install (for example, to mail members about every new video).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clipsync.errors import ValidationFailed
from clipsync.models import NotificationPreference, Role, User
from clipsync.settings import Settings

# The channels a person chooses per type. Webhooks are not per person (an admin
# registers them for the whole install), so they have no preference.
CHANNELS = ("inapp", "email")


@dataclass(frozen=True)
class Message:
    """What one person is told, on every channel they chose for its type."""

    # The person; None for a message to an address only (an invite), which only
    # channels that reach addresses (email) deliver.
    user_id: int | None
    type: str
    title: str
    body: str
    # A path of this site (`/watch/<id>`); channels that leave the site make it absolute
    # with `[server] public_url`.
    url: str
    video_id: Any = None
    # The address of a message without a person.
    email: str = ""
    # More for the templates of a type (an invite's link and expiry, ...).
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotificationType:
    name: str
    # Who it is for: "uploader", "moderators", "members", "security" or "admins".
    audience: str
    # What the preferences page calls it.
    label: str
    email_by_default: bool = True
    inapp_by_default: bool = True
    # Always sent, on every channel: the preferences page shows it without a switch.
    mandatory: bool = False
    # Email for it is batched: at most one mail per `[notifications] digest_minutes`.
    digest: bool = False


TYPES: dict[str, NotificationType] = {
    t.name: t
    for t in (
        NotificationType("video.ready", "uploader", "My video is ready to watch"),
        NotificationType("video.failed", "uploader", "My video could not be processed"),
        NotificationType("video.approved", "uploader", "My video was approved"),
        NotificationType("video.rejected", "uploader", "My video was rejected"),
        NotificationType("video.moved", "uploader", "My video was moved to another category"),
        # Per person, like the uploader's: the one it was shared with (services/grants.py).
        NotificationType("video.shared", "uploader", "Someone shared a video with me"),
        NotificationType("video.awaiting", "moderators", "A video awaits my decision", digest=True),
        NotificationType(
            "video.published",
            "members",
            "A new video was published in my category",
            email_by_default=False,
        ),
        NotificationType(
            "account.password_changed", "security", "My password was changed", mandatory=True
        ),
        NotificationType(
            "account.new_sign_in", "security", "A sign-in from a new device", mandatory=True
        ),
        NotificationType(
            "account.two_factor_changed",
            "security",
            "Two-factor sign-in was turned on or off",
            mandatory=True,
        ),
        NotificationType(
            "account.access_changed",
            "security",
            "My role or category was changed",
            mandatory=True,
        ),
        # Per person, like the uploader's: the one answered or named hears it.
        NotificationType("comment.reply", "uploader", "Someone replied to my comment"),
        NotificationType("comment.mention", "uploader", "Someone mentioned me in a comment"),
        NotificationType(
            "account.email_changed",
            "security",
            "My email address was changed",
            mandatory=True,
        ),
        NotificationType("admin.transcode_failed", "admins", "A transcode failed for good"),
        NotificationType("admin.storage_low", "admins", "Storage or disk space is nearly full"),
        NotificationType("admin.backup_failed", "admins", "A scheduled backup failed"),
    )
}

# Sent to an address, not to a person's choices: an invitation to create an account.
INVITE = "account.invite"
# Sent to an address, not to a person's choices: the link that confirms a new email.
EMAIL_CHANGE = "account.email_change"


def types_for(user: User) -> list[NotificationType]:
    """The types this person can receive (moderation and admin ones only for those roles)."""
    wanted = {"uploader", "members", "security"}
    if user.role in (Role.ADMIN, Role.EDITOR):
        wanted.add("moderators")
    if user.role == Role.ADMIN:
        wanted.add("admins")
    return [t for t in TYPES.values() if t.audience in wanted]


def default(settings: Settings, kind: NotificationType, channel: str) -> bool:
    """Whether `channel` is on for `kind` for someone who never chose."""
    if kind.mandatory:
        return True
    options = settings.notifications
    if channel == "email":
        return kind.email_by_default and kind.name not in options.email_off_by_default
    return kind.inapp_by_default and kind.name not in options.inapp_off_by_default


async def preferences(settings: Settings, user: User) -> dict[str, dict[str, bool]]:
    """`{"<type>": {"inapp": bool, "email": bool}}` for every type the person can get."""
    stored = {
        (p.type, p.channel): p.enabled for p in await NotificationPreference.filter(user_id=user.id)
    }
    return {
        kind.name: {
            channel: kind.mandatory
            or stored.get((kind.name, channel), default(settings, kind, channel))
            for channel in CHANNELS
        }
        for kind in types_for(user)
    }


async def chosen(settings: Settings, messages: list[Message], channel: str) -> list[Message]:
    """The messages whose person wants them on `channel`, with one query for them all.

    Messages to an address only, types outside the catalogue (a plugin's own) and
    channels without a per-person choice (webhooks) all go out.
    """
    if channel not in CHANNELS:
        return list(messages)
    people = {m.user_id for m in messages if m.user_id is not None}
    kinds = {m.type for m in messages}
    stored = {
        (p.user_id, p.type): p.enabled
        for p in await NotificationPreference.filter(
            user_id__in=people, type__in=kinds, channel=channel
        )
    } if people else {}  # fmt: skip

    def wanted(message: Message) -> bool:
        kind = TYPES.get(message.type)
        if message.user_id is None or kind is None or kind.mandatory:
            return True
        mine = stored.get((message.user_id, message.type))
        return mine if mine is not None else default(settings, kind, channel)

    return [m for m in messages if wanted(m)]


def parse_changes(user: User, body: Any) -> list[tuple[str, str, bool]]:
    """Check a `PUT /api/notifications/preferences` body: `(type, channel, on)` triples.

    Only what is sent changes; an unknown type or channel, a type the person cannot
    receive, a value that is not true/false, or turning off a security type is refused
    as a whole, so nothing is half saved.
    """
    if not isinstance(body, dict) or not body:
        raise ValidationFailed(
            'Send {"<type>": {"inapp": true|false, "email": true|false}} for the types to change.'
        )
    allowed = {t.name: t for t in types_for(user)}
    changes = []
    for name, channels in body.items():
        kind = allowed.get(name)
        if kind is None:
            raise ValidationFailed(
                f"Unknown notification type {str(name)[:64]!r}: choose from {', '.join(allowed)}.",
                field=str(name)[:64],
            )
        if not isinstance(channels, dict) or not channels:
            raise ValidationFailed(
                f'{name}: send {{"inapp": true|false, "email": true|false}}.', field=name
            )
        for channel, on in channels.items():
            if channel not in CHANNELS:
                raise ValidationFailed(
                    f"{name}: the channels are {' and '.join(CHANNELS)}.", field=name
                )
            if not isinstance(on, bool):
                raise ValidationFailed(f"{name}.{channel} is true or false.", field=name)
            if kind.mandatory and not on:
                raise ValidationFailed(
                    f"{name} is a security notification: it cannot be turned off.", field=name
                )
            changes.append((name, channel, on))
    return changes


async def update_preferences(
    settings: Settings, user: User, body: Any
) -> dict[str, dict[str, bool]]:
    """Apply a preferences change (see `parse_changes`); returns the whole new set."""
    for name, channel, on in parse_changes(user, body):
        if on == default(settings, TYPES[name], channel):
            await NotificationPreference.filter(
                user_id=user.id, type=name, channel=channel
            ).delete()
        else:
            await NotificationPreference.update_or_create(
                defaults={"enabled": on}, user_id=user.id, type=name, channel=channel
            )
    return await preferences(settings, user)


async def turn_off(user_id: int, type_name: str, channel: str) -> bool:
    """Turn one type off on one channel (an unsubscribe link); False when it cannot be."""
    kind = TYPES.get(type_name)
    if kind is None or kind.mandatory or channel not in CHANNELS:
        return False
    await NotificationPreference.update_or_create(
        defaults={"enabled": False}, user_id=user_id, type=type_name, channel=channel
    )
    return True
