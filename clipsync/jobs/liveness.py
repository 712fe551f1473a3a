"""Which job consumers are alive, and when the reaper last ran.

A consumer shows it is alive in two ways:

- It holds an exclusive lock (`flock`) on `<data dir>/consumers/<id>.lock` for as
  long as its process lives. The kernel drops the lock the moment the process dies,
  however it dies (SIGKILL included), so any process on the same host can tell at
  once that it is gone: a consumer's lock that can be taken belongs to a dead one.
- Every `[queue] heartbeat_seconds` it writes a beat into the queue's own store (the
  SQLite queue file, or Redis), which every host sharing the queue reads. A beat
  older than `[queue] lease_expiry_seconds` means the consumer is gone, as seen from
  a host that cannot see its lock file.

The leases a consumer's jobs take on video rows start with its id (see
`services.transcoding.claim`), so a lease belongs to a consumer that can be seen to
be alive, or not.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huey import Huey

from clipsync.settings import Settings

log = logging.getLogger(__name__)

# Keys in the queue's key-value store (Huey's result store, which ClipSync's tasks
# never use for results: they return nothing).
CONSUMER_PREFIX = "clipsync:consumer:"
REAPER_KEY = "clipsync:reaper"
LOCK_FOLDER = "consumers"


def new_consumer_id() -> str:
    """A consumer's id: unique per process start, short enough to fit in a lease."""
    return uuid.uuid4().hex[:16]


def lease_holder(lease: str | None) -> str:
    """The id of the consumer whose job took `lease` ("" for a lease without one)."""
    holder, sep, _ = (lease or "").partition(":")
    return holder if sep else ""


@dataclass(frozen=True)
class ConsumerBeat:
    """What a consumer last said about itself."""

    id: str
    host: str
    pid: int
    started: float
    beat: float


class Liveness:
    """Reads (and, for a running consumer, writes) who is alive; safe in any process."""

    def __init__(self, huey: Huey, settings: Settings) -> None:
        self.huey = huey
        self.settings = settings
        self.folder = settings.data_dir / LOCK_FOLDER
        # Set under `clipsync serve` (see `app.setup_job_consumer`): this install
        # cannot transcode without a consumer, so /healthz fails while none is alive.
        self.expected = False

    @property
    def expiry(self) -> float:
        return float(self.settings.queue.lease_expiry_seconds)

    def lock_path(self, consumer_id: str) -> Path:
        return self.folder / f"{consumer_id}.lock"

    def held_here(self, consumer_id: str) -> bool | None:
        """Whether the lock of `consumer_id` is held: True, alive; False, its process is gone.

        None when this host cannot tell (no lock file here: the consumer runs, or
        ran, on another host; its beat decides then).
        """
        if not consumer_id or not consumer_id.isalnum():
            return None
        try:
            fd = os.open(self.lock_path(consumer_id), os.O_RDWR)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        else:
            return False  # nobody held it; closing the file lets go of it again
        finally:
            os.close(fd)

    def dead_here(self, consumer_id: str) -> bool:
        """Whether `consumer_id` ran on this host and its process is gone."""
        return self.held_here(consumer_id) is False

    def consumers(self) -> list[ConsumerBeat]:
        """Every consumer that said it started and has not said it stopped."""
        found = []
        for key, value in self.huey.storage.result_items().items():
            if not key.startswith(CONSUMER_PREFIX):
                continue
            with contextlib.suppress(ValueError, TypeError, KeyError):
                found.append(ConsumerBeat(**json.loads(value)))
        return found

    def is_alive(self, consumer: ConsumerBeat) -> bool:
        held = self.held_here(consumer.id)
        if held is not None:  # this host knows for sure, whatever its last beat
            return held
        return time.time() - consumer.beat < self.expiry

    def alive(self) -> list[ConsumerBeat]:
        return [c for c in self.consumers() if self.is_alive(c)]

    def forget_dead(self) -> list[str]:
        """Remove what dead consumers left in the store and in the lock folder."""
        gone = [c.id for c in self.consumers() if not self.is_alive(c)]
        for consumer_id in gone:
            self.huey.storage.delete_data(CONSUMER_PREFIX + consumer_id)
        for path in self.folder.glob("*.lock") if self.folder.is_dir() else []:
            if self.dead_here(path.stem):
                path.unlink(missing_ok=True)
                gone.append(path.stem)
        return sorted(set(gone))

    def record_reaper_run(self, summary: dict[str, Any]) -> None:
        self.huey.storage.put_data(REAPER_KEY, json.dumps({"at": time.time(), **summary}).encode())

    def last_reaper_run(self) -> dict[str, Any] | None:
        """`{"at": epoch seconds, ...what it did}` of the last run, or None."""
        value = self.huey.storage.peek_data(REAPER_KEY)
        if not isinstance(value, (bytes, str)):
            return None  # Huey's EmptyData: it never ran
        try:
            return dict(json.loads(value))
        except (ValueError, TypeError):
            return None


class Presence:
    """A running consumer's side: its lock, and a thread that beats until `stop()`."""

    def __init__(self, liveness: Liveness, consumer_id: str) -> None:
        self.liveness = liveness
        self.id = consumer_id
        self.started = time.time()
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        """Take the lock, say so in the store, and keep beating in a thread of its own.

        The beat is a thread, not a task on the jobs' event loop, so a busy loop
        never makes a live consumer look dead.
        """
        self.liveness.folder.mkdir(parents=True, exist_ok=True)
        path = self.liveness.lock_path(self.id)
        # Locked under another name, then renamed: nobody ever finds the file unlocked
        # (and takes it for a dead consumer's). os.open makes the descriptor
        # non-inheritable: ffmpeg never holds the lock.
        starting = path.with_suffix(".starting")
        fd = os.open(starting, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps(self._describe()).encode())
        os.replace(starting, path)
        self._fd = fd
        self.beat()
        self._thread = threading.Thread(target=self._run, name="clipsync-beat", daemon=True)
        self._thread.start()

    def _describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self.started,
            "beat": time.time(),
        }

    def beat(self) -> None:
        try:
            self.liveness.huey.storage.put_data(
                CONSUMER_PREFIX + self.id, json.dumps(self._describe()).encode()
            )
        except Exception as exc:
            if not self._failing:
                log.warning("job consumer %s: cannot write its heartbeat: %s", self.id, exc)
            self._failing = True
        else:
            if self._failing:
                log.info("job consumer %s: heartbeat written again", self.id)
            self._failing = False

    def _run(self) -> None:
        while not self._stop.wait(self.liveness.settings.queue.heartbeat_seconds):
            self.beat()

    def stop(self, *, keep_lock: bool = False) -> None:
        """Stop beating and say this consumer is gone.

        `keep_lock` leaves the lock file for the process's end to release: jobs that
        were interrupted still hold leases, and a free lock is what tells the next
        consumer, at once, that they can be taken.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with contextlib.suppress(Exception):
            self.liveness.huey.storage.delete_data(CONSUMER_PREFIX + self.id)
        if self._fd is None or keep_lock:
            return
        self.liveness.lock_path(self.id).unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
