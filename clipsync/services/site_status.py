"""The admin status page's figures: is this install healthy, and what is it doing?

One snapshot for `/admin/status` and `GET /api/admin/status`, built from what the
other parts already know: the version, how long this process (and `clipsync serve`)
has run, room on disk (`disk_space`), stored bytes (`metrics.scrape_gauges`, the
same sums a Prometheus scrape reads), the queue and its consumers (`jobs.health`),
the videos being transcoded with their progress and lease, recent failures (videos
and deliveries), and the effective configuration with every secret masked.

The doctor's checks probe the outside world and may take seconds each, so they never
run while the page loads: only when asked (`run_doctor`), in a `clipsync doctor
--json` child process, with the answer kept for `DOCTOR_CACHE_SECONDS` so that a
reload does not probe again. A child process because the doctor opens and closes
the ORM's connections for its migration check, which would close the server's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipsync import __version__, metrics
from clipsync.backup.config import MASK, secret_settings
from clipsync.errors import Forbidden
from clipsync.jobs.health import jobs_health
from clipsync.jobs.liveness import lease_holder
from clipsync.jobs.queue import queue_health
from clipsync.models import Delivery, DeliveryStatus, Role, User, Video, VideoStatus
from clipsync.services import disk_space
from clipsync.services.transcoding import CHUNKS_LEASE
from clipsync.setting_values import Secret
from clipsync.settings import SECTIONS, Settings

if TYPE_CHECKING:
    from clipsync.context import AppContext

log = logging.getLogger(__name__)

TIMEOUT = 5.0
# The whole doctor run: each of its checks gives up after 15 s, a few may run.
DOCTOR_TIMEOUT = 90.0
DOCTOR_CACHE_SECONDS = 60.0
FAILURES_SHOWN = 20
RUNNING_SHOWN = 50
# `scheme://user:password@host`: a password in a setting that is not declared secret.
_URL_PASSWORD = re.compile(r"(?P<lead>[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s]+@", re.I)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def require_admin(user: User) -> User:
    """The status maps the installation (paths, hosts, backends): admins only."""
    if user.role != Role.ADMIN:
        raise Forbidden("Only administrators can see the server's status.")
    return user


def _iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


# -- uptime ---------------------------------------------------------------------------


def process_started(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), from Linux's /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    # The command name (field 2) may hold spaces: count the fields after its ")".
    fields = stat.rpartition(")")[2].split()
    try:
        return boot + int(fields[19]) / _CLOCK_TICKS  # field 22, starttime
    except (IndexError, ValueError):
        return None


_IMPORTED = time.time()


def uptime(now: float | None = None) -> dict[str, Any]:
    """This process's start, and `clipsync serve`'s when this is one of its workers.

    Sanic's worker processes carry `SANIC_WORKER_NAME`, and their parent is the
    process `clipsync serve` started; without it (a test client, a single process)
    the serve start is not known and is None.
    """
    now = time.time() if now is None else now
    started = process_started(os.getpid()) or _IMPORTED
    serve = process_started(os.getppid()) if os.environ.get("SANIC_WORKER_NAME") else None
    return {
        "processStartedAt": _iso(started),
        "processSeconds": max(0, int(now - started)),
        "serveStartedAt": _iso(serve),
        "serveSeconds": max(0, int(now - serve)) if serve is not None else None,
    }


# -- configuration --------------------------------------------------------------------


def _plain(value: Any, secret: bool) -> Any:
    """A setting's value as JSON: secrets masked, passwords in URLs too."""
    if isinstance(value, Secret):
        return MASK if value else ""
    if secret:
        return MASK if value else value
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<lead>{MASK}@", value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), False) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, False) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, False) for v in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return str(value)


def effective_config(settings: Settings, plugin_configs: Mapping[str, Any]) -> dict[str, Any]:
    """The settings in force (file, defaults and `CLIPSYNC_*` variables), secrets masked.

    The parsed settings rather than the file: they show the defaults and the
    variables' overrides too, and every `Secret` (a `$env`/`$file` reference once
    read) is masked by its type. Plugin tables no loaded plugin describes are masked
    by name, as a backup's copy of the file is (`backup.config.secret_settings`).
    """
    secrets = secret_settings(settings, dict(plugin_configs))
    sections = {}
    for name in SECTIONS:
        values = getattr(settings, name)
        sections[name] = {
            f.name: _plain(getattr(values, f.name), (name, f.name) in secrets)
            for f in dataclasses.fields(values)
        }
    sections["plugins"] = _plain(settings.plugins, False)
    sections["categories"] = _plain(settings.categories, False)
    plugins = {}
    for name, table in sorted(settings.plugin_tables.items()):
        config = plugin_configs.get(name)
        values = (
            {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
            if dataclasses.is_dataclass(config)
            else dict(table)
        )
        plugins[name] = {
            key: _plain(value, (f"plugins.{name}", key) in secrets) for key, value in values.items()
        }
    return {"source": settings.describe(), "sections": sections, "plugins": plugins}


# -- the doctor -----------------------------------------------------------------------


@dataclasses.dataclass
class DoctorResult:
    ok: bool
    checks: list[dict[str, Any]]
    ran_at: float
    error: str | None = None

    def as_json(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {
            "ok": self.ok,
            "checks": self.checks,
            "ranAt": _iso(self.ran_at),
            "secondsAgo": max(0, int(now - self.ran_at)),
            "error": self.error,
        }


class DoctorCache:
    """The doctor's last answer in this process, and one run at a time."""

    def __init__(self) -> None:
        self.result: DoctorResult | None = None
        self._lock = asyncio.Lock()

    def fresh(self, now: float | None = None) -> DoctorResult | None:
        now = time.time() if now is None else now
        if self.result and now - self.result.ran_at < DOCTOR_CACHE_SECONDS:
            return self.result
        return None

    async def run(self, settings: Settings) -> DoctorResult:
        """The checks, run now unless an answer under a minute old is kept."""
        async with self._lock:
            if (kept := self.fresh()) is not None:
                return kept
            self.result = await run_doctor(settings)
            return self.result


def doctor_cache(ctx: AppContext) -> DoctorCache:
    """The app's `DoctorCache`, made on first use (one per app, so per worker process)."""
    cache = vars(ctx).get("site_status_doctor")
    if cache is None:
        cache = DoctorCache()
        vars(ctx)["site_status_doctor"] = cache
    return cache


async def status(ctx: AppContext, *, run_checks: bool = False) -> dict[str, Any]:
    """The snapshot, with the doctor's checks run first when asked (else the last ones)."""
    cache = doctor_cache(ctx)
    doctor = await cache.run(ctx.settings) if run_checks else cache.result
    return await snapshot(ctx, doctor)


async def run_doctor(settings: Settings) -> DoctorResult:
    """`clipsync doctor --json` in a child process, with this process's environment."""
    command = [sys.executable, "-m", "clipsync"]
    if settings.source is not None and settings.source.exists():
        command += ["--config", str(settings.source)]
    command += ["doctor", "--json"]
    started = time.time()
    try:
        child = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return DoctorResult(False, [], started, f"the doctor could not start: {exc.strerror}")
    try:
        out, err = await asyncio.wait_for(child.communicate(), DOCTOR_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        return DoctorResult(False, [], started, f"no answer within {DOCTOR_TIMEOUT:g} s")
    try:
        answer = json.loads(out)
        return DoctorResult(bool(answer["ok"]), list(answer["checks"]), started)
    except (ValueError, KeyError, TypeError):
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        log.warning("status page: the doctor failed: %s", last)
        return DoctorResult(False, [], started, f"the doctor failed: {last}")


# -- jobs and failures ----------------------------------------------------------------


async def running_jobs(ctx: AppContext) -> list[dict[str, Any]]:
    """Videos being transcoded: progress, the lease and whether its consumer lives."""
    alive = {c.id for c in await asyncio.to_thread(ctx.jobs.liveness.alive)}
    rows = (
        await Video.filter(status=VideoStatus.PROCESSING)
        .order_by("created_at")
        .limit(RUNNING_SHOWN)
    )
    return [
        {
            "id": str(v.id),
            "title": v.title,
            "progress": v.progress,
            "encoder": v.encoder,
            "attempts": v.attempts,
            "lease": v.worker_lease,
            # No lease: queued, waiting for a consumer to take it.
            "state": (
                "waiting"
                if not v.worker_lease
                else "chunks"
                if v.worker_lease.startswith(CHUNKS_LEASE)
                else "running"
                if lease_holder(v.worker_lease) in alive
                else "stalled"
            ),
            "heartbeatAt": _iso(v.heartbeat_at),
            "updatedAt": _iso(v.updated_at),
        }
        for v in rows
    ]


async def recent_failures() -> dict[str, list[dict[str, Any]]]:
    videos = (
        await Video.filter(status=VideoStatus.FAILED).order_by("-updated_at").limit(FAILURES_SHOWN)
    )
    deliveries = (
        await Delivery.filter(status=DeliveryStatus.FAILED)
        .order_by("-created_at")
        .limit(FAILURES_SHOWN)
    )
    return {
        "videos": [
            {
                "id": str(v.id),
                "title": v.title,
                "error": v.error or "",
                "attempts": v.attempts,
                "updatedAt": _iso(v.updated_at),
            }
            for v in videos
        ],
        "deliveries": [
            {
                "id": d.id,
                "channel": d.channel,
                "type": d.type,
                "attempts": d.attempts,
                "error": _plain(d.last_error or "", False),
                "responseStatus": d.response_status,
                "lastAttemptAt": _iso(d.last_attempt_at or d.created_at),
            }
            for d in deliveries
        ],
    }


# -- storage and disk -----------------------------------------------------------------


async def stored(ctx: AppContext) -> dict[str, Any]:
    """Bytes by kind and videos by status: the metrics' own scrape-time sums."""
    families = await metrics.scrape_gauges(None)
    found: dict[str, dict[str, float]] = {}
    for family in families:
        for sample in family.samples:
            label = next(iter(sample.labels.values()), "")
            found.setdefault(family.name, {})[label] = sample.value
    return {
        "bytes": {k: int(v) for k, v in found.get("clipsync_storage_bytes", {}).items()},
        "videos": {k: int(v) for k, v in found.get("clipsync_videos", {}).items()},
    }


def disks(ctx: AppContext) -> dict[str, Any]:
    """The disk check of `/healthz/ready`, and each watched folder's room."""
    storage = ctx.backends.storage
    folders = []
    for label, folder in disk_space.watched_folders(ctx.settings, storage).items():
        here = disk_space.room(folder)
        folders.append(
            {"label": label, "path": str(folder), "free": here.free, "total": here.total}
        )
    return disk_space.report(ctx.settings, storage) | {"folders": folders}


async def queue(ctx: AppContext) -> dict[str, Any]:
    try:
        found = await asyncio.wait_for(asyncio.to_thread(queue_health, ctx.jobs.huey), TIMEOUT)
    except Exception as exc:
        log.warning("status page: queue unreachable: %s", exc)
        return {"ok": False, "error": "the job queue does not answer"}
    return {"ok": True, **found}


async def snapshot(ctx: AppContext, doctor: DoctorResult | None) -> dict[str, Any]:
    """Everything the status page shows, as the API answers it."""
    configs = {name: ctx.plugins.plugin_config(name) for name in ctx.settings.plugin_tables}
    return {
        "version": __version__,
        "uptime": uptime(),
        "doctor": doctor.as_json() if doctor else None,
        "disk": await asyncio.to_thread(disks, ctx),
        "storage": await stored(ctx),
        "queue": await queue(ctx),
        "jobs": await jobs_health(ctx.jobs.liveness, TIMEOUT),
        "running": await running_jobs(ctx),
        "failures": await recent_failures(),
        "config": effective_config(ctx.settings, configs),
    }
