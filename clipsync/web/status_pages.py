"""`/admin/status`: the server's health at a glance, for admins.

Rendered whole on the server, without JavaScript: the "Run checks" button is a GET
form (`?checks=run`) that runs the doctor's checks, which may take seconds, only
when asked; the page itself never waits for them.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse

from clipsync.context import ClipSyncRequest
from clipsync.services import site_status
from clipsync.sessions import require_user
from clipsync.web.admin_pages import render

bp = Blueprint("status_pages")


@bp.get("/admin/status")
async def status_page(request: ClipSyncRequest) -> HTTPResponse:
    site_status.require_admin(require_user(request))
    run = request.args.get("checks") == "run"
    found = await site_status.status(request.app.ctx, run_checks=run)
    return render(request, "admin/status.html", "status", report=found)
