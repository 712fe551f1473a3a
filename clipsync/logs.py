"""Log lines: one set-up for `clipsync serve`, `clipsync worker` and the job consumer.

`[logging]` chooses plain text for a terminal or one JSON object per line for a log
collector (`format`), the level of every logger (`level`) and of some
(`levels = ["clipsync.jobs=DEBUG"]`), and whether each request writes an access line
(`access_log`). Every line carries the id of the request or job it was written for
(`clipsync.request_ids`), so one person's failed upload can be followed from the web
worker into the transcode job it queued.

Sanic installs handlers of its own on its loggers when an app is made; `setup_logging`
takes them off again, so its lines come out in the same format through the same
handler. Call it again after making an app (`clipsync.app.create_app` does).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from clipsync import request_ids

if TYPE_CHECKING:
    from sanic import Request
    from sanic.response import BaseHTTPResponse

    from clipsync.settings import LoggingSettings

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ACCESS_LOGGER = "clipsync.access"
# Loggers too chatty at INFO for an operator, unless `levels` says otherwise.
QUIET = {"tortoise": "WARNING", "aiosqlite": "WARNING", "asyncio": "WARNING"}
# Sanic's loggers: their own handlers go, their lines take the root's.
SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets")

log = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)


def level_problem(value: str) -> str | None:
    """What is wrong with `[logging] level`, or None."""
    return None if value.upper() in LEVELS else f"must be one of {', '.join(LEVELS)}"


def levels_problem(value: list[str]) -> str | None:
    """What is wrong with `[logging] levels`, or None: each entry is "logger=LEVEL"."""
    for entry in value:
        name, sep, level = entry.partition("=")
        if not sep or not name.strip() or level.strip().upper() not in LEVELS:
            return (
                f'has {entry!r}, which is not "logger=LEVEL" '
                f'(e.g. "clipsync.jobs=DEBUG"; levels: {", ".join(LEVELS)})'
            )
    return None


def logger_levels(entries: list[str]) -> dict[str, str]:
    """`["clipsync.jobs=DEBUG"]` as `{"clipsync.jobs": "DEBUG"}`, quiet defaults first."""
    levels = dict(QUIET)
    for entry in entries:
        name, _, level = entry.partition("=")
        levels[name.strip()] = level.strip().upper()
    return levels


class RequestIdFilter(logging.Filter):
    """Stamps each line with the id of the request or job it was written for."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_ids.current()
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id]: message`, the id left out where there is none."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request_tag)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request_tag = f" [{request_id}]" if request_id else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what a log collector parses without a grammar."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "requestId": getattr(record, "request_id", None),
        }
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["excInfo"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["excInfo"] = record.exc_text
        if record.stack_info:
            line["stackInfo"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class ClipSyncHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler `setup_logging` installs, known again when it runs again."""


def setup_logging(settings: LoggingSettings, stream: IO[str] | None = None) -> None:
    """Route every log line, ClipSync's, Huey's and Sanic's, through one handler."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, ClipSyncHandler)]:
        root.removeHandler(old)
        old.close()
    handler = ClipSyncHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    for name in SANIC_LOGGERS:
        sanic_logger = logging.getLogger(name)
        for old in list(sanic_logger.handlers):
            sanic_logger.removeHandler(old)
        sanic_logger.propagate = True
        sanic_logger.setLevel(logging.NOTSET)
    for name, level in logger_levels(settings.levels).items():
        logging.getLogger(name).setLevel(level)
    access_log.disabled = not settings.access_log


def route_pattern(request: Request) -> str | None:
    """The route a request matched (`/api/videos/<video_id:uuid>`), None when none did."""
    route = request.route
    return "/" + route.path.lstrip("/") if route is not None else None


async def log_access(request: Request, response: BaseHTTPResponse) -> None:
    """Response middleware: one line per request, by route pattern, never by raw path.

    The pattern (`/api/videos/<video_id:uuid>`) groups the lines of one endpoint and
    keeps ids and tokens in paths out of the log; unmatched addresses log no route.
    """
    if access_log.disabled or not access_log.isEnabledFor(logging.INFO):
        return
    started = getattr(request.ctx, "started", None)
    actor = getattr(request.ctx, "actor", None)
    fields = {
        "method": request.method,
        "route": route_pattern(request),
        "status": response.status,
        "durationMs": round((time.perf_counter() - started) * 1000, 1) if started else None,
        "userId": getattr(actor, "id", None),
    }
    text = "{method} {route} {status} {durationMs}ms user={userId}".format_map(
        {name: "-" if value is None else value for name, value in fields.items()}
    )
    access_log.info(text, extra={"fields": fields, "request_id": request_ids.request_id(request)})
