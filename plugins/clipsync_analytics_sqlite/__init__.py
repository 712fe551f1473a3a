"""Watch analytics in a SQLite database of their own: the default, nothing to set up.

Events go to `analytics.sqlite3` in the data directory (not the main database, so
heavy writes never slow down the site), through Python's `sqlite3` on a thread of
its own, in WAL mode. Each batch updates daily roll-ups in the same transaction (see
`store`), so an overview over a million events takes a fraction of a second.
For volumes beyond one machine's disk, use `analytics_clickhouse`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from clipsync import hookimpl
from clipsync.analytics.backend import BufferedBackend, spool_folder
from clipsync.analytics.events import WatchEvent
from clipsync.analytics.figures import FigureSource
from clipsync.backends import Availability, BackendContext
from clipsync.settings import check

from . import store


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


@dataclass(frozen=True)
class AnalyticsSqliteSettings:
    # The analytics database file; relative paths are inside the data directory.
    path: str = "analytics.sqlite3"
    # Seconds a session must really play to count as a view.
    min_view_seconds: float = check(_not_negative, 3.0)
    # Events written per insert; the buffer is written as soon as it holds this many.
    batch_size: int = check(_positive, 5000)
    # Seconds between writes of whatever is buffered.
    flush_interval: float = check(_positive, 1.0)


def _path(context: BackendContext) -> Path:
    config: AnalyticsSqliteSettings = context.config
    path = Path(config.path).expanduser()
    return path if path.is_absolute() else context.data_dir / path


class SqliteAnalytics(BufferedBackend):
    """The `sqlite` analytics backend."""

    name: ClassVar[str] = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
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
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def probe(cls, context: BackendContext) -> Availability:
        path = _path(context)
        try:
            conn = store.connect(path)
            try:
                found = conn.execute("PRAGMA user_version").fetchone()[0]
            finally:
                conn.close()
        except (OSError, sqlite3.Error) as exc:
            return Availability.no(f"cannot open {path}: {exc}")
        if found > store.SCHEMA_VERSION:
            return Availability.no(f"{path} was made by a newer ClipSync (schema {found})")
        return Availability.yes(f"SQLite {sqlite3.sqlite_version} database {path}")

    @classmethod
    def create(cls, context: BackendContext) -> SqliteAnalytics:
        config: AnalyticsSqliteSettings = context.config
        return cls(
            _path(context),
            spool_dir=spool_folder(context.data_dir, cls.name),
            min_view_seconds=config.min_view_seconds,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval,
        )

    def describe_store(self) -> str:
        return f"the analytics database {self.path}"

    def unreachable(self, exc: BaseException) -> bool:
        # A locked or full database, or a failing disk, may pass: keep the batch.
        return isinstance(exc, sqlite3.OperationalError | OSError)

    @property
    def schema_version(self) -> int:
        """The schema version the database is at (for `clipsync plugins` and tests)."""
        conn = sqlite3.connect(self.path)
        try:
            return conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()

    def open_store(self) -> None:
        if self._conn is None:
            self._conn = store.connect(self.path)
        store.upgrade(self._conn)

    def insert(self, events: list[WatchEvent], redelivery: bool) -> None:
        # Known event ids are always skipped: a redelivered batch needs nothing more.
        assert self._conn is not None
        store.write_batch(self._conn, events)

    def close_store(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def open_source(self) -> FigureSource:
        return store.SqliteFigures(store.connect(self.path), self.min_view_ms)

    def close_source(self, source: FigureSource) -> None:
        assert isinstance(source, store.SqliteFigures)
        source.conn.close()


@hookimpl
def settings_schema() -> type:
    return AnalyticsSqliteSettings


@hookimpl
def register_analytics_backends() -> list[type]:
    return [SqliteAnalytics]
