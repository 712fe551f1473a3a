"""Quotas: how much one person may keep and upload, and how fast accounts are made.

`[quotas]` sets the defaults; an administrator may give one person other limits
(`User.storage_quota_bytes`, `User.daily_upload_quota_bytes`: None follows the
default, 0 is unlimited, as 0 is in the settings). Every way in is checked *before*
a byte is stored, with the size the client declares: a form upload's
`Content-Length` (and again as it streams, for a body sent without one), a tus
upload's `Upload-Length`, a presigned upload's `size`. What counts:

- storage: the sizes of the person's videos (the uploaded sources, as `Video.size`
  records them; renditions made from them are the server's cost, not theirs), their
  videos' captions, and what unfinished resumable uploads will still bring;
- the daily allowance: what they uploaded in the last 24 hours, a sliding window, so
  a refusal can say at what time enough frees up. A deleted video leaves the window
  with its row;
- uploads never registered (rows in UPLOADED, unfinished tus uploads): at most
  `max_unregistered_uploads`, so a script cannot park files without titles.

A refusal says how much is left and, for the daily allowance, when: 413 when the
file can never fit (larger than the quota itself, or than the storage left), 429
with `Retry-After` when waiting helps. Two uploads started at the same moment are
each checked against what is stored then; the per-upload size limit and the disk
reserve (`services/disk_space.py`) still bound what such a race can add.

Registrations per client address are counted from the sign-in session every
registration opens (its address, in whichever store keeps sessions), so every
worker and host shares the count without a table of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tortoise.functions import Sum

from clipsync.errors import ClipSyncError, TooManyRequests, ValidationFailed
from clipsync.models import Caption, ResumableUpload, User, Video, VideoStatus
from clipsync.settings import Settings
from clipsync.sizes import format_size

if TYPE_CHECKING:
    from clipsync.services.auth_sessions import AuthSessions

DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)
# The admin API's names of the per-user overrides, and the fields that keep them.
OVERRIDES = {
    "storageQuotaBytes": "storage_quota_bytes",
    "dailyUploadQuotaBytes": "daily_upload_quota_bytes",
}
# The largest value a BigIntField holds.
MAX_BYTES = 2**63 - 1


class QuotaExceeded(ClipSyncError):
    """413: the upload would take the person past their storage or daily quota."""

    status = 413
    code = "quota_exceeded"
    default_message = "This upload would go beyond your quota."


class DailyQuotaReached(ClipSyncError):
    """429 with Retry-After: the daily allowance frees up with time."""

    status = 429
    code = "daily_quota_exceeded"
    default_message = "You have uploaded as much as you may today."


class TooManyUnregistered(ClipSyncError):
    """429: too many uploads wait for a title; registering or deleting one frees a place."""

    status = 429
    code = "too_many_unregistered_uploads"


@dataclass(frozen=True)
class Usage:
    """What a person stores and has uploaded lately, against their limits (0: none)."""

    storage_quota: int
    stored: int
    daily_quota: int
    uploaded_today: int
    # (when, bytes) of the uploads in the daily window, oldest first.
    window: tuple[tuple[datetime, int], ...]
    unregistered: int

    @property
    def storage_left(self) -> int | None:
        return max(0, self.storage_quota - self.stored) if self.storage_quota else None

    @property
    def daily_left(self) -> int | None:
        return max(0, self.daily_quota - self.uploaded_today) if self.daily_quota else None

    def frees_at(self, needed: int) -> datetime | None:
        """When the window will have room for `needed` more bytes (None: never, or now)."""
        excess = self.uploaded_today + needed - self.daily_quota
        if not self.daily_quota or excess <= 0 or needed > self.daily_quota:
            return None
        for when, size in self.window:
            excess -= size
            if excess <= 0:
                return when + DAY
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "storageQuotaBytes": self.storage_quota,
            "storedBytes": self.stored,
            "storageLeftBytes": self.storage_left,
            "dailyUploadQuotaBytes": self.daily_quota,
            "uploadedTodayBytes": self.uploaded_today,
            "dailyLeftBytes": self.daily_left,
        }


def limits(settings: Settings, user: User) -> tuple[int, int]:
    """The storage and daily quotas that apply to `user` (0: unlimited)."""
    storage = user.storage_quota_bytes
    daily = user.daily_upload_quota_bytes
    return (
        settings.quotas.storage_bytes_per_user if storage is None else int(storage),
        settings.quotas.daily_upload_bytes_per_user if daily is None else int(daily),
    )


async def usage(settings: Settings, user: User) -> Usage:
    """What `user` stores, uploaded in the last 24 hours, and left unregistered."""
    now = datetime.now(UTC)
    since = now - DAY
    videos = (
        await Video.filter(owner_id=user.id)
        .annotate(total=Sum("size"))
        .values_list("total", flat=True)
    )
    captions = (
        await Caption.filter(video__owner_id=user.id)
        .annotate(total=Sum("size"))
        .values_list("total", flat=True)
    )
    pending = await ResumableUpload.filter(owner_id=user.id, expires_at__gt=now).values_list(
        "created_at", "length", "offset"
    )
    unfinished = [(when, int(length)) for when, length, offset in pending if offset < length]
    recent = await Video.filter(owner_id=user.id, created_at__gt=since).values_list(
        "created_at", "size"
    )
    window = sorted(
        [(when, int(size or 0)) for when, size in recent]
        + [(when, size) for when, size in unfinished if when > since]
    )
    storage_quota, daily_quota = limits(settings, user)
    return Usage(
        storage_quota=storage_quota,
        stored=int(sum(v or 0 for v in videos))
        + int(sum(c or 0 for c in captions))
        + sum(size for _, size in unfinished),
        daily_quota=daily_quota,
        uploaded_today=sum(size for _, size in window),
        window=tuple(window),
        unregistered=await Video.filter(owner_id=user.id, status=VideoStatus.UPLOADED).count()
        + len(unfinished),
    )


async def ensure_allowed(settings: Settings, user: User, size: int) -> Usage:
    """Refuse a new upload of `size` bytes that breaks one of `user`'s limits.

    Called before anything is stored; `size` is what the client declares (0 when
    unknown: then only a quota already used up, or too many unregistered uploads,
    refuses it).
    """
    used = await usage(settings, user)
    most = settings.quotas.max_unregistered_uploads
    if most and used.unregistered >= most:
        raise TooManyUnregistered(
            f"You have {used.unregistered} uploads waiting for a title; at most {most} may "
            "wait at once. Register (give a title to) or delete one of them, or wait for "
            f"unregistered uploads to be cleared after "
            f"{settings.uploads.abandoned_after_hours} hours.",
            details={"unregistered": used.unregistered, "limit": most},
        )
    check_size(used, size)
    return used


def check_size(used: Usage, size: int) -> None:
    """Raise when `size` more bytes do not fit the storage or the daily quota."""
    upload = f"this upload ({format_size(size)})" if size else "another upload"
    this = upload[0].upper() + upload[1:]
    left = used.storage_left
    if left is not None and (size > left or left == 0):
        raise QuotaExceeded(
            f"{this} does not fit your storage quota: you use "
            f"{format_size(used.stored)} of {format_size(used.storage_quota)}, so "
            f"{format_size(left)} are left. Delete videos you no longer need, or ask "
            "an administrator for more room.",
            details={
                "quota": "storage",
                "limit": used.storage_quota,
                "used": used.stored,
                "left": left,
                "needed": size,
            },
        )
    left = used.daily_left
    if left is None or (size <= left and left > 0):
        return
    details: dict[str, Any] = {
        "quota": "daily",
        "limit": used.daily_quota,
        "used": used.uploaded_today,
        "left": left,
        "needed": size,
    }
    said = (
        f"You have uploaded {format_size(used.uploaded_today)} in the last 24 hours; "
        f"you may upload {format_size(used.daily_quota)} a day, so {format_size(left)} "
        "are left today."
    )
    if size > used.daily_quota:
        raise QuotaExceeded(
            f"{this} is larger than your daily upload quota. "
            f"{said} Ask an administrator for a larger one.",
            details=details,
        )
    frees_at = used.frees_at(max(size, 1))
    assert frees_at is not None  # it fits a whole day, so the window frees up in time
    details["freesAt"] = frees_at.isoformat()
    wait = math.ceil((frees_at - datetime.now(UTC)).total_seconds())
    error = DailyQuotaReached(
        f"{said} Room for {upload} frees up at {frees_at.strftime('%H:%M UTC on %d %B')}.",
        headers={"Retry-After": str(max(1, wait))},
        details=details,
    )
    raise error


async def ensure_registration_allowed(
    settings: Settings, sessions: AuthSessions, address: str
) -> None:
    """Refuse (429) a registration from an address that made too many this hour.

    Each registration signs the new account in from the address it came from, and
    that session (kept, ended or not, until it expires) is what is counted.
    """
    most = settings.quotas.registrations_per_address_per_hour
    if not most or not address:
        return
    since = datetime.now(UTC) - HOUR
    made = await sessions.opened_from(address, since)
    new = set(
        await User.filter(id__in={user_id for user_id, _ in made}, created_at__gt=since)
        .values_list("id", flat=True)
    ) if made else set()  # fmt: skip
    first: dict[int, datetime] = {}
    for user_id, when in made:
        if user_id in new:
            first.setdefault(user_id, when)
    if len(first) < most:
        return
    oldest = sorted(first.values())[-most]
    wait = math.ceil((oldest + HOUR - datetime.now(UTC)).total_seconds())
    raise TooManyRequests(
        f"{len(first)} accounts were registered from your address in the last hour; at "
        f"most {most} may be. Please try again in {max(1, math.ceil(wait / 60))} minutes.",
        retry_after=wait,
    )


def parse_overrides(changes: dict[str, Any]) -> dict[str, int | None]:
    """The quota fields of an admin's change: null (the default), 0 (unlimited) or bytes."""
    found: dict[str, int | None] = {}
    for name, column in OVERRIDES.items():
        if name not in changes:
            continue
        value = changes[name]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BYTES
        ):
            raise ValidationFailed(
                f"{name} is a number of bytes, 0 for unlimited, or null for the default.",
                field=name,
            )
        found[column] = value
    return found
