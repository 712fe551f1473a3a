"""Moving every stored file to another storage backend (`clipsync storage migrate`).

Keys are the same in every store (`clipsync.storage.keys`), so the database needs
no change: moving is a copy of every key, then `[storage] backend` in the config
file names the new store. Each copy streams (the source's chunks go straight into
the target's `put_stream`), a few run at once, and each is verified by reading it
back from the target: its size and sha256 must equal what was read from the source.

Nothing is switched until every key is copied and verified, so an interrupted or
failed run leaves the configuration as it was, and running the command again copies
only what is missing or different in the target. The old store is never changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from clipsync.backends import BackendContext, StorageBackend, choose, gather
from clipsync.errors import ClipSyncError
from clipsync.plugins import PluginHost, create_plugin_host
from clipsync.services.transcoding import content_type
from clipsync.settings import ENV_PREFIX, Settings
from clipsync.sizes import format_size

# Everything ClipSync stores lives under these prefixes (see `clipsync.storage.keys`).
# Resumable-upload staging is kept outside storage, and the S3 probe's test objects
# are deleted by the probe itself, so neither is copied.
COPIED_PREFIXES: tuple[str, ...] = ("videos",)
BACKEND_VARIABLE = f"{ENV_PREFIX}STORAGE_BACKEND"
DEFAULT_CONCURRENCY = 4
# Stop starting new copies after this many failures: the cause is usually one thing
# (the target is full, unreachable or refusing), and a screen of errors hides it.
MAX_FAILURES = 10


class MigrationRefused(ClipSyncError):
    status = 409
    code = "storage_migration_refused"


@dataclass(frozen=True)
class Store:
    """One storage backend taking part in a migration."""

    name: str
    # The backend's probe reason, which says where it keeps files.
    where: str
    backend: StorageBackend


@dataclass(frozen=True)
class Plan:
    """What moves where, and which file then names the new store."""

    source: Store
    target: Store
    # None when ClipSync runs on built-in defaults (then the run cannot switch).
    config: Path | None


def plan_migration(
    settings: Settings,
    target: str,
    *,
    switch: bool = True,
    environ: Mapping[str, str] | None = None,
    host: PluginHost | None = None,
) -> Plan:
    """Check that moving to backend `target` can work, and open both stores.

    Refuses (MigrationRefused, with what to do) when `target` is unknown or already
    active, and when its probe says it cannot work here (with the reason); when the
    run is to `switch`, also when the backend is set by the environment or there is
    no config file to switch.
    """
    environ = os.environ if environ is None else environ
    if switch and BACKEND_VARIABLE in environ:
        raise MigrationRefused(
            f"{BACKEND_VARIABLE}={environ[BACKEND_VARIABLE]} chooses the storage backend, "
            "so switching [storage] backend in the config file would change nothing. "
            f"Unset it and run this again, or copy with --copy-only and then set it to "
            f"{target!r} yourself."
        )
    if switch and settings.source is None:
        raise MigrationRefused(
            "ClipSync runs on built-in defaults here: there is no config file to switch. "
            "Pass --config FILE (or set CLIPSYNC_CONFIG)."
        )
    host = host or create_plugin_host(settings)
    registry = gather(host)["storage"]
    known = ", ".join(sorted(registry))
    if target == "auto" or target not in registry:
        raise MigrationRefused(f"no storage backend {target!r} (available: {known})")
    active = choose("storage", registry, host, settings, settings.storage.backend)
    if active.chosen.name == target:
        raise MigrationRefused(
            f"{target!r} is already the active storage backend ({settings.describe()})"
        )
    entry = registry[target]
    context = BackendContext(settings=settings, config=host.plugin_config(entry.plugin))
    availability = entry.probe(context)
    if not availability.ok:
        raise MigrationRefused(f"storage backend {target!r} cannot work: {availability.reason}")
    source_where = active.probes.get(active.chosen.name)
    return Plan(
        source=Store(
            active.chosen.name, source_where.reason if source_where else "", active.instance
        ),
        target=Store(target, availability.reason, entry.cls.create(context)),
        config=settings.source,
    )


# -- copying ---------------------------------------------------------------------------------

State = Literal["copied", "present", "failed"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one key."""

    key: str
    size: int
    # copied (and verified); present (already in the target); failed (see reason).
    state: State
    reason: str = ""


@dataclass
class Tally:
    """The counts of a run so far; `line()` and `summary()` put them in words."""

    files: int = 0
    bytes: int = 0
    done: int = 0
    copied: int = 0
    copied_bytes: int = 0
    present: int = 0
    present_bytes: int = 0
    failures: list[Outcome] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    stopped_early: bool = False

    def add(self, outcome: Outcome) -> None:
        self.done += 1
        if outcome.state == "copied":
            self.copied += 1
            self.copied_bytes += outcome.size
        elif outcome.state == "present":
            self.present += 1
            self.present_bytes += outcome.size
        else:
            self.failures.append(outcome)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.stopped_early and self.done == self.files

    def line(self, dry_run: bool = False) -> str:
        width = len(str(self.files))
        handled = self.copied_bytes + self.present_bytes
        verb = "to copy" if dry_run else "copied"
        return (
            f"  [{self.done:>{width}}/{self.files}] {self.copied} {verb}, "
            f"{self.present} already there, {len(self.failures)} failed "
            f"({format_size(handled)} of {format_size(self.bytes)})"
        )

    def summary(self, dry_run: bool = False) -> str:
        seconds = time.monotonic() - self.started
        if dry_run:
            return (
                f"Dry run: {self.files} files ({format_size(self.bytes)}); "
                f"{self.copied} to copy ({format_size(self.copied_bytes)}), "
                f"{self.present} already in the target with the same size "
                "(a real run also compares their sha256)."
            )
        return (
            f"{self.files} files ({format_size(self.bytes)}): {self.copied} copied and verified "
            f"({format_size(self.copied_bytes)}), {self.present} already there, "
            f"{len(self.failures)} failed, in {human_duration(seconds)}."
        )


async def _digest(store: StorageBackend, key: str) -> tuple[str, int]:
    """The sha256 and the size of `key` as `store` reads it back."""
    hasher = hashlib.sha256()
    size = 0
    async for chunk in store.read(key):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


async def copy_key(
    source: StorageBackend,
    target: StorageBackend,
    key: str,
    size: int,
    *,
    size_only: bool = False,
    dry_run: bool = False,
) -> Outcome:
    """Make `key` in `target` equal to `key` in `source`, and prove it.

    A key the target already holds with the same size and sha256 (size alone with
    `size_only`) is left alone. Otherwise the source is streamed into the target,
    hashed on the way, and the target's copy is read back and hashed again.
    """
    existing = await target.size(key)
    if existing == size:
        if size_only or dry_run:
            return Outcome(key, size, "present")
        ours, theirs = await asyncio.gather(_digest(source, key), _digest(target, key))
        if ours == theirs:
            return Outcome(key, size, "present")
    if dry_run:
        return Outcome(key, size, "copied")

    hasher = hashlib.sha256()
    read = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal read
        async for chunk in source.read(key):
            hasher.update(chunk)
            read += len(chunk)
            yield chunk

    written = await target.put_stream(key, chunks(), content_type(key))
    if read != size:
        return Outcome(
            key, size, "failed", f"the source changed while copying ({read} bytes, not {size})"
        )
    if written != read:
        return Outcome(key, size, "failed", f"the target took {written} of {read} bytes")
    digest, stored = await _digest(target, key)
    if stored != read:
        return Outcome(
            key, size, "failed", f"verification: the target holds {stored} bytes, not {read}"
        )
    if digest != hasher.hexdigest():
        return Outcome(
            key, size, "failed", "verification: the target's sha256 differs from the source's"
        )
    return Outcome(key, size, "copied")


async def list_keys(store: StorageBackend, concurrency: int) -> list[tuple[str, int]]:
    """Every key ClipSync made in `store`, with its size, in key order."""
    keys = [key for prefix in COPIED_PREFIXES for key in await store.list(prefix)]
    limit = asyncio.Semaphore(concurrency)

    async def sized(key: str) -> tuple[str, int | None]:
        async with limit:
            return key, await store.size(key)

    sizes = await asyncio.gather(*(sized(key) for key in keys))
    # A key deleted since the listing (a rejected video's files) has nothing to copy.
    return [(key, size) for key, size in sizes if size is not None]


async def copy_all(
    plan: Plan,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    size_only: bool = False,
    dry_run: bool = False,
    on_listed: Callable[[Tally], None] | None = None,
    on_outcome: Callable[[Outcome, Tally], None] | None = None,
) -> Tally:
    """Copy and verify every key of the plan's source in its target; nothing else.

    `concurrency` copies run at once. A key that fails is reported in the tally
    and the others go on, until MAX_FAILURES have failed. Cancelling (Ctrl-C) stops
    every copy; a backend never shows a half-written object, so the next run starts
    clean.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    source, target = plan.source.backend, plan.target.backend
    listed = await list_keys(source, concurrency)
    tally = Tally(files=len(listed), bytes=sum(size for _, size in listed))
    if on_listed:
        on_listed(tally)
    pending = iter(listed)

    async def worker() -> None:
        for key, size in pending:
            if len(tally.failures) >= MAX_FAILURES:
                tally.stopped_early = True
                return
            try:
                outcome = await copy_key(
                    source, target, key, size, size_only=size_only, dry_run=dry_run
                )
            except Exception as exc:  # one key's failure is reported, not fatal
                outcome = Outcome(key, size, "failed", describe_error(exc))
            tally.add(outcome)
            if on_outcome:
                on_outcome(outcome, tally)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, max(1, len(listed)))):
            group.create_task(worker())
    return tally


def describe_error(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if isinstance(exc, OSError) else message


# -- around the copy -----------------------------------------------------------------------


def server_answers(settings: Settings, timeout: float = 0.5) -> bool:
    """Whether something listens on `[server] host:port`: ClipSync may be running."""
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    try:
        with socket.create_connection((host, settings.server.port), timeout=timeout):
            return True
    except OSError:
        return False


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
