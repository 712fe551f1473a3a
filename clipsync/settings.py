"""Typed settings, read from `config.toml` and `CLIPSYNC_<SECTION>_<KEY>` variables.

Every setting is a field of a frozen dataclass with a default, so an install without
a configuration file works. Values are checked against the field's type as they are
read; anything unknown or malformed stops start-up with an error that names the key
and the file, because a typo that is silently ignored is worse than one that fails.

Plugin tables (`[plugins.<name>]`) are kept raw here and checked against each
plugin's own schema once the plugins are loaded (see `clipsync.plugins`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from clipsync import hosts, logs
from clipsync.delivery_settings import DeliverySettings
from clipsync.environment import ENV_PREFIX as ENV_PREFIX  # re-exported
from clipsync.environment import (
    OTHER_VARIABLES,
    PLUGIN_PREFIX,
    check_environment,
    env_references,
    variables_of,
)
from clipsync.errors import ConfigError
from clipsync.setting_values import Secret as Secret  # re-exported for plugins
from clipsync.setting_values import at_least, build, check, non_negative, positive
from clipsync.sharing_settings import SharingSettings as SharingSettings  # re-exported
from clipsync.text_rules import InvisibleCharacter, clean_text

# The longest a SigV4 presigned URL can be valid (S3, MinIO): 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


def _presign_seconds(value: int) -> str | None:
    if 1 <= value <= MAX_PRESIGN_SECONDS:
        return None
    return f"must be between 1 and {MAX_PRESIGN_SECONDS} (7 days)"


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = check(positive, 8000)
    workers: int = check(positive, 1)
    # Largest JSON or form body accepted, in bytes; uploads have their own limit.
    max_body_size: int = check(positive, 1024 * 1024)
    # Number of reverse proxies in front of ClipSync whose X-Forwarded-For is trusted.
    proxies_count: int = check(at_least(0), 0)
    # Mark cookies Secure: turn on when the site is served over HTTPS.
    secure_cookies: bool = False
    # The address people reach ClipSync at, e.g. "https://videos.example.org": every
    # absolute link (invites, emails) starts with it, never with a request's Host
    # header. Empty: http://<host>:<port> (127.0.0.1 when host is a wildcard).
    public_url: str = check(hosts.public_url_problem, "")
    # Host names (optionally name:port) requests may be addressed to; any other Host
    # header is refused with 400. Empty: the public URL's host plus 127.0.0.1,
    # localhost and [::1]; "*" allows any.
    allowed_hosts: list[str] = field(
        default_factory=list, metadata={"check": hosts.allowed_hosts_problem}
    )

    @property
    def base_url(self) -> str:
        """Where absolute links start: `public_url`, or derived from host and port."""
        return hosts.base_url(self.public_url, self.host, self.port)

    @property
    def host_names(self) -> tuple[str, ...]:
        """The Host header values (name, or name:port) this server answers to."""
        return hosts.host_names(self.allowed_hosts, self.base_url)


@dataclass(frozen=True)
class PathSettings:
    data_dir: str = "data"


@dataclass(frozen=True)
class DatabaseSettings:
    # Empty means SQLite in the data directory.
    url: Secret = field(default_factory=Secret)


@dataclass(frozen=True)
class QueueSettings:
    backend: Literal["sqlite", "redis"] = "sqlite"
    redis_url: Secret = field(default_factory=lambda: Secret("redis://127.0.0.1:6379/0"))
    # Run the job consumer inside `clipsync serve`; turn off when `clipsync worker` runs.
    run_in_server: bool = True
    workers: int = check(positive, 1)
    # A job consumer says it is alive this often, and renews the leases of its jobs.
    heartbeat_seconds: int = check(positive, 5)
    # A consumer or job not heard from for this long is gone: its videos are queued again.
    lease_expiry_seconds: int = check(positive, 30)
    # How often each consumer runs its housekeeping (the reaper), and once when it starts.
    reaper_interval_seconds: int = check(positive, 60)


@dataclass(frozen=True)
class EventsSettings:
    # How domain events cross processes (see clipsync/events): "auto" picks Redis
    # when [queue] backend = "redis", else PostgreSQL LISTEN/NOTIFY when the database
    # is PostgreSQL, else "sqlite" (a small log file in the data directory).
    transport: Literal["auto", "redis", "postgres", "sqlite"] = "auto"


@dataclass(frozen=True)
class CacheSettings:
    # Where answers read on every request are kept (see clipsync/cache): "memory" (in
    # each process, dropped by the event bus's news), "redis" (shared by every process
    # and host, at [queue] redis_url), or "off" (every request reads the database).
    backend: Literal["memory", "redis", "off"] = "memory"
    # The longest an entry is kept. Changes drop what they touch at once; this only
    # bounds what a lost invalidation (Redis down at that moment) could leave behind.
    ttl_seconds: int = check(positive, 60)
    # The most entries the memory cache of one process holds (least recently used go).
    memory_entries: int = check(positive, 50_000)


@dataclass(frozen=True)
class NotificationsSettings:
    # Read notifications older than this many days are deleted by the reaper.
    keep_read_days: int = check(positive, 30)
    # Moderators get at most one email per this many minutes about videos awaiting a
    # decision, listing them all (0: one email per video).
    digest_minutes: float = check(non_negative, 15.0)
    # An email or webhook that fails is tried again this many times in all, waiting
    # `retry_delay_seconds`, then twice as long each time; then it is recorded as failed.
    delivery_attempts: int = check(positive, 6)
    retry_delay_seconds: float = check(positive, 30.0)
    # Types whose email (or in-app item) is off until a person turns it on.
    email_off_by_default: list[str] = field(default_factory=lambda: ["video.published"])
    inapp_off_by_default: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModerationSettings:
    # Whether an APPROVED video whose title or description its uploader changes goes
    # back to moderation (READY, hidden from its category until approved again).
    reapprove_on_edit: bool = False


@dataclass(frozen=True)
class StorageSettings:
    backend: str = "local"
    # Files of a transcoded video's HLS tree that a job stores at once.
    upload_concurrency: int = check(positive, 8)
    # How players get the bytes of a backend that can presign (s3): "presigned"
    # (media playlists list presigned URLs, segments come straight from the store) or
    # "proxy" (every byte passes through ClipSync). Local storage always proxies.
    playback: Literal["presigned", "proxy"] = "presigned"
    # A presigned playback URL is valid for the video's duration plus this many seconds.
    playback_url_seconds: int = check(_presign_seconds, 300)
    # How long a direct-upload URL (POST /api/upload/presigned-url) is valid.
    upload_url_seconds: int = check(_presign_seconds, 3600)


@dataclass(frozen=True)
class LadderRung:
    # The shorter side of the picture, in pixels (720 for 1280x720 or 720x1280).
    height: int
    # Video bitrate in kbit/s.
    bitrate: int


DEFAULT_LADDER = (
    LadderRung(240, 400),
    LadderRung(360, 800),
    LadderRung(480, 1400),
    LadderRung(720, 2800),
    LadderRung(1080, 5000),
)


@dataclass(frozen=True)
class TranscoderSettings:
    backend: str = "auto"
    # A backend to use instead when the chosen one is unavailable; empty means none.
    fallback: str = ""
    # Transcoding jobs at once per consumer; 0: the transcoder's own default (1 per GPU,
    # half the cores for the CPU).
    max_concurrent: int = check(at_least(0), 0)
    ladder: list[LadderRung] = field(default_factory=lambda: list(DEFAULT_LADDER))
    segment_seconds: int = check(positive, 4)
    audio_bitrate: int = check(positive, 128)
    # Kill ffmpeg when it reports no progress for this long.
    stall_timeout_seconds: int = check(positive, 120)
    # Tries per video (per chunk if chunked), the first included, before it is marked FAILED.
    max_attempts: int = check(positive, 3)
    # Wait before the first retry; each later retry waits twice as long.
    retry_delay_seconds: int = check(at_least(0), 30)
    # Seconds of video per seek-preview thumbnail.
    sprite_interval_seconds: int = check(positive, 5)
    # Frames made by each transcode for the uploader to pick the thumbnail from; 0: none.
    thumbnail_candidates: int = check(at_least(0), 6)
    # A source longer than this (seconds) is cut into chunks of about this length, each
    # transcoded by its own job on whichever worker is free, then joined; 0: never.
    chunk_seconds: int = check(at_least(0), 120)


@dataclass(frozen=True)
class UploadSettings:
    # Largest upload accepted, in bytes (2 GiB).
    max_size: int = check(positive, 2 * 1024**3)
    # Longest video accepted, in seconds (2 hours).
    max_duration_seconds: int = check(positive, 7200)
    # Uploads never registered (no title given) are deleted after this many hours.
    abandoned_after_hours: int = check(positive, 24)
    # The ffprobe program used to check uploads.
    ffprobe: str = "ffprobe"
    # A resumable (tus) upload that receives no bytes for this many hours expires and
    # is deleted with everything it stored.
    resumable_expiry_hours: int = check(positive, 24)
    # Where resumable uploads stage their bytes; relative paths are inside the data
    # directory. Keep it on the same disk as local storage so a finished upload is
    # moved into place, not copied.
    resumable_dir: str = "uploads"


@dataclass(frozen=True)
class QuotaSettings:
    # Bytes one person may keep (their uploaded videos and captions); 0: no limit.
    # An administrator may set another for one person (see services/quotas.py).
    storage_bytes_per_user: int = check(at_least(0), 0)
    # Bytes one person may upload in any 24 hours; 0: no limit.
    daily_upload_bytes_per_user: int = check(at_least(0), 0)
    # Uploads one person may leave without a title (not registered) at once; 0: no limit.
    max_unregistered_uploads: int = check(at_least(0), 10)
    # Accounts that may be registered from one client address in an hour; 0: no limit.
    registrations_per_address_per_hour: int = check(at_least(0), 20)


@dataclass(frozen=True)
class DiskSettings:
    # MiB kept free on the disks ClipSync writes to (the data directory's, and local
    # storage's): an upload or transcode that would eat into it is refused with 507,
    # so the database, the queue and the analytics spool can always write.
    reserve_mb: int = check(at_least(0), 512)
    # Admins are told (at most once a day) when a disk has less than this share free,
    # or less than twice the reserve.
    alert_free_percent: float = check(non_negative, 10.0)


@dataclass(frozen=True)
class AnalyticsSettings:
    backend: str = "sqlite"
    # Most events the player may send in one request.
    max_batch: int = check(positive, 100)


@dataclass(frozen=True)
class AuthSettings:
    backend: str = "local"
    # An access token (the JWT naming its session) lives this long; a fraction is
    # allowed (0.05 is three seconds: the browser tests). Pages renew it silently.
    access_token_minutes: float = check(positive, 15.0)
    # A sign-in lasts this long after its last refresh (sliding), and never longer
    # than session_max_days after it started. (`token_lifetime_hours`, the one
    # long-lived token before sessions, is gone: remove it from older configs.)
    session_days: int = check(positive, 30)
    session_max_days: int = check(positive, 90)
    # Where sign-in sessions are kept: "database", or "redis" (on [queue] redis_url,
    # with TTLs; see services/session_store.py).
    session_store: Literal["database", "redis"] = "database"
    password_min_length: int = check(at_least(8), 8)
    registration: Literal["open", "invite", "closed"] = "open"
    # Failed sign-ins to one email from one client address before that address must
    # wait between tries: `login_delay_seconds`, doubled by each further failure, up
    # to `lockout_minutes`. Other addresses (the owner's) are not held up.
    max_failed_logins: int = check(positive, 5)
    login_delay_seconds: int = check(positive, 30)
    lockout_minutes: int = check(positive, 15)
    # Failures of an email and address are forgotten this long after the last one.
    forget_failed_logins_hours: int = check(positive, 24)
    max_failed_logins_per_address: int = check(positive, 20)
    address_window_minutes: int = check(positive, 15)
    # Sign-ins checked at once per email and per client address, in each worker.
    max_concurrent_logins: int = check(positive, 4)
    # How long a "forgot password" link works, in minutes.
    reset_token_minutes: int = check(positive, 60)
    # Roles that must use two-factor sign-in (TOTP): someone with one of them who has
    # not enrolled is asked to at their next sign-in. E.g. ["admin", "editor"].
    require_mfa_for: list[str] = field(default_factory=list)
    # The key that seals two-factor secrets. Empty: generated once into
    # <data_dir>/secrets/two_factor.key; hosts sharing a database must set the same.
    two_factor_secret: Secret = field(default_factory=Secret)

    def __post_init__(self) -> None:
        if self.session_max_days < self.session_days:
            raise ConfigError(
                f"[auth] session_max_days ({self.session_max_days}) must be at least "
                f"session_days ({self.session_days})"
            )
        unknown = sorted(set(self.require_mfa_for) - {"admin", "editor", "user"})
        if unknown:
            raise ConfigError(
                f"[auth] require_mfa_for: {', '.join(unknown)} is not a role "
                "(admin, editor or user)"
            )


@dataclass(frozen=True)
class WebSettings:
    site_name: str = "ClipSync"
    theme: str = "default"
    themes_dirs: list[str] = field(default_factory=list)


def search_language_problem(value: str) -> str | None:
    """A text search configuration's name: letters and underscores (PostgreSQL's own)."""
    if value and all(c.isascii() and (c.isalpha() or c in "_.") for c in value):
        return None
    return 'must name a text search configuration, e.g. "english", "french", "simple"'


@dataclass(frozen=True)
class SearchSettings:
    # The language of the search's stemming ("demos" finds "demo"), as PostgreSQL names
    # its text search configurations. SQLite always stems English (FTS5's porter).
    language: str = check(search_language_problem, "english")


@dataclass(frozen=True)
class RecommendationsSettings:
    # How often Up next is worked out again for every video (by one job consumer of
    # the whole install); a new video gets same-uploader and newest until then.
    refresh_minutes: int = check(positive, 30)
    # Watching from this many days back counts towards "people who watched this also
    # watched", and a person watched a video once a session of it played this long.
    co_watch_days: int = check(positive, 90)
    co_watch_min_seconds: float = check(non_negative, 10.0)
    # Videos in the Up next list and in each row of the home page.
    list_size: int = check(positive, 12)


@dataclass(frozen=True)
class LoggingSettings:
    # "text" for a terminal or journald, "json" for one object per line (a collector).
    format: Literal["text", "json"] = "text"
    # The level of every logger: DEBUG, INFO, WARNING, ERROR or CRITICAL.
    level: str = check(logs.level_problem, "INFO")
    # Levels of single loggers, "name=LEVEL", e.g. ["clipsync.jobs=DEBUG"].
    levels: list[str] = field(default_factory=list, metadata={"check": logs.levels_problem})
    # One line per request: method, route, status, duration and user id.
    access_log: bool = True


@dataclass(frozen=True)
class BackupSettings:
    # Hours between scheduled backups (`clipsync backup` run by the job consumer);
    # 0 turns the schedule off.
    schedule_hours: float = check(non_negative, 0.0)
    # Where scheduled backups go: a folder (relative: inside the data directory) or
    # "s3://bucket/prefix". Empty: the "backups" folder in the data directory.
    target: str = ""
    # How many scheduled backups are kept; older ones (and media only they use) are deleted.
    keep: int = check(positive, 7)
    # Whether scheduled backups copy the media too (incrementally), not only list it.
    media: bool = False
    # Whether scheduled backups keep the secrets of config.toml and the token key.
    include_secrets: bool = False
    # An S3 target's endpoint ("host:port") and keys; empty: those of
    # [plugins.storage_s3]. Also CLIPSYNC_BACKUP_S3_ENDPOINT and so on.
    s3_endpoint: str = ""
    s3_access_key: Secret = field(default_factory=Secret)
    s3_secret_key: Secret = field(default_factory=Secret)
    s3_region: str = ""
    s3_secure: bool = True


@dataclass(frozen=True)
class MetricsSettings:
    # Serve GET /metrics in the Prometheus text format (see clipsync.metrics).
    enabled: bool = False
    # A bearer token every scrape must send; empty: only loopback clients may scrape.
    token: Secret = field(default_factory=Secret)


@dataclass(frozen=True)
class PluginsSettings:
    dirs: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    # Whether people may choose this category themselves when they register.
    self_select: bool = False
    # The category of a registration that names none. Exactly one category has it.
    default: bool = False


DEFAULT_CATEGORIES = (Category(name="general", label="General", self_select=True, default=True),)

SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "paths": PathSettings,
    "database": DatabaseSettings,
    "queue": QueueSettings,
    "events": EventsSettings,
    "cache": CacheSettings,
    "notifications": NotificationsSettings,
    "moderation": ModerationSettings,
    "storage": StorageSettings,
    "delivery": DeliverySettings,
    "transcoder": TranscoderSettings,
    "uploads": UploadSettings,
    "quotas": QuotaSettings,
    "disk": DiskSettings,
    "analytics": AnalyticsSettings,
    "auth": AuthSettings,
    "web": WebSettings,
    "sharing": SharingSettings,
    "search": SearchSettings,
    "recommendations": RecommendationsSettings,
    "logging": LoggingSettings,
    "metrics": MetricsSettings,
    "backup": BackupSettings,
}


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    paths: PathSettings = field(default_factory=PathSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    events: EventsSettings = field(default_factory=EventsSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    notifications: NotificationsSettings = field(default_factory=NotificationsSettings)
    moderation: ModerationSettings = field(default_factory=ModerationSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    transcoder: TranscoderSettings = field(default_factory=TranscoderSettings)
    uploads: UploadSettings = field(default_factory=UploadSettings)
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    disk: DiskSettings = field(default_factory=DiskSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    web: WebSettings = field(default_factory=WebSettings)
    sharing: SharingSettings = field(default_factory=SharingSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    recommendations: RecommendationsSettings = field(default_factory=RecommendationsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    plugins: PluginsSettings = field(default_factory=PluginsSettings)
    categories: tuple[Category, ...] = DEFAULT_CATEGORIES
    # Raw `[plugins.<name>]` tables, checked by `clipsync.plugins` against each schema.
    plugin_tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The file these settings came from; relative paths are resolved against its folder.
    source: Path | None = None
    # Variables named by `{ "$env" = "NAME" }` secrets anywhere in the file.
    env_references: frozenset[str] = frozenset()

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def resolve_path(self, value: str | Path) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def data_dir(self) -> Path:
        return self.resolve_path(self.paths.data_dir)

    @property
    def database_url(self) -> str:
        return self.database.url.reveal() or f"sqlite://{self.data_dir / 'clipsync.sqlite3'}"

    @property
    def default_category(self) -> Category:
        return next(c for c in self.categories if c.default)

    def category(self, name: str) -> Category | None:
        return next((c for c in self.categories if c.name == name), None)

    def describe(self) -> str:
        return str(self.source) if self.source else "built-in defaults"


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read settings from `path` (or built-in defaults) plus environment overrides."""
    environ = os.environ if environ is None else environ
    source = Path(path).resolve() if path else None
    raw: dict[str, Any] = {}
    if source is not None:
        try:
            with source.open("rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{source}: configuration file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    where = str(source) if source else "built-in defaults"
    return parse_settings(raw, where=where, source=source, environ=environ)


def parse_settings(
    raw: Mapping[str, Any],
    *,
    where: str,
    source: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    environ = {} if environ is None else environ
    base = source.parent if source else None
    raw = dict(raw)
    references = frozenset(env_references(raw))
    values: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        table = _table(raw.pop(section, {}), where, f"[{section}]")
        values[section] = build(cls, table, where, section, environ, base)

    plugins_table = dict(_table(raw.pop("plugins", {}), where, "[plugins]"))
    plugin_tables = {
        name: _table(plugins_table.pop(name), where, f"[plugins.{name}]")
        for name in [k for k, v in plugins_table.items() if isinstance(v, dict)]
    }
    values["plugins"] = build(PluginsSettings, plugins_table, where, "plugins", environ, base)

    values["categories"] = _categories(raw.pop("category", None), where)
    if raw:
        unknown = ", ".join(sorted(raw))
        raise ConfigError(f"{where}: unknown setting {unknown}")
    # Plugin variables are checked once the plugins' schemas are known (clipsync.plugins).
    check_environment(environ, core_variables() | references, ignore=(PLUGIN_PREFIX,))
    return Settings(**values, plugin_tables=plugin_tables, source=source, env_references=references)


def core_variables() -> set[str]:
    """Every `CLIPSYNC_*` variable the core reads (plugins add their own)."""
    return variables_of({**SECTIONS, "plugins": PluginsSettings}) | set(OTHER_VARIABLES)


def _table(value: Any, where: str, label: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {label} must be a table")
    return value


def _categories(value: Any, where: str) -> tuple[Category, ...]:
    if value is None:
        return DEFAULT_CATEGORIES
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: [[category]] must list at least one category")
    categories = tuple(
        build(Category, _table(item, where, "[[category]]"), where, f"category {i + 1}")
        for i, item in enumerate(value)
    )
    categories = tuple(_clean_label(c, where) for c in categories)
    names = [c.name for c in categories]
    for name in names:
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(
                f"{where}: [[category]] name {name!r} must be letters, digits, - or _"
            )
        if names.count(name) > 1:
            raise ConfigError(f"{where}: [[category]] name {name!r} appears twice")
    defaults = [c.name for c in categories if c.default]
    if len(defaults) != 1:
        raise ConfigError(
            f"{where}: exactly one [[category]] must have default = true (found {len(defaults)})"
        )
    return categories


def _clean_label(category: Category, where: str) -> Category:
    """The category with its label NFKC-normalised; nothing invisible in it."""
    try:
        return dataclasses.replace(category, label=clean_text(category.label))
    except InvisibleCharacter as exc:
        raise ConfigError(
            f"{where}: [[category]] {category.name!r} label {exc}: remove it"
        ) from None
