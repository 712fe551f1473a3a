"""Alerts to the admins from periodic checks, each sent at most once a day.

The reaper runs `check_storage` every round on every consumer; the `SiteAlert` row of
an alert is claimed atomically before it is sent, so a cluster of consumers sends
one alert a day, not one per consumer or per round.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError

from clipsync import events
from clipsync.backends import StorageBackend
from clipsync.models import SiteAlert
from clipsync.services import disk_space
from clipsync.settings import Settings
from clipsync.sizes import format_size

ONCE_EVERY = timedelta(days=1)


async def claim(name: str, now: datetime | None = None, every: timedelta = ONCE_EVERY) -> bool:
    """True for the one caller that may do `name` now: nobody did within `every`.

    Alerts use it (once a day), and so does the scheduled backup (once a period).
    """
    now = now or datetime.now(UTC)
    if await SiteAlert.filter(name=name, last_sent_at__lte=now - every).update(last_sent_at=now):
        return True
    try:
        await SiteAlert.create(name=name, last_sent_at=now)
    except IntegrityError:
        return False  # sent within the day (or claimed by another process just now)
    return True


def storage_problem(settings: Settings, storage: StorageBackend) -> str | None:
    """What is nearly full, in words, or None while every watched disk has room."""
    percent = settings.disk.alert_free_percent
    if percent <= 0:
        return None
    floor = 2 * disk_space.reserve(settings)
    seen: set[int] = set()
    for label, folder in disk_space.watched_folders(settings, storage).items():
        room = disk_space.room(folder)
        if room.device in seen:
            continue
        seen.add(room.device)
        share = 100 * room.free / room.total if room.total else 100.0
        if share < percent or room.free < floor:
            return (
                f"Only {format_size(room.free)} ({share:.0f}%) is free on the disk of {label} "
                f"({folder}). Uploads and transcodes stop when less than "
                f"{format_size(disk_space.reserve(settings))} is left: free some space or "
                "move the media to a larger disk or to object storage."
            )
    return None


async def check_storage(settings: Settings, storage: StorageBackend) -> bool:
    """Tell the admins when a disk is nearly full, at most once a day; True if told."""
    problem = storage_problem(settings, storage)
    if problem is None or not await claim("storage_low"):
        return False
    await events.publish("admin.storage_low", detail=problem)
    return True
