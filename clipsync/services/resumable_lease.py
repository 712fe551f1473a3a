"""The lock on a resumable upload that every web host sees: a lease in the database.

With storage that assembles objects from parts (S3), a tus upload's requests may land
on any web host, so the `flock` of `resumable_staging.UploadLock` (one host's kernel)
cannot keep two of them from writing at once. One request at a time holds the
upload's lease instead: a `site_alerts` claim named `tus:<upload id>`, taken in one
conditional update (or insert) when nobody holds it or its holder stopped renewing it.
The holder renews it every `RENEW_SECONDS` while its request runs and deletes it when
the request ends; the time it last wrote is its proof of holding (renewing and
releasing only touch the row while it still says that time).

A holder also leaves its name beside the lease (`tus:<id>@<host>:<pid>`), so that a
process killed mid-request holds nobody up on its own host: a request there finds
the holder's process gone and takes the lease over at once. A holder on another host
that died is known only by its silence: its lease lapses after `LEASE_SECONDS`, and
until then that upload answers 409, which tus clients retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from clipsync.errors import Conflict
from clipsync.models import SiteAlert
from clipsync.services import site_alerts

log = logging.getLogger(__name__)

LEASE_SECONDS = 10.0
RENEW_SECONDS = 3.0
BUSY = "Another request is sending bytes to this upload; try again when it ends."
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def lease_name(upload_id: uuid.UUID | str) -> str:
    return f"tus:{upload_id}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class UploadLease:
    """One request's hold on an upload, across hosts; `await UploadLease.take(id)`."""

    def __init__(self, name: str, held_since: datetime) -> None:
        self.name = name
        self._stamp = held_since
        self._stop = asyncio.Event()
        self._renewing: asyncio.Task[None] | None = None

    @classmethod
    async def take(cls, upload_id: uuid.UUID | str) -> UploadLease:
        """Hold the upload's lease, or raise Conflict (409) while someone else does."""
        name = lease_name(upload_id)
        now = datetime.now(UTC)
        claimed = await site_alerts.claim(name, now, timedelta(seconds=LEASE_SECONDS))
        if not claimed and not await cls._take_over(name, now):
            raise Conflict(BUSY)
        await SiteAlert.filter(name__startswith=f"{name}@").delete()
        await SiteAlert.create(name=f"{name}@{HOST}:{os.getpid()}", last_sent_at=now)
        lease = cls(name, now)
        lease._renewing = asyncio.create_task(lease._renew())
        return lease

    @staticmethod
    async def _take_over(name: str, now: datetime) -> bool:
        """Take the lease of a holder that ran on this host and whose process is gone."""
        holders = await SiteAlert.filter(name__startswith=f"{name}@").values_list("name", flat=True)
        dead = [
            h
            for h in holders
            if str(h).rpartition("@")[2].partition(":")[0] == HOST
            and not _alive(int(str(h).rpartition(":")[2]))
        ]
        if not dead:
            return False
        held = await SiteAlert.get_or_none(name=name)
        if held is None:
            return False
        log.info("%s: its holder (%s) is gone: taking its lease over", name, dead[0])
        return bool(
            await SiteAlert.filter(name=name, last_sent_at=held.last_sent_at).update(
                last_sent_at=now
            )
        )

    async def _renew(self) -> None:
        # Never cancelled mid-update (`release` asks it to stop and waits), so the
        # time in the row is always the one `release` deletes by.
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), RENEW_SECONDS)
                return
            except TimeoutError:
                pass
            now = datetime.now(UTC)
            try:
                kept = await SiteAlert.filter(name=self.name, last_sent_at=self._stamp).update(
                    last_sent_at=now
                )
            except Exception as exc:  # the database blinked: try again next round
                log.warning("could not renew the lease %s: %s", self.name, exc)
                continue
            if not kept:
                log.warning("lost the lease %s: another request may write meanwhile", self.name)
                return
            self._stamp = now

    async def release(self) -> None:
        if self._renewing is None:
            return
        self._stop.set()
        await self._renewing
        self._renewing = None
        if await SiteAlert.filter(name=self.name, last_sent_at=self._stamp).delete():
            await SiteAlert.filter(name=f"{self.name}@{HOST}:{os.getpid()}").delete()


async def forget(upload_id: uuid.UUID | str) -> None:
    """Drop whatever lease rows an upload left (it was finished or deleted)."""
    await SiteAlert.filter(name__startswith=lease_name(upload_id)).delete()
