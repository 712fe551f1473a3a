"""`/healthz`: can this server reach its database and its job queue?

`/healthz/ready` adds whether it has room on disk to take new work.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json as json_module
import logging

from sanic import Blueprint
from sanic.response import HTTPResponse, json

from clipsync import db
from clipsync.context import ClipSyncRequest
from clipsync.jobs.health import jobs_health
from clipsync.jobs.queue import queue_health
from clipsync.models import Role
from clipsync.services import disk_space

bp = Blueprint("health")
log = logging.getLogger(__name__)
TIMEOUT = 5.0


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
    """Should this server take new work: `/healthz`, and room on disk above the reserve.

    A full disk is no reason to restart the server (what a failing `/healthz` tells
    an orchestrator), but while less than `[disk] reserve_mb` is free it refuses
    uploads and transcodes, so it is not ready. The answer is `/healthz`'s, with a
    `disk` check added (shown to those who may see the details).
    """
    live = await healthz(request)
    body = json_module.loads(live.body)
    ctx = request.app.ctx
    disk = await asyncio.to_thread(disk_space.report, ctx.settings, ctx.backends.storage)
    if not disk["ok"]:
        log.warning("readiness check: %s", disk["error"])
    if "checks" in body:
        body["checks"]["disk"] = disk
    healthy = live.status == 200 and disk["ok"]
    body["status"] = "ok" if healthy else "failing"
    return json(body, status=200 if healthy else 503)


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
