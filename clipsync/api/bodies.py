"""Reading request bodies: JSON objects and form fields, with clear errors."""

from __future__ import annotations

from typing import Any

from sanic import Request

from clipsync.errors import BadRequest, PayloadTooLarge


def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    if not request.body:
        raise BadRequest("Send a JSON object in the request body.")
    # The HTTP server refuses larger bodies before reading them; this also holds
    # when ClipSync runs under another ASGI server.
    if len(request.body) > request.app.config.REQUEST_MAX_SIZE:
        raise PayloadTooLarge("The request body is larger than this server accepts.")
    try:
        body = request.load_json()
    except Exception:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def form_fields(request: Request, *names: str) -> dict[str, str]:
    """The named fields of a submitted form, as stripped strings ('' when absent)."""
    form = request.form or {}
    return {name: (form.get(name) or "") for name in names}
