"""Watch analytics in ClickHouse: for large volumes, on a server of its own.

Events are inserted in batches into `events_raw`; materialized views keep daily and
per-session aggregates (see `schema`), so figures read a few thousand rows however
many events there are. The plugin creates the database and tables and upgrades them
(`schema_version`). clickhouse-driver is synchronous: it runs on the backend's
threads, one connection for writes and one for reads.

When ClickHouse cannot be reached, batches are spooled on local disk and delivered
once it answers again; a redelivered batch skips the events ClickHouse already has,
so each event is counted once. That holds from start-up on: ClipSync starts and
serves while ClickHouse is down (its probe says "not now", not "no"), and the
dashboards answer 503 until it is back. Works with ClickHouse 18.16 (Debian's) and
later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from clickhouse_driver import Client, errors

from clipsync import hookimpl
from clipsync.analytics.backend import BufferedBackend, spool_folder
from clipsync.analytics.events import WatchEvent, millis
from clipsync.analytics.figures import FigureSource
from clipsync.backends import Availability, BackendContext
from clipsync.settings import Secret, check

from . import schema
from .queries import ClickHouseFigures

CONNECT_TIMEOUT = 3.0
SEND_RECEIVE_TIMEOUT = 60.0
# Server errors that say "not now" rather than "never": authentication (192, 193,
# 516), too many parts (252), memory (241), timeouts (159, 209), network (210), and a
# database or table dropped under us (81, 60; the schema is created again).
AUTH_CODES = frozenset({192, 193, 516})
RETRYABLE_CODES = AUTH_CODES | {60, 81, 159, 209, 210, 241, 252}
SCHEMA_GONE_CODES = frozenset({60, 81})
# Event ids looked up per query when a spooled batch is delivered again.
LOOKUP_CHUNK = 2000

COLUMNS = (
    "event_id",
    "ts",
    "day",
    "type",
    "video_id",
    "user_id",
    "category",
    "session_id",
    "position_ms",
    "duration_ms",
    "played_ms",
    "stalled_ms",
    "rendition",
    "seek_from_ms",
    "seek_to_ms",
    "detail",
)


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _identifier(value: str) -> str | None:
    return None if schema.IDENTIFIER.match(value) else "must be letters, digits and _"


@dataclass(frozen=True)
class AnalyticsClickHouseSettings:
    host: str = "127.0.0.1"
    # The native protocol port (9440 is usual with secure = true), not the HTTP one.
    port: int = check(_positive, 9000)
    # Created when missing, with every table in it.
    database: str = check(_identifier, "clipsync")
    user: str = "default"
    password: Secret = field(default_factory=Secret)
    # TLS to ClickHouse.
    secure: bool = False
    # Seconds a session must really play to count as a view.
    min_view_seconds: float = check(_not_negative, 3.0)
    # Events written per insert; the buffer is written as soon as it holds this many.
    batch_size: int = check(_positive, 5000)
    # Seconds between writes of whatever is buffered.
    flush_interval: float = check(_positive, 1.0)


def make_client(
    host: str, port: int, database: str, user: str, password: Secret, secure: bool
) -> Client:
    """A client; it connects on first use, and again on the first use after a failure."""
    return Client(
        host,
        port=port,
        database=database,
        user=user,
        password=password.reveal(),
        secure=secure,
        connect_timeout=CONNECT_TIMEOUT,
        send_receive_timeout=SEND_RECEIVE_TIMEOUT,
        client_name="clipsync-analytics",
    )


def server_message(exc: BaseException) -> str:
    """ClickHouse's own words for an error, without its stack trace."""
    text = getattr(exc, "message", None) or str(exc)
    text = text.split("Stack trace:")[0].strip()
    text = text.removeprefix("DB::Exception: ").strip()
    return text.splitlines()[-1].strip() if text else type(exc).__name__


def is_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, errors.NetworkError | errors.SocketTimeoutError | OSError | EOFError):
        return True
    return isinstance(exc, errors.Error) and getattr(exc, "code", None) in RETRYABLE_CODES


class ClickHouseAnalytics(BufferedBackend):
    """The `clickhouse` analytics backend."""

    name: ClassVar[str] = "clickhouse"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 9000,
        database: str = "clipsync",
        user: str = "default",
        password: Secret | None = None,
        secure: bool = False,
        spool_dir: Path,
        min_view_seconds: float = 3.0,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
    ) -> None:
        super().__init__(
            spool_dir=spool_dir,
            min_view_seconds=min_view_seconds,
            batch_size=batch_size,
            flush_interval=flush_interval,
        )
        if not schema.IDENTIFIER.match(database):
            raise ValueError(f"database name {database!r} must be letters, digits and _")
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self._password = password or Secret()
        self.secure = secure
        self._client: Client | None = None

    @classmethod
    def from_settings(
        cls, config: AnalyticsClickHouseSettings, data_dir: Path
    ) -> ClickHouseAnalytics:
        return cls(
            host=config.host,
            port=config.port,
            database=config.database,
            user=config.user,
            password=config.password,
            secure=config.secure,
            spool_dir=spool_folder(data_dir, cls.name),
            min_view_seconds=config.min_view_seconds,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval,
        )

    @classmethod
    def probe(cls, context: BackendContext) -> Availability:
        """Really connect and ask the server's version; say why not when it fails."""
        config: AnalyticsClickHouseSettings = context.config
        where = f"{config.host}:{config.port}"
        client = make_client(
            config.host, config.port, "default", config.user, config.password, config.secure
        )
        try:
            (version,) = client.execute("SELECT version()")[0]
        except errors.ServerException as exc:
            if exc.code in AUTH_CODES:
                return Availability.no(
                    f"ClickHouse at {where} refused user {config.user!r}: {server_message(exc)}"
                )
            return Availability.no(f"ClickHouse at {where}: {server_message(exc)}")
        except Exception as exc:
            message = f"cannot reach ClickHouse at {where}: {server_message(exc)}"
            if is_unreachable(exc):
                # Events are spooled until it answers: ClipSync may start without it.
                return Availability.not_now(message)
            return Availability.no(message)
        finally:
            client.disconnect()
        return Availability.yes(f"ClickHouse {version} at {where}, database {config.database}")

    @classmethod
    def create(cls, context: BackendContext) -> ClickHouseAnalytics:
        return cls.from_settings(context.config, context.data_dir)

    def connect(self, database: str | None = None) -> Client:
        """A client of this backend's server (in `database`, by default its own)."""
        return make_client(
            self.host,
            self.port,
            database or self.database,
            self.user,
            self._password,
            self.secure,
        )

    def describe_store(self) -> str:
        return f"ClickHouse at {self.host}:{self.port}"

    def unreachable(self, exc: BaseException) -> bool:
        return is_unreachable(exc)

    # --- write thread -------------------------------------------------------------------

    def open_store(self) -> None:
        # The database may not exist yet, so the schema is made from `default`.
        client = self.connect(database="default")
        try:
            schema.upgrade(client.execute, self.database)
        finally:
            client.disconnect()
        if self._client is None:
            self._client = self.connect()

    @property
    def schema_version(self) -> int:
        """The schema version recorded in ClickHouse (for `clipsync plugins` and tests)."""
        client = self.connect()
        try:
            return schema.version(client.execute, self.database)
        finally:
            client.disconnect()

    def insert(self, events: list[WatchEvent], redelivery: bool) -> None:
        assert self._client is not None
        if redelivery:
            events = self._not_stored(events)
            if not events:
                return
        try:
            self._client.execute(
                f"INSERT INTO {self.database}.events_raw ({', '.join(COLUMNS)}) VALUES",
                _columns(events),
                columnar=True,
            )
        except errors.Error as exc:
            if getattr(exc, "code", None) in SCHEMA_GONE_CODES:
                self.reopen()  # create the schema again before the next try
            raise

    def _not_stored(self, events: list[WatchEvent]) -> list[WatchEvent]:
        """The events of a batch that events_raw does not hold yet."""
        assert self._client is not None
        first = int(min(e.ts for e in events).timestamp())
        last = int(max(e.ts for e in events).timestamp()) + 1
        ids = sorted({e.event_id for e in events})
        stored: set[str] = set()
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            rows = self._client.execute(
                f"SELECT event_id FROM {self.database}.events_raw "
                "WHERE ts BETWEEN toDateTime(%(first)s) AND toDateTime(%(last)s) "
                "AND event_id IN batch_ids",
                {"first": first, "last": last},
                external_tables=[
                    {
                        "name": "batch_ids",
                        "structure": [("event_id", "String")],
                        "data": [{"event_id": i} for i in chunk],
                    }
                ],
            )
            stored.update(row[0] for row in rows)
        seen: set[str] = set()
        fresh = []
        for event in events:
            if event.event_id not in stored and event.event_id not in seen:
                seen.add(event.event_id)
                fresh.append(event)
        return fresh

    def close_store(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client = None

    # --- read thread ---------------------------------------------------------------------

    def open_source(self) -> FigureSource:
        return ClickHouseFigures(self.connect(), self.database, self.min_view_ms)

    def close_source(self, source: FigureSource) -> None:
        assert isinstance(source, ClickHouseFigures)
        source.client.disconnect()


def _columns(events: list[WatchEvent]) -> list[list[Any]]:
    """The batch as one list per column, as a columnar insert takes it."""
    return [
        [e.event_id for e in events],
        [e.ts for e in events],
        [e.day for e in events],
        [e.type for e in events],
        [e.video_id for e in events],
        [e.user_id for e in events],
        [e.category for e in events],
        [e.session_id for e in events],
        [millis(e.position) for e in events],
        [millis(e.duration) for e in events],
        [millis(e.played) for e in events],
        [millis(e.stalled) for e in events],
        [e.rendition for e in events],
        [None if e.seek_from is None else millis(e.seek_from) for e in events],
        [None if e.seek_to is None else millis(e.seek_to) for e in events],
        [e.detail for e in events],
    ]


@hookimpl
def settings_schema() -> type:
    return AnalyticsClickHouseSettings


@hookimpl
def register_analytics_backends() -> list[type]:
    return [ClickHouseAnalytics]
