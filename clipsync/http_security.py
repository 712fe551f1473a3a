"""The HTTP edge: which Host a request may name, and the security headers of every answer.

Host: a request addressed to a name outside `[server] allowed_hosts` is refused with
400 before anything else runs. ClipSync builds its absolute links from `[server]
public_url`, never from the Host header; refusing unknown names as well keeps a
forged Host out of redirects, logs and anything a plugin might build from it.

Headers, on every response (pages, API, media, errors):

- `Content-Security-Policy`: scripts, styles and everything else from this site
  only, no inline script or style; the player's media from `blob:` (hls.js feeds the
  video element through Media Source Extensions and runs its demuxer in a blob
  worker) and, when media is played from object storage through presigned URLs,
  from that store's origin, derived from the storage backend itself; no framing,
  except for the embed player (`/embed/<id>`), whose handler calls `allow_framing`:
  its `frame-ancestors` are `[sharing] embed_frame_ancestors`.
- `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` and a
  `Permissions-Policy` that turns off the device APIs ClipSync never uses.
- `Cache-Control: no-store` on every answer that does not choose its own caching
  (static files and media do): pages and API answers carry a person's data, and the
  Back button after signing out must not show them again from the browser's cache.

The default theme has no inline script, style attribute or event handler; a theme
that adds one must move it into a file under its `static/` folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from sanic import Request
from sanic.response import BaseHTTPResponse

from clipsync.api.hls import presigning_store
from clipsync.context import ClipSyncApp
from clipsync.errors import UnknownHost
from clipsync.hosts import AllowedHosts
from clipsync.settings import Settings

log = logging.getLogger(__name__)

# Device and browser features ClipSync never asks for. The player's fullscreen and
# picture-in-picture buttons need the last two, for this site only.
PERMISSIONS_POLICY = ", ".join(
    [
        "accelerometer=()",
        "camera=()",
        "display-capture=()",
        "geolocation=()",
        "gyroscope=()",
        "hid=()",
        "magnetometer=()",
        "microphone=()",
        "midi=()",
        "payment=()",
        "serial=()",
        "usb=()",
        "fullscreen=(self)",
        "picture-in-picture=(self)",
    ]
)
# Distinct refused Host names logged per process, so a scanner cannot flood the log.
MAX_LOGGED_HOSTS = 100


def content_security_policy(
    media_origins: Iterable[str] = (), frame_ancestors: Iterable[str] = ()
) -> str:
    """The policy for every response; `media_origins` may serve the player's media.

    `frame_ancestors`: who may frame the page; none (the default) refuses everyone.
    """
    ancestors = " ".join(frame_ancestors) or "'none'"
    media = "".join(f" {origin}" for origin in media_origins)
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": f"'self' blob:{media}",
        "media-src": f"'self' blob:{media}",
        "connect-src": f"'self'{media}",
        "worker-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": ancestors,
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def media_origins(settings: Settings, storage: object) -> tuple[str, ...]:
    """Origins besides this site that players fetch media from.

    With presigned playback, segments come straight from the object store, and the
    poster, sprite and thumbnails redirect there. Its origin is read off a presigned
    URL (signing is pure computation), so it is right for path-style and
    virtual-host-style stores alike, and for any presigning backend a plugin adds.
    """
    store = presigning_store(settings, storage)
    if store is None:
        return ()
    try:
        url = store.presigned_get("clipsync-origin-check", 60)
    except Exception as exc:
        log.warning("cannot tell where presigned media comes from (%s): players may fail", exc)
        return ()
    parts = urlsplit(url)
    return (f"{parts.scheme}://{parts.netloc}",)


def allow_framing(request: Request) -> None:
    """Let this answer be framed by `[sharing] embed_frame_ancestors` (the embed page)."""
    request.ctx.framing_allowed = True


def security_headers(
    settings: Settings, storage: object, *, framed: bool = False
) -> dict[str, str]:
    """The headers of every answer; `framed`: those of an answer `allow_framing` marked."""
    ancestors = settings.sharing.embed_frame_ancestors if framed else ()
    policy = content_security_policy(media_origins(settings, storage), ancestors)
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Permissions-Policy": PERMISSIONS_POLICY,
    }


def setup_http_security(app: ClipSyncApp) -> None:
    """Refuse unknown Host names first of all; add the security headers to every answer."""
    settings = app.ctx.settings
    allowed = AllowedHosts.of(settings.server.host_names)
    headers = security_headers(settings, app.ctx.backends.storage)
    framed_headers = security_headers(settings, app.ctx.backends.storage, framed=True)
    logged: set[str] = set()

    async def refuse_unknown_hosts(request: Request) -> None:
        host = request.host
        if allowed.allows(host):
            return
        shown = host[:100]
        if len(logged) < MAX_LOGGED_HOSTS and shown not in logged:
            logged.add(shown)
            log.warning(
                "refused a request for host %r: not in [server] allowed_hosts %s",
                shown,
                list(settings.server.host_names),
            )
        named = f'the name "{shown}"' if shown else "no name (the request has no Host header)"
        raise UnknownHost(
            f"This server does not answer to {named}. If it should, its administrator "
            "can add the name to [server] allowed_hosts (or set [server] public_url)."
        )

    async def add_security_headers(request: Request, response: BaseHTTPResponse) -> None:
        chosen = framed_headers if getattr(request.ctx, "framing_allowed", False) else headers
        for name, value in chosen.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")

    # Before the set-up redirect (priority 10) and before sessions read the database.
    app.register_middleware(refuse_unknown_hosts, "request", priority=100)
    app.register_middleware(add_security_headers, "response")
