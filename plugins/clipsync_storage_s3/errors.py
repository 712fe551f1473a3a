"""Saying why an S3 call failed, in a person's words and without any secret."""

from __future__ import annotations

from typing import TYPE_CHECKING

from minio.error import InvalidResponseError, S3Error, ServerError
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

if TYPE_CHECKING:
    from . import S3Settings

DEFAULT_REGION = "us-east-1"  # MinIO's, and what AWS calls its default
AUTH_ERRORS = frozenset({"SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken"})


def _scrub(text: str, config: S3Settings) -> str:
    for secret in (config.access_key.reveal(), config.secret_key.reveal()):
        if secret:
            text = text.replace(secret, "********")
    return text


def explain(exc: BaseException, config: S3Settings, action: str) -> str:
    """Say in a person's words why `action` failed; never includes a key or secret."""
    where = f"{'https' if config.secure else 'http'}://{config.endpoint}"
    if isinstance(exc, S3Error):
        code = exc.code or "error"
        if code in AUTH_ERRORS:
            return (
                f"S3 at {where} refused the credentials while trying to {action}: "
                f"the access key or secret key is wrong ({code})"
            )
        if code == "AccessDenied":
            return (
                f"S3 at {where} denied access while trying to {action}: the access key "
                f"has no permission for bucket {config.bucket!r} (AccessDenied)"
            )
        if code == "AuthorizationHeaderMalformed":
            return (
                f"S3 at {where} refused the request to {action}: the region is wrong "
                f"(region = {config.region or DEFAULT_REGION!r}): {exc.message}"
            )
        return _scrub(f"S3 at {where} could not {action}: {code}: {exc.message}", config)
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, SSLError):
        hint = " (is secure = true right for this endpoint?)" if config.secure else ""
        return f"TLS with {config.endpoint} failed{hint}: {exc}"
    # urllib3's NewConnectionError subclasses ConnectTimeoutError: it goes first.
    if isinstance(exc, NewConnectionError):
        text = str(exc)
        marker = "Failed to establish a new connection: "
        detail = text.split(marker, 1)[1] if marker in text else text
        return f"cannot reach the S3 endpoint {config.endpoint}: {detail}"
    if isinstance(exc, ConnectTimeoutError):
        return f"cannot reach the S3 endpoint {config.endpoint}: the connection timed out"
    if isinstance(exc, ReadTimeoutError):
        return f"the S3 endpoint {config.endpoint} stopped answering while trying to {action}"
    if isinstance(exc, ProtocolError):
        hint = "" if config.secure else " (does it want TLS? set secure = true)"
        return f"the S3 endpoint {config.endpoint} dropped the connection{hint}"
    if isinstance(exc, InvalidResponseError):
        return (
            f"{where} answered but not as an S3 API would while trying to {action} "
            "(is this the S3 API port, not a console or another service?)"
        )
    if isinstance(exc, ServerError):
        return f"S3 at {where} failed with a server error while trying to {action}: {exc}"
    if isinstance(exc, HTTPError | OSError):
        return f"cannot reach the S3 endpoint {config.endpoint}: {exc}"
    return _scrub(f"S3 at {where}: could not {action}: {type(exc).__name__}: {exc}", config)


class S3StorageError(OSError):
    """A storage operation failed; the message says why, without secrets."""
