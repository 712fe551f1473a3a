"""Every error a person can see, defined once.

A `ClipSyncError` carries an HTTP status, a stable machine-readable `code` and a
message written for the person who will read it. The API renders it as
`{"error": {"code", "message"}}`; pages render it with the theme's error template
(see `clipsync.error_handler`). Raise these from services; handlers never build error
responses by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar


def causes(exception: BaseException) -> Iterator[BaseException]:
    """The exception, then what caused it (`raise ... from`, or raised while handling it),
    and so on, each once: where a driver's error hides behind a library's own."""
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key."""


class ClipSyncError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Something went wrong on our side. Please try again."

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.headers = dict(headers or {})
        self.details = dict(details or {})
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        return {"error": body}


class BadRequest(ClipSyncError):
    status = 400
    code = "bad_request"
    default_message = "The request could not be understood."


class UnknownHost(ClipSyncError):
    status = 400
    code = "unknown_host"
    default_message = "This server does not answer to the name this request was sent to."


class ValidationFailed(ClipSyncError):
    status = 422
    code = "invalid"
    default_message = "Some of the values given are not valid."

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, details={"field": field} if field else None)


class Unauthorized(ClipSyncError):
    status = 401
    code = "unauthorized"
    default_message = "Please sign in."


class Forbidden(ClipSyncError):
    status = 403
    code = "forbidden"
    default_message = "You are not allowed to do that."


class NotFound(ClipSyncError):
    status = 404
    code = "not_found"
    default_message = "There is nothing here."


class MethodNotAllowed(ClipSyncError):
    status = 405
    code = "method_not_allowed"
    default_message = "This address does not accept that kind of request."


class UnsupportedUpload(ClipSyncError):
    status = 422
    code = "unsupported_media"
    default_message = "This file is not a video ClipSync can use."


class Conflict(ClipSyncError):
    status = 409
    code = "conflict"
    default_message = "That conflicts with what is already there."


class PayloadTooLarge(ClipSyncError):
    status = 413
    code = "too_large"
    default_message = "The request is too large."


class TooManyRequests(ClipSyncError):
    status = 429
    code = "too_many_requests"
    default_message = "Too many attempts. Please wait and try again."

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, headers={"Retry-After": str(self.retry_after)})


# Seconds a client is told to wait (Retry-After) when a service ClipSync needs is away.
RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(ClipSyncError):
    """503 with Retry-After: something ClipSync needs does not answer, for now."""

    status = 503
    code = "unavailable"
    default_message = "The service is not available right now. Please try again shortly."

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int = RETRY_AFTER_SECONDS,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        headers = {"Retry-After": str(max(1, int(retry_after))), **(headers or {})}
        super().__init__(message, headers=headers, details=details)


# One kind per service ClipSync depends on: the error handler maps a lost connection
# to whichever of these it came from (see `clipsync.error_handler.outage`).


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    default_message = (
        "The database is not reachable right now. Please try again in a moment: "
        "the site recovers by itself as soon as it answers."
    )


class QueueUnavailable(ServiceUnavailable):
    code = "queue_unavailable"
    default_message = (
        "The job queue is not reachable right now, so no video can be queued for "
        "processing. Please try again in a moment."
    )


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"
    default_message = (
        "The media store is not reachable right now, so videos can be neither stored "
        "nor played. Please try again in a moment."
    )


class AnalyticsUnavailable(ServiceUnavailable):
    code = "analytics_unavailable"
    default_message = (
        "The analytics store is not reachable right now. Watch events are kept and "
        "counted once it is back; please try again in a moment."
    )


class InsufficientStorage(ClipSyncError):
    """507: the server's disk has no room for this, or is full."""

    status = 507
    code = "insufficient_storage"
    default_message = (
        "The server's disk is full, so nothing was stored. Please try again later, "
        "or tell the site's administrator."
    )


class DirectUploadUnavailable(ClipSyncError):
    status = 501
    code = "direct_upload_unavailable"
    default_message = (
        "Direct uploads need object storage (S3 or MinIO), and this server keeps media "
        "on local disk. Use the resumable upload at /api/uploads/ instead."
    )


class UploadNotArrived(ClipSyncError):
    status = 409
    code = "upload_not_arrived"
    default_message = (
        "The file has not arrived in storage yet: upload it to the uploadUrl first, "
        "then register it."
    )


class Gone(ClipSyncError):
    status = 410
    code = "gone"
    default_message = "This is no longer available."


class PreconditionFailed(ClipSyncError):
    status = 412
    code = "precondition_failed"
    default_message = "The request does not meet the server's preconditions."


class UnsupportedMediaType(ClipSyncError):
    status = 415
    code = "unsupported_content_type"
    default_message = "The request body has a content type this address does not accept."


class ChecksumMismatch(ClipSyncError):
    # 460 is the tus checksum extension's own status, not a standard HTTP one.
    status = 460
    code = "checksum_mismatch"
    default_message = "The data did not match its checksum and was discarded: send it again."
