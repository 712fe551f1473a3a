"""Request ids: one per request, in its answer, its log lines and the jobs it queues.

Every request gets an id, sent back in the `X-Request-ID` header, in every JSON error
(`requestId`) and on the error page ("Reference: ..."), so a person who reports a
problem hands the administrator the key to its log lines. The id lives in a context
variable while the request runs; `clipsync.logs` stamps it on every log line, and
`clipsync.jobs.tasks` hands it to the jobs the request queues, whose log lines then
carry it too.

An incoming `X-Request-ID` is kept only from a trusted reverse proxy (`[server]
proxies_count` above 0, and the request came through it: Sanic found the client's
address in `X-Forwarded-For`), and only when it is short and made of safe
characters; anyone else could choose an id to hide among, or forge, log lines.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import BaseHTTPResponse

    from clipsync.context import ClipSyncApp

HEADER = "X-Request-ID"
# What an id from a proxy may look like: a UUID, a hex digest, nginx's $request_id,
# Envoy's or Heroku's; nothing that could split or dress up a log line.
VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

_current: ContextVar[str | None] = ContextVar("clipsync_request_id", default=None)


def new_id() -> str:
    return uuid.uuid4().hex


def current() -> str | None:
    """The id of the request (or job) this code runs for, or None outside of one."""
    return _current.get()


@contextmanager
def bound(request_id: str | None) -> Iterator[None]:
    """Run a block as part of request `request_id` (None: of no request)."""
    token = _current.set(request_id)
    try:
        yield
    finally:
        _current.reset(token)


def is_valid(value: str) -> bool:
    return VALID.fullmatch(value) is not None


def from_trusted_proxy(request: Request) -> bool:
    """Whether the request came through one of the `[server] proxies_count` proxies.

    Sanic sets `remote_addr` only when `X-Forwarded-For` holds at least as many
    addresses as there are trusted proxies; a client that reached the server directly,
    past the proxy, does not get one.
    """
    return int(request.app.config.PROXIES_COUNT or 0) > 0 and bool(request.remote_addr)


def request_id(request: Request) -> str:
    """The id of `request`, chosen once: the trusted proxy's, or a fresh one."""
    chosen = getattr(request.ctx, "request_id", None)
    if chosen:
        return chosen
    incoming = request.headers.get(HEADER, "")
    chosen = incoming if incoming and from_trusted_proxy(request) and is_valid(incoming) else None
    request.ctx.request_id = chosen or new_id()
    return request.ctx.request_id


async def start_request(request: Request) -> None:
    """Request middleware, before any other: the id, current for the request's code."""
    request.ctx.started = time.perf_counter()
    # Set, not reset at the end: the error handler and the response middleware log
    # after the handler returns. A keep-alive connection serves its requests one after
    # another in one task, and each sets its own id as it arrives.
    _current.set(request_id(request))


async def add_header(request: Request, response: BaseHTTPResponse) -> None:
    """Response middleware: the id goes back to the client, on errors as on success."""
    response.headers[HEADER] = request_id(request)


def setup_request_ids(app: ClipSyncApp) -> None:
    """The id first of all (even a refused Host gets one), the header and access line last."""
    from clipsync.logs import log_access

    app.register_middleware(start_request, "request", priority=1000)
    app.register_middleware(add_header, "response", priority=1000)
    app.register_middleware(log_access, "response", priority=-1000)
