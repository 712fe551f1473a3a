"""Tracing over OTLP: ClipSync's spans go to an OpenTelemetry collector.

ClipSync makes its spans with the OpenTelemetry API (`clipsync.tracing`): requests,
database queries, storage calls, jobs and ffmpeg runs. This plugin gives each
process that serves or runs jobs an SDK `TracerProvider` (the `tracer_provider`
hook) that samples `sample_ratio` of the traces (a job follows the request that
queued it), batches the spans, and sends them over OTLP/HTTP (protobuf) to
`endpoint`, with `headers`. The resource is `service.name` = `service_name` and
`service.version` = ClipSync's version (`OTEL_RESOURCE_ATTRIBUTES` adds more).

Nothing happens until `[plugins.trace_otel] endpoint` is set. The SDK and the
exporter are the `tracing` extra (`pip install 'clipsync[tracing]'`); with an
endpoint and without them, start-up stops and says so.
"""

from __future__ import annotations

from typing import Any

from clipsync import __version__, hookimpl
from clipsync.errors import ConfigError

from .settings import SECTION, TraceOtelSettings, parse_headers

PLUGIN = "trace_otel"


@hookimpl
def settings_schema() -> type:
    return TraceOtelSettings


@hookimpl
def tracer_provider(plugins: Any) -> Any | None:
    config: TraceOtelSettings | None = plugins.plugin_config(PLUGIN)
    if config is None or not config.enabled:
        return None
    return build_provider(config)


def build_provider(config: TraceOtelSettings) -> Any:
    """An SDK provider: ratio sampling, a batch processor, the OTLP/HTTP exporter."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as exc:
        raise ConfigError(
            f"{SECTION} endpoint is set, but the OpenTelemetry SDK or its OTLP exporter is "
            f"not installed ({exc.name}): pip install 'clipsync[tracing]'"
        ) from None
    resource = Resource.create(
        {"service.name": config.service_name, "service.version": __version__}
    )
    provider = TracerProvider(
        resource=resource,
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
        # ClipSync shuts it down itself when the process stops (`tracing.stop`):
        # server workers and the job consumer end without running atexit handlers.
        shutdown_on_exit=False,
    )
    exporter = OTLPSpanExporter(
        endpoint=config.traces_url,
        headers=parse_headers(config.headers.reveal()) or None,
        timeout=config.timeout_seconds,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
