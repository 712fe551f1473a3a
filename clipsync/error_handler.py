"""The one place errors become responses.

API requests get `{"error": {"code", "message", "requestId"}}` with the right
status; page requests get the theme's `error.html`, which shows the request id as a
reference (`clipsync.request_ids`: the key to the request's log lines). Sanic's own
errors (unknown URL, wrong method, body too large, malformed JSON) are translated to
the same shapes, and anything unexpected is logged in full and shown as a plain 500
without details.

Two kinds of failure are not the code's fault and are never a 500:

- a service ClipSync depends on does not answer (the database, the job queue, the
  media store, the analytics store): 503 with Retry-After and a message that names
  it (`outage()`). Nothing is cached about the failure, so the next request after
  the service returns simply works;
- a disk is full: 507 (`clipsync.services.disk_space.is_disk_full`).

Both are recognised here, once, from the exception and what caused it, so no
handler or service has to catch a driver's errors itself.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

from sanic import Request
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, empty, json, redirect

from clipsync import errors, request_ids
from clipsync.services.disk_space import is_disk_full
from clipsync.sessions import is_api

if TYPE_CHECKING:
    from clipsync.context import ClipSyncApp

log = logging.getLogger(__name__)

SANIC_CODES = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
    429: errors.TooManyRequests,
    503: errors.ServiceUnavailable,
}


# Exceptions that mean "cannot reach it now", by qualified class name anywhere in
# their class hierarchy, so the core imports no driver: a lost or refused connection,
# a timeout, a server shutting down or starting up, an S3 endpoint answering 5xx.
UNREACHABLE = frozenset(
    {
        "builtins.ConnectionError",  # refused, reset, aborted, broken pipe
        "builtins.TimeoutError",
        "socket.gaierror",  # the host name does not resolve
        "asyncpg.exceptions.PostgresConnectionError",
        "asyncpg.exceptions.CannotConnectNowError",
        "asyncpg.exceptions.AdminShutdownError",
        "asyncpg.exceptions.CrashShutdownError",
        "asyncpg.exceptions.TooManyConnectionsError",
        "redis.exceptions.ConnectionError",
        "redis.exceptions.TimeoutError",
        "urllib3.exceptions.TimeoutError",
        "urllib3.exceptions.ProtocolError",
        "urllib3.exceptions.MaxRetryError",
        "minio.error.ServerError",
        "clickhouse_driver.errors.NetworkError",
        "clickhouse_driver.errors.SocketTimeoutError",
    }
)
# Which service a failure came from: the top-level package of an exception's class,
# or of the code that raised it (a refused connection is a plain ConnectionError,
# raised inside asyncpg or redis).
DEPENDENCIES: dict[str, type[errors.ServiceUnavailable]] = {
    "asyncpg": errors.DatabaseUnavailable,
    "tortoise": errors.DatabaseUnavailable,
    "aiosqlite": errors.DatabaseUnavailable,
    "sqlite3": errors.DatabaseUnavailable,
    "redis": errors.QueueUnavailable,
    "huey": errors.QueueUnavailable,
    "minio": errors.StorageUnavailable,
    "urllib3": errors.StorageUnavailable,
    "botocore": errors.StorageUnavailable,
    "clickhouse_driver": errors.AnalyticsUnavailable,
}


def _type_names(exception: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exception).__mro__}


def _packages(exception: BaseException) -> Iterator[str]:
    """Top-level packages behind `exception`: its class's, then its raisers', innermost first."""
    yield type(exception).__module__.partition(".")[0]
    frames = [frame for frame, _ in traceback.walk_tb(exception.__traceback__)]
    for frame in reversed(frames):
        yield str(frame.f_globals.get("__name__", "")).partition(".")[0]


def outage(exception: BaseException) -> errors.ServiceUnavailable | None:
    """The 503 for an exception that says a service ClipSync needs cannot be reached."""
    chain = list(errors.causes(exception))
    if not any(_type_names(error) & UNREACHABLE for error in chain):
        return None
    for error in chain:
        for package in _packages(error):
            if package in DEPENDENCIES:
                return DEPENDENCIES[package]()
    return errors.ServiceUnavailable(
        "A service this site needs is not reachable right now. Please try again in a moment."
    )


def as_clipsync_error(exception: BaseException) -> errors.ClipSyncError:
    if isinstance(exception, errors.ClipSyncError):
        return exception
    if is_disk_full(exception):
        return errors.InsufficientStorage()
    unavailable = outage(exception)
    if unavailable is not None:
        return unavailable
    if isinstance(exception, SanicException):
        status = int(getattr(exception, "status_code", 500) or 500)
        kind = SANIC_CODES.get(status)
        if status == 400 and "json" in str(exception).lower():
            return errors.BadRequest("The request body is not valid JSON.")
        if status == 413:
            return errors.PayloadTooLarge("The request body is larger than this server accepts.")
        if kind is errors.TooManyRequests:
            return errors.TooManyRequests(retry_after=60)
        if kind is not None:
            return kind()
    return errors.ClipSyncError()


class ClipSyncErrorHandler(ErrorHandler):
    def default(self, request: Request, exception: BaseException) -> HTTPResponse:
        if isinstance(exception, RequestCancelled):
            # The client went away mid-request: nobody will read an answer.
            return empty(status=503)
        error = as_clipsync_error(exception)
        if isinstance(error, errors.ServiceUnavailable | errors.InsufficientStorage):
            # An outage or a full disk, not a bug: one line per request, no traceback.
            log.warning(
                "%s %s: %s (%s: %s)",
                request.method,
                request.path,
                error.code,
                type(exception).__name__,
                exception,
            )
        elif error.status >= 500:
            log.error("unhandled error on %s %s", request.method, request.path, exc_info=exception)
        # The id of a request refused before any middleware ran is chosen here.
        request_id = request_ids.request_id(request) if request is not None else None
        if request is None or is_api(request):
            body = error.to_json()
            body["error"]["requestId"] = request_id
            response = json(body, status=error.status)
        elif isinstance(error, errors.Unauthorized) and request.method in ("GET", "HEAD"):
            target = quote(
                request.path + (f"?{request.query_string}" if request.query_string else "")
            )
            return redirect(f"/login?next={target}", status=303)
        else:
            app: ClipSyncApp = request.app
            response = app.ctx.templates.render(
                request, "error.html", status=error.status, error=error, request_id=request_id
            )
        for name, value in error.headers.items():
            response.headers[name] = value
        return response
