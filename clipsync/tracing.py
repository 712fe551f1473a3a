"""Tracing: OpenTelemetry spans for requests, database queries, storage, jobs and ffmpeg.

The core instruments with the OpenTelemetry API alone; where the spans go is a
plugin's business. Each process that serves requests or runs jobs asks its plugins
once for a tracer provider (the `tracer_provider` hook; the built-in `trace_otel`
exports over OTLP when `[plugins.trace_otel] endpoint` is set). Without one, the
storage backend and the database client are left as they are, and the places that
are always instrumented (Huey's `execute`, the request signals, `run_ffmpeg`) cost
one check each: no span, no context is made.

What is traced, and the name of each span:

- a request: `GET /api/videos/<video_id:uuid>` (the method and the route pattern,
  never the raw path, which may hold a token), with the request id, the user's id and
  the status; a 5xx marks it failed and records the exception. It lasts from the
  request's arrival to its response (a streamed one: to the last chunk). Only a
  trusted proxy's `traceparent` is continued, as only its `X-Request-ID` is kept.
- a database query: `SELECT`, `INSERT`... (its SQL, without the values), inside the
  request or job that ran it (none outside one: housekeeping is not traced);
- a storage call: `storage.put_file`, `storage.read`... (the backend and the key);
- a job: `job.transcode_video`..., in the consumer, with the request id and, when a
  request queued it, as a child of that request's span (the task carries a
  `traceparent` beside its `request_id`);
- an ffmpeg run: `ffmpeg.run` (the program, the media's duration, the exit code).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from clipsync import __version__, logs, request_ids

if TYPE_CHECKING:
    from huey import Huey
    from sanic import Request
    from sanic.response import BaseHTTPResponse

    from clipsync.context import ClipSyncApp
    from clipsync.plugins import PluginHost

log = logging.getLogger(__name__)

INSTRUMENTATION = "clipsync"
TRACEPARENT = "traceparent"
REQUEST_ID = "clipsync.request_id"
# Longer SQL is cut: a span is not a dump of the query log.
MAX_SQL = 2000
# Tortoise's client methods that send SQL to the database.
QUERY_METHODS = (
    "execute_insert",
    "execute_query",
    "execute_query_dict",
    "execute_many",
    "execute_script",
)
# The storage contract's calls that wait on the store (presigning is pure computation).
STORAGE_CALLS = (
    "put_file",
    "put_stream",
    "size",
    "delete_prefix",
    "list",
    "adopt_file",
    "create_multipart",
    "upload_part",
    "complete_multipart",
    "abort_multipart",
)
DIALECTS = {"postgres": "postgresql"}

_propagator = TraceContextTextMapPropagator()
_provider: trace.TracerProvider | None = None
_tracer: trace.Tracer | None = None
# Set while a query's span is open: a client method that calls another makes one span.
_in_query: ContextVar[bool] = ContextVar("clipsync_in_query", default=False)


# -- the provider of this process -------------------------------------------------------


def start(plugins: PluginHost) -> None:
    """Take this process's tracer provider from the plugins (none: no tracing).

    Called before the backends are built, by the app factory and the job runtime.
    """
    provided = [provider for _, provider in plugins.collect("tracer_provider", plugins=plugins)]
    use(provided[0] if provided else None)


def use(provider: trace.TracerProvider | None) -> None:
    """Send ClipSync's spans to `provider` (None: make none); the one before is shut down."""
    global _provider, _tracer
    previous, _provider = _provider, provider
    _tracer = provider.get_tracer(INSTRUMENTATION, __version__) if provider is not None else None
    if previous is not None and previous is not provider:
        _shut_down(previous)


def stop() -> None:
    """Export what is buffered and stop tracing (the process is stopping)."""
    use(None)


def provider() -> trace.TracerProvider | None:
    return _provider


def enabled() -> bool:
    return _tracer is not None


def _shut_down(provider: trace.TracerProvider) -> None:
    # The API's provider has no shutdown; the SDK's exports what it still holds.
    shutdown = getattr(provider, "shutdown", None)
    if shutdown is None:
        return
    try:
        shutdown()
    except Exception:
        log.exception("the tracer provider failed to shut down")


# -- spans for any code -----------------------------------------------------------------


@contextlib.contextmanager
def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span]:
    """A span around a block, current inside it; an exception marks it failed.

    Without tracing it yields a span that records nothing, at the cost of one check.
    """
    tracer = _tracer
    if tracer is None:
        yield INVALID_SPAN
        return
    with tracer.start_as_current_span(name, kind=kind, attributes=_clean(attributes)) as current:
        yield current


def set_attributes(attributes: Mapping[str, Any]) -> None:
    """Add attributes to the current span (none open, or no tracing: nothing)."""
    if _tracer is not None:
        trace.get_current_span().set_attributes(_clean(attributes))


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenTelemetry takes str, bool, int, float (and lists of them); None is left out."""
    cleaned: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if value is None:
            continue
        cleaned[key] = value if isinstance(value, str | bool | int | float) else str(value)
    return cleaned


# -- requests ---------------------------------------------------------------------------


def setup_tracing(app: ClipSyncApp) -> None:
    """A span per request, from Sanic's lifecycle signals; the provider stops with the worker.

    Signals rather than middleware: `http.lifecycle.handle` comes before routing and
    the body is read, and `http.lifecycle.response` after the response middleware.
    With tracing off no signal is registered: Sanic then leaves their dispatch out of
    its request loop (about 60 µs of a segment request).
    """
    if not enabled():
        return
    app.signal("http.lifecycle.handle")(request_started)
    app.signal("http.lifecycle.exception")(request_failed)
    app.signal("http.lifecycle.response")(request_ended)

    @app.after_server_stop
    async def stop_tracing(app: ClipSyncApp) -> None:
        # Exporting the last batch waits on the network: off the event loop.
        await asyncio.to_thread(stop)


def incoming_context(request: Request) -> otel_context.Context:
    """The trace a trusted proxy's `traceparent` continues; a new one otherwise."""
    if request_ids.from_trusted_proxy(request) and TRACEPARENT in request.headers:
        return _propagator.extract({TRACEPARENT: request.headers[TRACEPARENT]})
    # Explicitly empty: a keep-alive connection's earlier request must not be a parent.
    return otel_context.Context()


async def request_started(request: Request) -> None:
    tracer = _tracer
    if tracer is None:
        return
    parent = incoming_context(request)
    current = tracer.start_span(
        request.method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": request.method,
            REQUEST_ID: request_ids.request_id(request),
        },
    )
    request.ctx.trace_span = current
    request.ctx.trace_token = otel_context.attach(trace.set_span_in_context(current, parent))


async def request_failed(request: Request, exception: BaseException) -> None:
    if getattr(request.ctx, "trace_span", None) is not None:
        request.ctx.trace_error = exception


async def request_ended(request: Request, response: BaseHTTPResponse) -> None:
    current: Span | None = getattr(request.ctx, "trace_span", None)
    if current is None:
        return
    request.ctx.trace_span = None
    route = logs.route_pattern(request)
    current.update_name(f"{request.method} {route}" if route else request.method)
    actor = getattr(request.ctx, "actor", None)
    current.set_attributes(
        _clean(
            {
                "http.route": route,
                "http.response.status_code": response.status,
                "user.id": getattr(actor, "id", None),
            }
        )
    )
    if response.status >= 500:
        error = getattr(request.ctx, "trace_error", None)
        if error is not None:
            current.record_exception(error)
        current.set_status(Status(StatusCode.ERROR, f"HTTP {response.status}"))
    current.end()
    with contextlib.suppress(Exception):
        otel_context.detach(request.ctx.trace_token)


# -- the database -----------------------------------------------------------------------


def trace_database() -> None:
    """With tracing on, wrap the query methods of every Tortoise client class loaded.

    Called after `Tortoise.init`, which imports the dialect's client; each class is
    wrapped once, and a wrapped method makes no span while tracing is off.
    """
    if _tracer is None:
        return
    from tortoise.backends.base.client import BaseDBAsyncClient

    for cls in _subclasses(BaseDBAsyncClient):
        for name in QUERY_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_clipsync_traced", False):
                setattr(cls, name, _traced_query(method))


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _traced_query(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def traced(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        tracer = _tracer
        # Only inside a request or a job: housekeeping (lease renewal, the reaper's
        # look every few seconds) would otherwise make a trace per query.
        if tracer is None or _in_query.get() or not trace.get_current_span().is_recording():
            return await method(self, query, *args, **kwargs)
        operation = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
        dialect = getattr(getattr(self, "capabilities", None), "dialect", "")
        attributes = {
            "db.system.name": DIALECTS.get(dialect, dialect),
            "db.operation.name": operation,
            "db.query.text": query[:MAX_SQL],
        }
        token = _in_query.set(True)
        try:
            with tracer.start_as_current_span(
                operation or "db.query", kind=SpanKind.CLIENT, attributes=_clean(attributes)
            ):
                return await method(self, query, *args, **kwargs)
        finally:
            _in_query.reset(token)

    traced._clipsync_traced = True  # type: ignore[attr-defined]
    return traced


# -- storage ----------------------------------------------------------------------------


def trace_storage(storage: Any) -> Any:
    """With tracing on, give the storage backend's calls spans; return the same instance.

    The instance's own methods are wrapped (not a proxy around it), so it stays what
    it was for `isinstance` and the optional contracts (`PresigningStorage`...).
    """
    if _tracer is None:
        return storage
    backend = str(getattr(storage, "name", type(storage).__name__))
    for name in STORAGE_CALLS:
        method = getattr(storage, name, None)
        if method is not None and inspect.iscoroutinefunction(method):
            setattr(storage, name, _traced_call(method, f"storage.{name}", backend))
    if inspect.isasyncgenfunction(getattr(storage, "read", None)):
        storage.read = _traced_read(storage.read, backend)
    if callable(getattr(storage, "open_local", None)):
        storage.open_local = _traced_open_local(storage.open_local, backend)
    return storage


def _storage_attributes(backend: str, key: Any) -> dict[str, Any]:
    return {"clipsync.storage.backend": backend, "clipsync.storage.key": key}


def _traced_call(method: Callable[..., Any], name: str, backend: str) -> Callable[..., Any]:
    @functools.wraps(method)
    async def traced(key: Any, *args: Any, **kwargs: Any) -> Any:
        with span(name, _storage_attributes(backend, key), kind=SpanKind.CLIENT) as current:
            result = await method(key, *args, **kwargs)
            if name == "storage.put_stream" and isinstance(result, int):
                current.set_attribute("clipsync.storage.bytes", result)
            return result

    return traced


def _traced_read(method: Callable[..., AsyncIterator[bytes]], backend: str) -> Callable[..., Any]:
    @functools.wraps(method)
    async def read(key: str, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        tracer = _tracer
        async with contextlib.aclosing(method(key, *args, **kwargs)) as chunks:
            if tracer is None:
                async for chunk in chunks:
                    yield chunk
                return
            # Not made current: the reader's own code runs between the chunks.
            current = tracer.start_span(
                "storage.read", kind=SpanKind.CLIENT, attributes=_storage_attributes(backend, key)
            )
            size = 0
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    yield chunk
            except Exception as exc:
                current.record_exception(exc)
                current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                current.set_attribute("clipsync.storage.bytes", size)
                current.end()

    return read


def _traced_open_local(
    method: Callable[[str], contextlib.AbstractAsyncContextManager[Path]], backend: str
) -> Callable[[str], contextlib.AbstractAsyncContextManager[Path]]:
    @contextlib.asynccontextmanager
    async def open_local(key: str) -> AsyncIterator[Path]:
        async with contextlib.AsyncExitStack() as stack:
            # The span covers getting the file (a download, from object storage), not its use.
            attributes = _storage_attributes(backend, key)
            with span("storage.open_local", attributes, kind=SpanKind.CLIENT):
                path = await stack.enter_async_context(method(key))
            yield path

    return open_local


# -- jobs -------------------------------------------------------------------------------


def carried_trace() -> dict[str, str]:
    """The `traceparent` keyword argument that makes a queued job part of this trace."""
    if _tracer is None:
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return {TRACEPARENT: carrier[TRACEPARENT]} if TRACEPARENT in carrier else {}


def trace_jobs(huey: Huey) -> None:
    """A span around each task Huey runs, a child of the request's when one queued it.

    Around `huey.execute`, like `jobs.tasks.carry_request_ids`; the span is current in
    the worker thread, and `WorkerRuntime.run` hands it on to the job's coroutine.
    Huey handles a task's exception itself, so `post_execute` records it.
    """
    execute = huey.execute

    def execute_traced(task: Any, timestamp: Any = None) -> Any:
        tracer = _tracer
        # A task that arrives before its time is only put aside for later: no span.
        if tracer is None or not huey.ready_to_run(task, timestamp):
            return execute(task, timestamp)
        kwargs = task.kwargs or {}
        parent = otel_context.Context()
        if kwargs.get(TRACEPARENT):
            parent = _propagator.extract({TRACEPARENT: kwargs[TRACEPARENT]})
        attributes = {
            "clipsync.job.name": task.name,
            "clipsync.job.id": task.id,
            "clipsync.job.retries_left": task.retries,
            REQUEST_ID: kwargs.get("request_id"),
        }
        with tracer.start_as_current_span(
            f"job.{task.name}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=_clean(attributes),
        ):
            return execute(task, timestamp)

    huey.execute = execute_traced  # type: ignore[method-assign]

    @huey.post_execute()
    def record_failure(task: Any, value: Any, exc: BaseException | None) -> None:
        if exc is not None and _tracer is not None:
            current = trace.get_current_span()
            current.record_exception(exc)
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
