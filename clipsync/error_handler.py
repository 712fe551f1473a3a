"""The one place errors become responses.

API requests get `{"error": {"code", "message"}}` with the right status; page
requests get the theme's `error.html`. Sanic's own errors (unknown URL, wrong
method, body too large, malformed JSON) are translated to the same shapes, and
anything unexpected is logged in full and shown as a plain 500 without details.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

from sanic import Request
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, empty, json, redirect

from clipsync import errors
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


def as_clipsync_error(exception: BaseException) -> errors.ClipSyncError:
    if isinstance(exception, errors.ClipSyncError):
        return exception
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
        if error.status >= 500:
            log.error("unhandled error on %s %s", request.method, request.path, exc_info=exception)
        if request is None or is_api(request):
            response = json(error.to_json(), status=error.status)
        elif isinstance(error, errors.Unauthorized) and request.method in ("GET", "HEAD"):
            target = quote(
                request.path + (f"?{request.query_string}" if request.query_string else "")
            )
            return redirect(f"/login?next={target}", status=303)
        else:
            app: ClipSyncApp = request.app
            response = app.ctx.templates.render(
                request, "error.html", status=error.status, error=error
            )
        for name, value in error.headers.items():
            response.headers[name] = value
        return response
