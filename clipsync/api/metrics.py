"""`GET /metrics`: the Prometheus text format, for a scraper (see `clipsync.metrics`).

Off unless `[metrics] enabled` (then the address is not found, as if there were no
such route). Who may scrape:

- with `[metrics] token` set, a request that sends it as a bearer token
  (`Authorization: Bearer <token>`); any other is answered 401;
- without a token, only a client on this machine: a loopback address that did not
  come through a proxy. A request carrying a forwarding header (`X-Forwarded-For`,
  `Forwarded`, `X-Real-IP`) is refused even from loopback, since a reverse proxy on
  the same machine would otherwise make every visitor look local. Others get 403,
  whose message says how to allow them.

The counts say how busy the site is and how its sign-ins fail: not for everyone,
but not secret enough to hide that the address exists. Refusals are plain text with
the bare status, what a scraper reports, never the sign-in page a browser would get.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from sanic import Blueprint
from sanic.response import HTTPResponse, raw, text

from clipsync import metrics
from clipsync.context import ClipSyncApp, ClipSyncRequest
from clipsync.sessions import bearer_token

bp = Blueprint("metrics")

FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
NO_TOKEN = "Send the metrics token ([metrics] token) as a bearer token."
NOT_LOCAL = (
    "Metrics are served to this machine only (loopback, not through a proxy). "
    "Set [metrics] token to let a scraper elsewhere send it as a bearer token."
)


def setup_metrics(app: ClipSyncApp) -> None:
    """Count every request (when metrics are on) and serve `/metrics`."""
    if app.ctx.settings.metrics.enabled:
        # Last of the response middleware, like the access line: the final status.
        app.register_middleware(metrics.observe_request, "response", priority=-1000)
    app.blueprint(bp)


@bp.get("/metrics")
async def scrape(request: ClipSyncRequest) -> HTTPResponse:
    settings = request.app.ctx.settings.metrics
    if not settings.enabled:
        return text("Metrics are off ([metrics] enabled = false).", status=404)
    if settings.token:
        given = bearer_token(request) or ""
        if not hmac.compare_digest(given.encode(), settings.token.reveal().encode()):
            challenge = {"WWW-Authenticate": 'Bearer realm="metrics"'}
            return text(NO_TOKEN, status=401, headers=challenge)
    elif not is_local(request):
        return text(NOT_LOCAL, status=403)
    snapshot = await metrics.scrape_gauges(request.app.ctx.jobs.huey)
    # Reads every process's files: off the event loop.
    body = await asyncio.to_thread(metrics.exposition, snapshot)
    return raw(body, content_type=metrics.CONTENT_TYPE)


def is_local(request: ClipSyncRequest) -> bool:
    """A loopback client that reached this process directly, through no proxy."""
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.ip)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or bool(mapped and mapped.is_loopback)
