"""`GET /api/admin/status`: the admin status page's figures, as JSON.

Admins only (others 403, anonymous 401). `?checks=run` runs the doctor's checks
first (or reuses an answer under a minute old); without it `doctor` is the last
answer this worker process has, or null. The shape is in `docs/operations.md`.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, json

from clipsync.context import ClipSyncRequest
from clipsync.services import site_status
from clipsync.sessions import require_user

bp = Blueprint("api_status", url_prefix="/api/admin/status")


@bp.get("")
async def status(request: ClipSyncRequest) -> HTTPResponse:
    site_status.require_admin(require_user(request))
    run = request.args.get("checks") == "run"
    return json(await site_status.status(request.app.ctx, run_checks=run))
