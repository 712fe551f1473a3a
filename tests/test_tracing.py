"""Tracing (issue 18, item 3): spans for requests, queries, storage, jobs and ffmpeg.

In-process, with the SDK's in-memory exporter added to the provider the `trace_otel`
plugin builds (or one a folder plugin gives through the `tracer_provider` hook), and
a real OTLP/HTTP export to a receiver on loopback, decoded with opentelemetry-proto.
`test_tracing_live.py` follows one upload from the request to the job consumer's
ffmpeg run in a real `clipsync serve`.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from clients import bearer, register, upload, upload_and_register
from clips import make_clip
from conftest import Lifespan
from huey import MemoryHuey
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from otlp_receiver import OtlpReceiver, decode

from clipsync import __version__, db, request_ids, tracing
from clipsync.app import create_app
from clipsync.backends import MultipartStorage, PresigningStorage
from clipsync.context import ClipSyncApp
from clipsync.errors import ConfigError
from clipsync.jobs.tasks import carried_request_id, carry_request_ids
from clipsync.media.errors import TranscodeFailed
from clipsync.media.runner import run_ffmpeg
from clipsync.plugins import create_plugin_host
from clipsync.settings import Settings, parse_settings

PROBE_MODULE = "clipsync_dir_plugin_probe"
# A plugin outside ClipSync with its own tracer provider, and a page that fails.
PROBE_PLUGIN = """
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clipsync import hookimpl
from clipsync.plugins import Route

EXPORTER = InMemorySpanExporter()
SHUT_DOWN = []


class Provider(TracerProvider):
    def shutdown(self):
        SHUT_DOWN.append(self)
        super().shutdown()


async def boom(request):
    raise RuntimeError("the probe broke")


@hookimpl
def tracer_provider(plugins):
    provider = Provider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    return provider


@hookimpl
def register_routes():
    return [Route("/boom", boom)]
"""


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    """One receiver for the module: it outlives every app, whose last spans it takes."""
    with OtlpReceiver() as running:
        yield running


@pytest.fixture
def memory() -> Iterator[InMemorySpanExporter]:
    """Tracing on, without an app: every span ends up in the returned exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    yield exporter
    tracing.stop()


async def traced_app(
    start_app, make_settings, migrated_sqlite: Path, endpoint: str, **options: object
) -> tuple[ClipSyncApp, httpx.AsyncClient, InMemorySpanExporter]:
    """An app with `trace_otel` exporting to `endpoint`, and its spans kept in memory too."""
    settings = make_settings(plugins={"trace_otel": {"endpoint": endpoint, **options}})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    exporter = InMemorySpanExporter()
    provider = tracing.provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return app, client, exporter


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def test_a_request_is_a_span_with_its_request_id_route_user_and_queries_inside(
    start_app, make_settings, migrated_sqlite: Path, receiver: OtlpReceiver
) -> None:
    _, client, exporter = await traced_app(
        start_app, make_settings, migrated_sqlite, receiver.endpoint
    )
    account = await register(client, "ann@example.org")
    exporter.clear()
    answer = await client.get("/api/auth/me", headers=bearer(account["token"]))
    assert answer.status_code == 200

    spans = exporter.get_finished_spans()
    [request] = named(spans, "GET /api/auth/me")
    assert request.kind == SpanKind.SERVER and request.parent is None
    assert request.attributes["clipsync.request_id"] == answer.headers["X-Request-ID"]
    assert request.attributes["http.route"] == "/api/auth/me"
    assert request.attributes["http.request.method"] == "GET"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["user.id"] == account["user"]["id"]
    assert request.status.status_code == StatusCode.UNSET
    # Reading the signed-in user is a query inside the request, in its trace.
    queries = [s for s in children(spans, request) if s.attributes.get("db.system.name")]
    assert queries, [s.name for s in spans]
    select = next(s for s in queries if s.name == "SELECT")
    assert select.kind == SpanKind.CLIENT
    assert select.attributes["db.system.name"] == "sqlite"
    assert select.attributes["db.query.text"].lstrip().upper().startswith("SELECT")
    assert select.context.trace_id == request.context.trace_id

    # A query outside any request or job (housekeeping) makes no trace of its own.
    exporter.clear()
    await db.ping()
    assert exporter.get_finished_spans() == ()
    with tracing.span("some work"):
        await db.ping()
    [work, ping] = sorted(exporter.get_finished_spans(), key=lambda s: s.name != "some work")
    assert ping.name == "SELECT" and ping.parent.span_id == work.context.span_id


async def test_an_unknown_address_is_named_by_its_method_only(
    start_app, make_settings, migrated_sqlite: Path, receiver: OtlpReceiver
) -> None:
    # A raw path may hold a token: only route patterns name spans.
    _, client, exporter = await traced_app(
        start_app, make_settings, migrated_sqlite, receiver.endpoint
    )
    answer = await client.get("/api/no-such-thing/secret-token-123")
    assert answer.status_code == 404
    [request] = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert request.name == "GET"
    assert "http.route" not in request.attributes
    assert request.attributes["http.response.status_code"] == 404
    assert request.attributes["clipsync.request_id"] == answer.headers["X-Request-ID"]
    assert request.status.status_code == StatusCode.UNSET
    assert "secret-token-123" not in str(dict(request.attributes))


async def test_an_upload_traces_its_storage_calls_and_hands_its_trace_to_the_job(
    start_app, make_settings, migrated_sqlite: Path, receiver: OtlpReceiver
) -> None:
    app, client, exporter = await traced_app(
        start_app, make_settings, migrated_sqlite, receiver.endpoint
    )
    token = (await register(client, "ann@example.org"))["token"]
    registered = await upload_and_register(client, token, make_clip("landscape"))
    assert registered.status_code == 201, registered.text
    spans = exporter.get_finished_spans()

    [upload] = named(spans, "POST /api/videos/upload-local")
    [stored] = [s for s in children(spans, upload) if s.name == "storage.put_stream"]
    assert stored.attributes["clipsync.storage.backend"] == "local"
    assert stored.attributes["clipsync.storage.key"].endswith("/source.mp4")
    assert stored.attributes["clipsync.storage.bytes"] == make_clip("landscape").stat().st_size

    [register_span] = named(spans, "POST /api/videos/register")
    request_id = registered.headers["X-Request-ID"]
    [job] = [t for t in app.ctx.jobs.huey.pending() if t.name == "transcode_video"]
    assert job.kwargs["request_id"] == request_id
    # W3C traceparent: version-trace id-parent span id-flags (bit 0: sampled).
    version, trace_id, parent_id, flags = job.kwargs["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1
    assert int(trace_id, 16) == register_span.context.trace_id
    assert int(parent_id, 16) == register_span.context.span_id


@pytest.fixture
def probe_settings(make_settings, migrated_sqlite: Path, tmp_path: Path) -> Iterator[Settings]:
    """Settings that load the probe plugin from a folder: its provider, its failing page."""
    folder = tmp_path / "site-plugins"
    folder.mkdir()
    (folder / "probe.py").write_text(PROBE_PLUGIN)
    settings = make_settings(plugins={"dirs": [str(folder)]})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    yield settings
    sys.modules.pop(PROBE_MODULE, None)


async def test_object_storage_calls_are_traced_and_keep_their_optional_contracts(
    start_app, make_settings, migrated_sqlite: Path, receiver: OtlpReceiver, s3_server
) -> None:
    bucket = f"traced-{uuid.uuid4().hex[:12]}"
    s3_table = s3_server.plugin_table(bucket=bucket, prefix="media")
    settings = make_settings(
        storage={"backend": "s3"},
        plugins={"storage_s3": s3_table, "trace_otel": {"endpoint": receiver.endpoint}},
    )
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    exporter = InMemorySpanExporter()
    tracing.provider().add_span_processor(SimpleSpanProcessor(exporter))
    storage = app.ctx.backends.storage
    # Wrapped in place: still the S3 backend, with direct uploads and multipart parts.
    assert isinstance(storage, PresigningStorage) and isinstance(storage, MultipartStorage)
    assert storage.presigned_get("videos/x", 60).startswith(s3_server.url)

    token = (await register(client, "ann@example.org"))["token"]
    clip = make_clip("landscape")
    uploaded = await upload(client, token, clip)
    assert uploaded.status_code == 201, uploaded.text
    [stored] = named(exporter.get_finished_spans(), "storage.put_stream")
    assert stored.attributes["clipsync.storage.backend"] == "s3"
    key = stored.attributes["clipsync.storage.key"]

    exporter.clear()
    read = b"".join([chunk async for chunk in storage.read(key)])
    async with storage.open_local(key) as path:
        assert path.read_bytes() == read == clip.read_bytes()
    spans = exporter.get_finished_spans()
    [reading] = named(spans, "storage.read")
    assert reading.attributes["clipsync.storage.bytes"] == clip.stat().st_size
    [download] = named(spans, "storage.open_local")
    assert download.attributes["clipsync.storage.key"] == key
    assert download.end_time is not None


async def test_a_server_error_marks_the_request_span_failed_with_the_exception(
    start_app, probe_settings: Settings
) -> None:
    app, client = await start_app(probe_settings)
    app.ctx.set_up = True  # past the first-run page
    answer = await client.get("/-/probe/boom")
    assert answer.status_code == 500
    spans = sys.modules[PROBE_MODULE].EXPORTER.get_finished_spans()
    [request] = named(spans, "GET /-/probe/boom")
    assert request.status.status_code == StatusCode.ERROR
    assert request.attributes["http.response.status_code"] == 500
    [event] = request.events
    assert event.name == "exception"
    assert event.attributes["exception.type"].endswith("RuntimeError")
    assert event.attributes["exception.message"] == "the probe broke"


async def test_hook_tracer_provider_gets_every_span_and_is_shut_down_with_the_app(
    probe_settings: Settings,
) -> None:
    app = create_app(probe_settings, load_entry_points=False)
    probe = sys.modules[PROBE_MODULE]
    provider = tracing.provider()
    assert type(provider).__name__ == "Provider"
    async with Lifespan(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://clipsync.test") as c:
            answer = await c.get("/healthz/live")
        [request] = named(probe.EXPORTER.get_finished_spans(), "GET /healthz/live")
        assert request.attributes["clipsync.request_id"] == answer.headers["X-Request-ID"]
        assert request.instrumentation_scope.name == "clipsync"
        assert request.instrumentation_scope.version == __version__
        assert probe.SHUT_DOWN == []
    # The worker stopped: what the provider held is exported, and tracing ends.
    assert [provider] == probe.SHUT_DOWN
    assert tracing.provider() is None


def test_a_job_span_continues_the_trace_that_queued_it_with_its_request_id(
    memory: InMemorySpanExporter,
) -> None:
    """In the consumer's worker thread, as `clipsync.jobs.tasks` registers it."""
    huey = MemoryHuey(utc=True)
    carry_request_ids(huey)
    tracing.trace_jobs(huey)

    @huey.task(name="job")
    def job(n: int, request_id: str | None = None, traceparent: str | None = None) -> None:
        with tracing.span("inside the job"):
            if n == 2:
                raise RuntimeError("the job broke")

    with tracing.span("a request"), request_ids.bound("req-7"):
        job(1, **carried_request_id())
    job(2)  # queued by no request (the reaper, or an older version)

    def consume() -> None:  # what a consumer's worker thread does
        while (task := huey.dequeue()) is not None:
            huey.execute(task)

    worker = threading.Thread(target=consume)
    worker.start()
    worker.join(10)

    spans = memory.get_finished_spans()
    [request] = named(spans, "a request")
    first, second = named(spans, "job.job")
    assert first.kind == SpanKind.CONSUMER
    assert first.parent.span_id == request.context.span_id
    assert first.context.trace_id == request.context.trace_id
    assert first.attributes["clipsync.request_id"] == "req-7"
    assert first.attributes["clipsync.job.name"] == "job"
    assert first.status.status_code == StatusCode.UNSET
    inside = named(spans, "inside the job")
    assert {s.parent.span_id for s in inside} == {first.context.span_id, second.context.span_id}
    # Queued outside any request: a trace of its own, and the failure recorded.
    assert second.parent is None and second.context.trace_id != request.context.trace_id
    assert "clipsync.request_id" not in second.attributes
    assert second.status.status_code == StatusCode.ERROR
    assert [e.attributes["exception.message"] for e in second.events] == ["the job broke"]


async def test_an_ffmpeg_run_is_a_span_with_its_program_duration_and_exit_code(
    memory: InMemorySpanExporter,
) -> None:
    progress = ["-progress", "pipe:1", "-nostats", "-hide_banner", "-loglevel", "error"]
    good = ["ffmpeg", *progress, "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10"]
    await run_ffmpeg(
        [*good, "-t", "0.5", "-f", "null", "-"], duration=0.5, on_progress=None, stall_timeout=30
    )
    bad = ["ffmpeg", *progress, "-i", "/no/such/file.mp4", "-f", "null", "-"]
    with pytest.raises(TranscodeFailed):
        await run_ffmpeg(bad, duration=3.0, on_progress=None, stall_timeout=30)

    ran, failed = named(memory.get_finished_spans(), "ffmpeg.run")
    assert ran.attributes["process.executable.name"] == "ffmpeg"
    assert ran.attributes["clipsync.media.duration_seconds"] == 0.5
    assert ran.attributes["process.exit.code"] == 0
    assert ran.status.status_code == StatusCode.UNSET
    assert failed.attributes["process.exit.code"] != 0
    assert failed.status.status_code == StatusCode.ERROR
    [event] = failed.events
    assert event.attributes["exception.type"].endswith(".TranscodeFailed")


async def test_spans_reach_an_otlp_receiver_as_protobuf_with_the_configured_headers(
    start_app, make_settings, migrated_sqlite: Path, receiver: OtlpReceiver, monkeypatch
) -> None:
    monkeypatch.setenv("TRACE_TEST_HEADERS", "Authorization=Bearer%20s3cret,X-Scope-OrgID=site-a")
    _, client, _ = await traced_app(
        start_app,
        make_settings,
        migrated_sqlite,
        receiver.endpoint,
        service_name="clipsync-test",
        headers={"$env": "TRACE_TEST_HEADERS"},
    )
    provider = tracing.provider()
    assert isinstance(provider, TracerProvider)
    receiver.exports.clear()
    answer = await client.get("/healthz/live")
    assert provider.force_flush(10_000)

    export = receiver.exports[-1]
    assert export.path == "/v1/traces"
    assert export.headers["content-type"] == "application/x-protobuf"
    assert export.headers["authorization"] == "Bearer s3cret"
    assert export.headers["x-scope-orgid"] == "site-a"
    [request] = [s for s in receiver.spans() if s.name == "GET /healthz/live"]
    assert request.attributes["clipsync.request_id"] == answer.headers["X-Request-ID"]
    assert request.attributes["http.response.status_code"] == 200
    assert request.resource["service.name"] == "clipsync-test"
    assert request.resource["service.version"] == __version__
    assert all(decode(e.body) for e in receiver.exports)


async def test_with_a_sample_ratio_of_zero_no_span_is_kept_and_jobs_follow(
    start_app, make_settings, migrated_sqlite: Path, receiver: OtlpReceiver
) -> None:
    app, client, exporter = await traced_app(
        start_app, make_settings, migrated_sqlite, receiver.endpoint, sample_ratio=0.0
    )
    token = (await register(client, "ann@example.org"))["token"]
    registered = await upload_and_register(client, token, make_clip("landscape"))
    assert registered.status_code == 201
    assert exporter.get_finished_spans() == ()
    [job] = [t for t in app.ctx.jobs.huey.pending() if t.name == "transcode_video"]
    # Not sampled (flags bit 0 clear): the job is not either.
    assert not int(job.kwargs["traceparent"].rsplit("-", 1)[1], 16) & 1


async def test_without_a_tracing_plugin_no_provider_is_installed_and_nothing_is_wrapped(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    assert tracing.provider() is None and not tracing.enabled()
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    # The storage backend is left as its plugin made it.
    storage = app.ctx.backends.storage
    assert not set(vars(storage)) & {"put_file", "put_stream", "read", "open_local", "size"}
    with tracing.span("anything", {"a": 1}) as span:
        assert not span.is_recording()
    assert tracing.carried_trace() == {}
    token = (await register(client, "ann@example.org"))["token"]
    registered = await upload_and_register(client, token, make_clip("landscape"))
    assert registered.status_code == 201
    [job] = [t for t in app.ctx.jobs.huey.pending() if t.name == "transcode_video"]
    assert set(job.kwargs) == {"request_id"}


def test_the_plugin_checks_its_table_and_keeps_the_headers_secret() -> None:
    def host(**table: object):
        settings = parse_settings({"plugins": {"trace_otel": table}}, where="cfg")
        return create_plugin_host(settings, load_entry_points=False, environ={})

    assert host().plugin_config("trace_otel").enabled is False
    with pytest.raises(ConfigError, match=r"trace_otel.*endpoint"):
        host(endpoint="collector:4318")
    with pytest.raises(ConfigError, match=r"trace_otel.*sample_ratio"):
        host(endpoint="http://127.0.0.1:4318", sample_ratio=1.5)
    with pytest.raises(ConfigError, match=r"headers") as refused:
        host(endpoint="http://127.0.0.1:4318", headers="Authorization: Bearer hunter2")
    assert "hunter2" not in str(refused.value)
    config = host(endpoint="http://127.0.0.1:4318").plugin_config("trace_otel")
    assert config.traces_url == "http://127.0.0.1:4318/v1/traces"
    config = host(endpoint="https://otlp.example/otlp/v1/traces").plugin_config("trace_otel")
    assert config.traces_url == "https://otlp.example/otlp/v1/traces"


def test_an_endpoint_without_the_sdk_installed_stops_start_up_saying_what_to_install(
    monkeypatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    settings = parse_settings(
        {"plugins": {"trace_otel": {"endpoint": "http://127.0.0.1:4318"}}}, where="cfg"
    )
    plugins = create_plugin_host(settings, load_entry_points=False, environ={})
    with pytest.raises(ConfigError, match=r"clipsync\[tracing\]"):
        tracing.start(plugins)
    assert tracing.provider() is None
