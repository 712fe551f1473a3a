"""`/api/admin/webhooks`: the URLs that hear about videos, and their last deliveries.

Admins only (others 403, anonymous 401). The secret that signs a webhook's POSTs is
in the answer to its creation and nowhere else.
"""

from __future__ import annotations

from sanic import Blueprint
from sanic.response import HTTPResponse, empty, json

from clipsync.api.bodies import json_object
from clipsync.context import ClipSyncRequest
from clipsync.models import User
from clipsync.services import webhooks
from clipsync.sessions import require_user

bp = Blueprint("api_webhooks", url_prefix="/api/admin/webhooks")


def admin(request: ClipSyncRequest) -> User:
    return webhooks.require_admin(require_user(request))


@bp.get("")
async def list_webhooks(request: ClipSyncRequest) -> HTTPResponse:
    """Every webhook with its last deliveries, and what a new one may choose."""
    user = admin(request)
    items = []
    for webhook in await webhooks.list_webhooks(user):
        recent = await webhooks.recent_deliveries(user, webhook.id)
        items.append(
            webhooks.webhook_json(webhook)
            | {"recentDeliveries": [webhooks.delivery_json(d) for d in recent]}
        )
    return json({"items": items, "events": webhooks.EVENTS, "formats": webhooks.FORMATS})


@bp.post("")
async def create(request: ClipSyncRequest) -> HTTPResponse:
    user = admin(request)
    body = json_object(request)
    webhook, secret = await webhooks.create(
        user,
        request.app.ctx.plugins,
        url=body.get("url"),
        events=body.get("events"),
        format=body.get("format"),
        description=body.get("description"),
    )
    return json({"webhook": webhooks.webhook_json(webhook), "secret": secret}, status=201)


@bp.delete("/<webhook_id:int>")
async def delete(request: ClipSyncRequest, webhook_id: int) -> HTTPResponse:
    await webhooks.delete(admin(request), webhook_id)
    return empty()


@bp.get("/<webhook_id:int>/deliveries")
async def deliveries(request: ClipSyncRequest, webhook_id: int) -> HTTPResponse:
    """The webhook's last deliveries, newest first (`?limit=`, at most 100)."""
    user = admin(request)
    raw = request.args.get("limit", "")
    limit = int(raw) if raw.isdigit() else webhooks.RECENT_DELIVERIES
    found = await webhooks.recent_deliveries(user, webhook_id, limit)
    return json({"items": [webhooks.delivery_json(d) for d in found]})
