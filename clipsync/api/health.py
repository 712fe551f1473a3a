"""`/healthz`: can this server reach its database and its job queue?"""

from __future__ import annotations

import asyncio
import logging

from sanic import Blueprint
from sanic.response import HTTPResponse, json

from clipsync import db
from clipsync.context import ClipSyncRequest
from clipsync.jobs.queue import queue_health

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
    healthy = all(check["ok"] for check in checks.values())
    return json(
        {"status": "ok" if healthy else "failing", "checks": checks}, status=200 if healthy else 503
    )
