"""`/admin/webhooks`: the console's page for webhooks, admins only.

Rendered whole on the server (the list and the last deliveries work without
JavaScript); the theme's `js/admin_webhooks.js` adds a webhook through the API, shows
its secret once, and deletes one after a confirmation.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse

from clipsync.context import ClipSyncRequest
from clipsync.services import webhooks
from clipsync.sessions import require_user
from clipsync.web.admin_pages import render

bp = Blueprint("webhook_pages")

# Deliveries shown in the page's "last deliveries" table, all webhooks together.
DELIVERIES_SHOWN = 50


@bp.get("/admin/webhooks")
async def webhooks_page(request: ClipSyncRequest) -> HTTPResponse:
    user = webhooks.require_admin(require_user(request))
    found = await webhooks.list_webhooks(user)
    urls = {w.id: webhooks.redact(w.url) for w in found}
    deliveries = await webhooks.recent_deliveries(user, limit=DELIVERIES_SHOWN)
    return render(
        request,
        "admin/webhooks.html",
        "webhooks",
        webhooks=[webhooks.webhook_json(w) for w in found],
        deliveries=[
            webhooks.delivery_json(d) | {"url": urls.get(d.webhook_id, d.recipient)}
            for d in deliveries
        ],
        events=webhooks.EVENTS,
        formats=webhooks.FORMATS,
        enabled=request.app.ctx.plugins.plugin_config(webhooks.PLUGIN) is not None,
    )
