"""Backend kinds, their contracts, and how one backend per kind is chosen.

Plugins register backend *classes* through the `register_*` hooks. Each class has a
`name` (what `config.toml` names), an optional `priority` (for `auto`), an optional
`probe(context)` that really tries the backend and says why it cannot work, and a
`create(context)` that builds the instance the core will use.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from clipsync import tracing
from clipsync.errors import ConfigError

if TYPE_CHECKING:
    from clipsync.plugins import PluginHost
    from clipsync.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Availability:
    """The answer of a backend's probe: can it work here, and if not, why.

    `unreachable` is a "no" for now only: the backend's own server does not answer,
    but the backend rides that out (analytics spool events until it answers), so a
    backend named in the configuration is used anyway and ClipSync starts.
    """

    ok: bool
    reason: str = ""
    unreachable: bool = False

    @classmethod
    def yes(cls, reason: str = "available") -> Availability:
        return cls(True, reason)

    @classmethod
    def no(cls, reason: str) -> Availability:
        return cls(False, reason)

    @classmethod
    def not_now(cls, reason: str) -> Availability:
        """Its server cannot be reached now; the backend copes until it can."""
        return cls(False, reason, unreachable=True)


@dataclass(frozen=True)
class BackendContext:
    """What a backend class is given to probe and build itself."""

    settings: Settings
    # The validated `[plugins.<name>]` table of the plugin that registered the class.
    config: Any

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir


@dataclass(frozen=True)
class TokenClaims:
    """What a session token says about its holder."""

    id: int
    email: str
    role: str
    category_role: str
    token_version: int
    # Unix seconds; set by the core when issuing.
    issued_at: int = 0
    expires_at: int = 0
    # A unique id per token, so one token can be revoked (sign-out) before it expires.
    token_id: str = ""
    # The sign-in session (`AuthSession.id`) the token was issued for: ending that
    # session ends the token at once. Empty for a token tied to no session (one
    # made by `AccountService.start_session` for tools and tests).
    session_id: str = ""


@runtime_checkable
class AuthBackend(Protocol):
    """Verifies credentials and issues and reads session tokens."""

    name: ClassVar[str]

    def hash_password(self, password: str) -> str: ...

    def check_password(self, password: str, password_hash: str) -> bool: ...

    def issue_token(self, claims: TokenClaims) -> str:
        """Sign `claims` into a token with a fresh unique `token_id`."""

    def read_token(self, token: str) -> TokenClaims:
        """Return the claims of a valid token; raise `Unauthorized` otherwise."""


@runtime_checkable
class StorageBackend(Protocol):
    """Keeps files under keys made by `clipsync.storage.keys`."""

    name: ClassVar[str]

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None: ...

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str | None = None
    ) -> int:
        """Store the chunks under `key` and return the number of bytes written."""

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield the bytes of `key` from `start` up to and including `end`."""

    async def size(self, key: str) -> int | None:
        """Return the size of `key` in bytes, or None when it does not exist."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix` and return how many were deleted."""

    async def list(self, prefix: str) -> list[str]: ...

    def open_local(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A local file holding `key` for as long as the context lasts.

        Programs such as ffprobe and ffmpeg need a file: local storage gives its
        own; object storage downloads to scratch space and removes it afterwards.
        """


@runtime_checkable
class PresigningStorage(Protocol):
    """A storage backend that can hand a client a URL to the bytes themselves.

    Optional: a backend that has both methods (the `s3` one does) gets direct
    uploads (`POST /api/upload/presigned-url`) and, with `[storage] playback =
    "presigned"`, playback straight from the store. Signing must be pure computation
    (no network I/O): a media playlist signs every one of its segments.
    """

    def presigned_get(self, key: str, expires: int | float) -> str:
        """A URL that lets whoever holds it GET `key` for `expires` seconds."""

    def presigned_put(self, key: str, expires: int | float, content_type: str | None = None) -> str:
        """A URL that lets whoever holds it PUT `key` for `expires` seconds.

        With `content_type`, the signature covers the Content-Type header, so the
        upload must send exactly that type.
        """


@runtime_checkable
class MultipartStorage(Protocol):
    """A storage backend that assembles one object from parts sent one at a time.

    Optional: resumable uploads (`/api/uploads/`) send a part to a backend that has
    these four methods (the `s3` one does) each time `part_size` bytes have arrived,
    so an upload's bytes wait on local disk only until their part is stored. Every
    part but the last must be at least `part_size` bytes (5 MiB or more on S3).
    """

    part_size: int

    async def create_multipart(self, key: str, content_type: str | None = None) -> str:
        """Start assembling `key`; return the id of the multipart upload."""

    async def upload_part(self, key: str, upload_id: str, number: int, path: Path) -> str:
        """Store the file `path` as part `number` (from 1); return its ETag.

        Sending the same number again replaces the part.
        """

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> None:
        """Join the parts `(number, etag)`, in order, into the object `key`."""

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the multipart upload and its parts; harmless when it is already gone."""


@runtime_checkable
class AdoptingStorage(Protocol):
    """A storage backend that can take over a finished local file as an object.

    Optional: a finished resumable upload is handed over with `adopt_file` (the
    `local` backend renames the file into place when it is on the same file system,
    instead of copying it); without it, the core calls `put_file` and deletes the
    staged file afterwards.
    """

    async def adopt_file(self, key: str, path: Path) -> None:
        """Make `path` the object `key`; `path` is gone afterwards."""


@runtime_checkable
class Transcoder(Protocol):
    """Turns a source video into an HLS rendition ladder with one ffmpeg process.

    The transcoder decides how ffmpeg encodes (`profile()`, an
    `clipsync.media.encoders.EncoderProfile`); the pipeline in `clipsync.media`
    builds the one command that makes every rendition. An optional class attribute
    `default_max_concurrent` says how many jobs may run at once when
    `[transcoder] max_concurrent = 0` (1 when it is missing).
    """

    name: ClassVar[str]
    priority: ClassVar[int]
    ffmpeg: str

    def profile(self) -> Any: ...


@runtime_checkable
class AnalyticsBackend(Protocol):
    """Records watch events in batches and computes the figures of `clipsync.analytics.figures`."""

    name: ClassVar[str]

    async def start(self) -> None:
        """Open connections, create or upgrade the schema, start the flusher, deliver the spool."""

    async def record(self, events: Sequence[Any]) -> None:
        """Buffer events; returns at once; never raises because the store is unreachable."""

    async def flush(self) -> None:
        """Write what is buffered now (and deliver the spool)."""

    async def overview(self, period: Any, scope: Any) -> Any: ...

    async def video_stats(self, video_id: str, period: Any) -> Any: ...

    async def category_stats(self, period: Any, scope: Any) -> list[Any]: ...

    async def close(self) -> None:
        """Flush (spooling what the store does not take) and stop."""


KINDS: dict[str, str] = {
    "storage": "register_storage_backends",
    "transcoder": "register_transcoders",
    "auth": "register_auth_backends",
    "analytics": "register_analytics_backends",
}


@dataclass(frozen=True)
class Registered:
    kind: str
    name: str
    plugin: str
    cls: type

    @property
    def priority(self) -> int:
        return int(getattr(self.cls, "priority", 0))

    def probe(self, context: BackendContext) -> Availability:
        probe = getattr(self.cls, "probe", None)
        if probe is None:
            return Availability.yes()
        try:
            result = probe(context)
        except Exception as exc:  # a probe that crashes says the backend cannot work
            log.exception("probe of %s backend %r failed", self.kind, self.name)
            return Availability.no(f"probe failed: {exc}")
        return result


@dataclass
class Selection:
    """The backend chosen for one kind, and why."""

    kind: str
    wanted: str
    chosen: Registered
    reason: str
    instance: Any
    probes: dict[str, Availability] = field(default_factory=dict)
    # Every backend of this kind and how to build one, for `alternative()`.
    registry: dict[str, Registered] = field(default_factory=dict, repr=False)
    context: Callable[[Registered], BackendContext] | None = field(default=None, repr=False)
    _alternatives: dict[str, Any] = field(default_factory=dict, repr=False)

    def alternative(self, name: str) -> Any | None:
        """Backend `name` of this kind, if it is not the chosen one and can work here.

        Built once; None when it is the chosen one, unknown, or its probe says no. The
        job uses it to retry a failed GPU encode on the CPU transcoder.
        """
        if name == self.chosen.name or name not in self.registry or self.context is None:
            return None
        if name not in self._alternatives:
            entry = self.registry[name]
            if name not in self.probes:
                self.probes[name] = entry.probe(self.context(entry))
            ok = self.probes[name].ok
            self._alternatives[name] = entry.cls.create(self.context(entry)) if ok else None
        return self._alternatives[name]


def gather(host: PluginHost) -> dict[str, dict[str, Registered]]:
    """Build one registry per kind from every plugin's `register_*` hook."""
    registries: dict[str, dict[str, Registered]] = {}
    for kind, hook in KINDS.items():
        registry: dict[str, Registered] = {}
        for plugin, classes in host.collect(hook):
            for cls in classes or ():
                name = getattr(cls, "name", None)
                if not isinstance(name, str) or not name:
                    raise ConfigError(f"plugin {plugin!r}: {hook} returned {cls!r} with no name")
                if name in registry:
                    raise ConfigError(
                        f"{kind} backend {name!r} is registered by both "
                        f"{registry[name].plugin!r} and {plugin!r}"
                    )
                registry[name] = Registered(kind, name, plugin, cls)
        registries[kind] = registry
    return registries


def choose(
    kind: str,
    registry: dict[str, Registered],
    host: PluginHost,
    settings: Settings,
    wanted: str,
    fallback: str = "",
) -> Selection:
    """Pick the backend of `kind` that the configuration asks for, or explain why not."""
    where = f"{settings.describe()}: [{kind}] backend = {wanted!r}"
    if not registry:
        raise ConfigError(f"{where}: no loaded plugin provides a {kind} backend")

    def context(entry: Registered) -> BackendContext:
        return BackendContext(settings=settings, config=host.plugin_config(entry.plugin))

    probes: dict[str, Availability] = {}

    def probe(entry: Registered) -> Availability:
        if entry.name not in probes:
            probes[entry.name] = entry.probe(context(entry))
        return probes[entry.name]

    chosen: Registered | None = None
    if wanted == "auto":
        ranked = sorted(registry.values(), key=lambda e: (-e.priority, e.name))
        for entry in ranked:
            if probe(entry).ok:
                chosen = entry
                break
        if chosen is None:
            reasons = "; ".join(f"{e.name}: {probe(e).reason}" for e in ranked)
            raise ConfigError(f"{where}: no {kind} backend can work here ({reasons})")
        skipped = [
            f"{e.name}: {probe(e).reason}"
            for e in ranked
            if e is not chosen and e.priority > chosen.priority
        ]
        reason = "auto: the available backend of highest priority"
        if skipped:
            reason += " (" + "; ".join(skipped) + ")"
    elif wanted not in registry:
        known = ", ".join(sorted(registry))
        raise ConfigError(f"{where}: no plugin provides it (available: {known})")
    else:
        entry = registry[wanted]
        availability = probe(entry)
        if availability.ok:
            chosen, reason = entry, "named in the configuration"
        elif fallback and fallback in registry and probe(registry[fallback]).ok:
            chosen = registry[fallback]
            reason = f"fallback: {wanted} is unavailable ({availability.reason})"
        elif availability.unreachable:
            # Starting is what lets it catch up: refusing would take the site down too.
            log.warning("%s: %s; starting anyway", where, availability.reason)
            chosen = entry
            reason = f"named in the configuration; unreachable at start ({availability.reason})"
        else:
            raise ConfigError(f"{where}: unavailable: {availability.reason}")

    instance = chosen.cls.create(context(chosen))
    if kind == "storage":
        instance = tracing.trace_storage(instance)
    return Selection(kind, wanted, chosen, reason, instance, probes, registry, context)


def select_all(host: PluginHost, settings: Settings) -> dict[str, Selection]:
    registries = gather(host)
    wanted = {
        "storage": (settings.storage.backend, ""),
        "transcoder": (settings.transcoder.backend, settings.transcoder.fallback),
        "auth": (settings.auth.backend, ""),
        "analytics": (settings.analytics.backend, ""),
    }
    return {kind: choose(kind, registries[kind], host, settings, *wanted[kind]) for kind in KINDS}


@dataclass
class Backends:
    """The active backend of every kind, as used by the services."""

    selections: dict[str, Selection]

    @property
    def storage(self) -> StorageBackend:
        return self.selections["storage"].instance

    @property
    def transcoder(self) -> Transcoder:
        return self.selections["transcoder"].instance

    @property
    def auth(self) -> AuthBackend:
        return self.selections["auth"].instance

    @property
    def analytics(self) -> AnalyticsBackend:
        return self.selections["analytics"].instance

    def describe(self) -> Sequence[dict[str, Any]]:
        return [
            {
                "kind": s.kind,
                "configured": s.wanted,
                "active": s.chosen.name,
                "plugin": s.chosen.plugin,
                "reason": s.reason,
                "probes": {name: {"ok": a.ok, "reason": a.reason} for name, a in s.probes.items()},
            }
            for s in self.selections.values()
        ]
