"""`[plugins.trace_otel]`: where the spans go, under which name, and how many.

With no `endpoint` the plugin does nothing: no tracer provider, no spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from clipsync.errors import ConfigError
from clipsync.settings import Secret, check

SECTION = "[plugins.trace_otel]"
# Where an OTLP/HTTP receiver takes traces, under the collector's address.
TRACES_PATH = "/v1/traces"
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def _endpoint(value: str) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return 'must be an http:// or https:// URL, e.g. "http://127.0.0.1:4318"'
    return None


def _ratio(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be between 0.0 and 1.0"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _service_name(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def parse_headers(text: str) -> dict[str, str]:
    """`name=value,name2=value2` (OTEL_EXPORTER_OTLP_HEADERS' format, values URL-encoded)."""
    headers: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not HEADER_NAME.fullmatch(name):
            # Never the value: it is a secret.
            raise ConfigError(
                f"{SECTION} headers: each entry must be name=value, separated by commas"
            )
        headers[name] = unquote(value.strip())
    return headers


@dataclass(frozen=True)
class TraceOtelSettings:
    # The OTLP/HTTP receiver (an OpenTelemetry Collector, Jaeger, Grafana Tempo...),
    # e.g. "http://127.0.0.1:4318"; spans go to its /v1/traces unless the URL has a
    # path of its own. Empty: no tracing.
    endpoint: str = check(_endpoint, "")
    # The service.name of every span.
    service_name: str = check(_service_name, "clipsync")
    # Headers sent with every export, "name=value,name2=value2" (an API key of a
    # hosted backend): may be { "$env" = "NAME" } or { "$file" = "PATH" }.
    headers: Secret = field(default_factory=Secret)
    # The share of traces kept, from 0.0 to 1.0; a job is kept with the request that queued it.
    sample_ratio: float = check(_ratio, 1.0)
    # The longest one export may take.
    timeout_seconds: float = check(_positive, 10.0)

    def __post_init__(self) -> None:
        parse_headers(self.headers.reveal())

    @property
    def enabled(self) -> bool:
        return bool(self.endpoint)

    @property
    def traces_url(self) -> str:
        """The endpoint, with `/v1/traces` added when it names no path."""
        if urlsplit(self.endpoint).path.strip("/"):
            return self.endpoint
        return self.endpoint.rstrip("/") + TRACES_PATH
