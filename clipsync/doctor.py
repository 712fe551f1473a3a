"""`clipsync doctor`: is everything this configuration needs here, and working?

Each check is a function that returns `Check`s: ffmpeg and ffprobe (found, and their
versions), the data directory (writable), the database (reachable, migrated), the
job queue (answers), the session store (a Redis, when chosen, answers), one backend
of every kind (chosen as start-up would choose it, its probe really run), and each
notification channel that can be probed (email: the SMTP server really greeted).
Every transcoder's probe is reported too, with its reason, but only the one the
configuration needs can fail the run: a GPU this machine does not have is
information, not a fault; so is a channel that is off.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from clipsync import db
from clipsync.backends import KINDS, BackendContext, Selection, choose, gather
from clipsync.errors import ConfigError
from clipsync.plugins import PluginHost, await_me_maybe, create_plugin_host
from clipsync.settings import Settings

TIMEOUT = 15.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    # False: shown for information; it never makes `clipsync doctor` fail.
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.required and not self.ok


def _scrub(text: str, settings: Settings) -> str:
    """Remove secrets (database and Redis URLs, their passwords) from an error."""
    secrets = [settings.database.url.reveal(), settings.queue.redis_url.reveal()]
    for url in list(secrets):
        match = re.match(r"^[a-z0-9+]+://[^:/@]*:([^@]+)@", url)
        if match:
            secrets.append(match.group(1))
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "********")
    return text


def program_version(name: str, program: str) -> Check:
    """`program -version` runs; its version is the third word of its first line."""
    path = shutil.which(program)
    if path is None:
        return Check(name, False, f"{program} not found (install ffmpeg, or set its path)")
    try:
        done = subprocess.run(
            [path, "-version"], capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(name, False, f"{path} does not run: {exc}")
    first = (done.stdout.splitlines() or [""])[0].split()
    if done.returncode != 0 or len(first) < 3 or first[1] != "version":
        return Check(name, False, f"{path} -version failed (exit status {done.returncode})")
    return Check(name, True, f"{first[0]} {first[2]} ({path})")


def check_data_dir(settings: Settings) -> Check:
    folder = settings.data_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-") as fh:
            fh.write(b"ok")
            fh.flush()
    except OSError as exc:
        return Check("data directory", False, f"{folder} is not writable: {exc.strerror}")
    return Check("data directory", True, f"{folder} is writable")


async def check_database(settings: Settings) -> Check:
    """Reachable (a real query through the migration tool) and with nothing to migrate."""
    where = db.dialect(settings.database_url)
    try:
        pending = await asyncio.wait_for(db.pending_migrations(settings), TIMEOUT)
    except Exception as exc:
        detail = _scrub(str(exc) or type(exc).__name__, settings)
        return Check("database", False, f"{where}: cannot be reached: {detail}")
    if pending:
        return Check(
            "database",
            False,
            f"{where}: reachable, but {len(pending)} migration(s) are pending: "
            "run `clipsync migrate`",
        )
    return Check("database", True, f"{where}: reachable, migrations up to date")


def check_queue(settings: Settings) -> Check:
    from clipsync.jobs.queue import create_huey, queue_health

    try:
        health = queue_health(create_huey(settings))
    except Exception as exc:
        detail = _scrub(str(exc) or type(exc).__name__, settings)
        return Check("queue", False, f"{settings.queue.backend}: does not answer: {detail}")
    return Check("queue", True, f"{health['backend']}: answers, {health['pending']} job(s) waiting")


async def check_session_store(settings: Settings) -> Check:
    """`[auth] session_store`: the database (checked above), or a Redis that answers."""
    from clipsync.services.session_store import store_for

    store = store_for(settings)
    if store.name != "redis":
        return Check("session store", True, f"{store.name}: sign-in sessions kept there")
    try:
        await store.open()
    except ConfigError as exc:
        return Check("session store", False, str(exc))
    finally:
        await store.close()
    return Check("session store", True, "redis: answers")


async def check_sharing(settings: Settings) -> Check:
    """With PostgreSQL: is everything another host needs shared (clipsync/host_sharing.py)?"""
    from clipsync.host_sharing import sharing_check

    try:
        ok, required, detail = await sharing_check(settings)
    except Exception as exc:  # the database check above says why
        detail = _scrub(str(exc) or type(exc).__name__, settings)
        return Check("hosts", False, f"cannot tell: {detail}", required=False)
    return Check("hosts", ok, detail, required=required)


def check_backends(host: PluginHost, settings: Settings) -> list[Check]:
    """One backend of every kind, chosen as start-up chooses it; every transcoder probed."""
    checks: list[Check] = []
    registries = gather(host)
    for kind in KINDS:
        options = getattr(settings, kind, None)
        wanted = getattr(options, "backend", "auto")
        fallback = getattr(options, "fallback", "")
        try:
            selection: Selection = choose(kind, registries[kind], host, settings, wanted, fallback)
        except ConfigError as exc:
            checks.append(Check(kind, False, str(exc)))
            continue
        name = selection.chosen.name
        checks.append(
            Check(kind, True, f"{name} from {selection.chosen.plugin}: {selection.reason}")
        )
        if kind == "storage" and (cross_origin := check_cross_origin(selection, settings)):
            checks.append(cross_origin)
    for entry in sorted(registries["transcoder"].values(), key=lambda e: -e.priority):
        context = BackendContext(settings=settings, config=host.plugin_config(entry.plugin))
        availability = entry.probe(context)
        state = "available" if availability.ok else "unavailable"
        checks.append(
            Check(
                f"transcoder {entry.name}",
                availability.ok,
                f"{state} (priority {entry.priority}): {availability.reason}",
                required=False,
            )
        )
    return checks


def check_cross_origin(selection: Selection, settings: Settings) -> Check | None:
    """With presigned playback, may the site's pages read media from the store?

    Players fetch segments from the store cross-origin, which a browser allows only
    when the store's CORS rules name the site's origin. A backend that can tell
    (`cross_origin_problem(origin)`, the `s3` one asks the store as a browser would)
    is asked; None when playback is proxied or the backend cannot tell.
    """
    problem_of = getattr(selection.instance, "cross_origin_problem", None)
    if settings.storage.playback != "presigned" or problem_of is None:
        return None
    parts = urlsplit(settings.server.base_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    try:
        problem = problem_of(origin)
    except Exception as exc:
        problem = f"cannot tell whether browsers on {origin} may read it: {exc}"
    if problem is not None:
        return Check("storage cors", False, problem)
    return Check("storage cors", True, f"pages on {origin} may play media from the store")


def _ffmpeg_of(host: PluginHost | None, settings: Settings) -> str:
    """The ffmpeg the CPU transcoder is configured with (the others default to the same)."""
    config = host.plugin_config("transcoder_cpu") if host else None
    return getattr(config, "ffmpeg", "ffmpeg")


async def _within(name: str, check: Awaitable[Check]) -> Check:
    try:
        return await asyncio.wait_for(check, TIMEOUT)
    except TimeoutError:
        return Check(name, False, f"no answer within {TIMEOUT:g} s")


async def check_notifiers(host: PluginHost) -> list[Check]:
    """Each notifier with a `probe()`: can it reach outside now?

    A notifier whose `enabled` is False (email with no SMTP host) is reported for
    information; one that is set up but cannot work fails the run.
    """
    from clipsync.services.notifications import make_notifiers

    checks = []
    for notifier in make_notifiers(host):
        probe = getattr(notifier, "probe", None)
        if probe is None:
            continue
        name = f"notify {notifier.name}"
        enabled = bool(getattr(notifier, "enabled", True))
        try:
            availability = await asyncio.wait_for(probe(), TIMEOUT)
        except TimeoutError:
            checks.append(Check(name, False, f"no answer within {TIMEOUT:g} s", required=enabled))
            continue
        except Exception as exc:
            detail = str(exc) or type(exc).__name__
            checks.append(Check(name, False, f"probe failed: {detail}", required=enabled))
            continue
        checks.append(Check(name, availability.ok, availability.reason, required=enabled))
    return checks


async def check_plugins(host: PluginHost) -> list[Check]:
    """What the plugins ask the doctor to check (the `doctor_checks` hook)."""
    checks: list[Check] = []
    for impl in host.pm.hook.doctor_checks.get_hookimpls():
        name = impl.plugin_name
        # As pluggy does: an implementation takes only the arguments it names.
        arguments = {"plugins": host} if "plugins" in impl.argnames else {}
        try:
            found = await asyncio.wait_for(await_me_maybe(impl.function(**arguments)), TIMEOUT)
        except TimeoutError:
            checks.append(Check(name, False, f"no answer within {TIMEOUT:g} s"))
            continue
        except Exception as exc:
            checks.append(Check(name, False, f"its check failed: {exc or type(exc).__name__}"))
            continue
        checks += list(found or ())
    return checks


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a person would fix them."""
    host: PluginHost | None = None
    plugins: list[Check] = []
    try:
        host = create_plugin_host(settings)
        plugins.append(Check("plugins", True, f"{len(host.infos)} loaded"))
    except ConfigError as exc:
        plugins.append(Check("plugins", False, str(exc)))
    checks = [
        program_version("ffmpeg", _ffmpeg_of(host, settings)),
        program_version("ffprobe", settings.uploads.ffprobe),
        await asyncio.to_thread(check_data_dir, settings),
        await check_database(settings),
        await _within("queue", asyncio.to_thread(check_queue, settings)),
        await _within("session store", check_session_store(settings)),
        await _within("hosts", check_sharing(settings)),
        *plugins,
    ]
    if host is not None:
        try:
            checks += await asyncio.to_thread(check_backends, host, settings)
        except ConfigError as exc:  # two plugins register one name, say
            checks.append(Check("backends", False, str(exc)))
        checks += await check_notifiers(host)
        checks += await check_plugins(host)
    return checks


def report(checks: Iterable[Check], settings: Settings) -> str:
    checks = list(checks)
    width = max(len(c.name) for c in checks)
    lines = [f"ClipSync doctor: {settings.describe()}"]
    for check in checks:
        mark = "ok" if check.ok else ("FAIL" if check.required else "--")
        lines.append(f"  {mark:<4}  {check.name:<{width}}  {check.detail}")
    failed = [c.name for c in checks if c.failed]
    if failed:
        lines.append(f"{len(failed)} problem(s) to fix: {', '.join(failed)}.")
    else:
        lines.append("Everything this configuration needs is here.")
    return "\n".join(lines)


def as_json(checks: Iterable[Check]) -> dict[str, Any]:
    checks = list(checks)
    return {"ok": not any(c.failed for c in checks), "checks": [asdict(c) for c in checks]}
