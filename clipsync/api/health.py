"""`/healthz`: can this server reach its database and its job queue?

`/healthz/live` only says the process answers (checks nothing it depends on: an
orchestrator restarts a process that fails it, and a restart mends no database).
`/healthz/ready` adds the media store, the analytics store and room on disk: whether
it should be sent new work. `/healthz` stays what it always was, for the monitors
that already ask it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json as json_module
import logging
import uuid
from datetime import UTC, datetime

from sanic import Blueprint
from sanic.response import HTTPResponse, json

from clipsync import db
from clipsync.analytics.events import Period
from clipsync.context import ClipSyncRequest
from clipsync.jobs.health import jobs_health
from clipsync.jobs.queue import queue_health
from clipsync.models import Role
from clipsync.services import disk_space
from clipsync.storage import keys

bp = Blueprint("health")
log = logging.getLogger(__name__)
TIMEOUT = 5.0


# A key and a video that never exist: looking them up costs a store one cheap request.
NO_VIDEO = uuid.UUID(int=0)


@bp.get("/healthz/live")
async def live(request: ClipSyncRequest) -> HTTPResponse:
    """The process answers requests; nothing it depends on is asked."""
    return json({"status": "ok"})


@bp.get("/healthz")
async def healthz(request: ClipSyncRequest) -> HTTPResponse:
    checks: dict[str, dict[str, object]] = {}
    try:
        await asyncio.wait_for(db.ping(), TIMEOUT)
        checks["database"] = {"ok": True}
    except Exception as exc:
        log.warning("health check: database unreachable: %s", exc)
        checks["database"] = {"ok": False, "error": "the database does not answer"}
    try:
        details = await asyncio.wait_for(
            asyncio.to_thread(queue_health, request.app.ctx.jobs.huey), TIMEOUT
        )
        checks["queue"] = {"ok": True, **details}
    except Exception as exc:
        log.warning("health check: queue unreachable: %s", exc)
        checks["queue"] = {"ok": False, "error": "the job queue does not answer"}
    checks["jobs"] = await jobs_health(request.app.ctx.jobs.liveness, TIMEOUT)
    healthy = all(check["ok"] for check in checks.values())
    body: dict[str, object] = {"status": "ok" if healthy else "failing"}
    if may_see_details(request):
        body["checks"] = checks
    return json(body, status=200 if healthy else 503)


@bp.get("/healthz/ready")
async def ready(request: ClipSyncRequest) -> HTTPResponse:
    """Should this server take new work: `/healthz`, the media and analytics stores,
    and room on disk above the reserve.

    A full disk is no reason to restart the server (what a failing `/healthz` tells
    an orchestrator), but while less than `[disk] reserve_mb` is free it refuses
    uploads and transcodes, so it is not ready; nor is it while the media store or
    the analytics store does not answer. The answer is `/healthz`'s, with `storage`,
    `analytics` and `disk` checks added (shown to those who may see the details).
    """
    basic = await healthz(request)
    body = json_module.loads(basic.body)
    ctx = request.app.ctx
    added = {
        "storage": await storage_check(request),
        "analytics": await analytics_check(request),
        "disk": await asyncio.to_thread(disk_space.report, ctx.settings, ctx.backends.storage),
    }
    if not added["disk"]["ok"]:
        log.warning("readiness check: %s", added["disk"]["error"])
    if "checks" in body:
        body["checks"].update(added)
    healthy = basic.status == 200 and all(check["ok"] for check in added.values())
    body["status"] = "ok" if healthy else "failing"
    return json(body, status=200 if healthy else 503)


async def storage_check(request: ClipSyncRequest) -> dict[str, object]:
    storage = request.app.ctx.backends.storage
    try:
        await asyncio.wait_for(storage.size(keys.source_key(NO_VIDEO, "healthz")), TIMEOUT)
        return {"ok": True}
    except Exception as exc:
        log.warning("readiness check: media store unreachable: %s", exc)
        return {"ok": False, "error": "the media store does not answer"}


async def analytics_check(request: ClipSyncRequest) -> dict[str, object]:
    analytics = request.app.ctx.backends.analytics
    today = datetime.now(UTC).date()
    try:
        await asyncio.wait_for(analytics.video_stats(str(NO_VIDEO), Period(today, today)), TIMEOUT)
        return {"ok": True}
    except Exception as exc:
        log.warning("readiness check: analytics store unreachable: %s", exc)
        return {"ok": False, "error": "the analytics store does not answer"}


def may_see_details(request: ClipSyncRequest) -> bool:
    """Which check failed, queue depths and backends are for admins and the host itself.

    A load balancer or monitor needs only the status (and the status code); the
    details map the installation for an attacker. "The host itself" is the client
    address as the trusted proxies report it: behind a reverse proxy on the same
    machine, `[server] proxies_count` must be set, or every visitor looks local.
    """
    actor = request.ctx.actor
    if actor is not None and actor.role == Role.ADMIN:
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or request.ip)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or bool(mapped and mapped.is_loopback)
