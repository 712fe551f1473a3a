"""SQLite files several processes open at once: `enable_wal()`.

The analytics database and the SQLite event log are opened by every process of an
install (Sanic's workers, `clipsync worker`s), and each switches the file to WAL on
connecting. Switching a new file's journal mode takes an exclusive lock, and SQLite
answers "database is locked" at once to a connection that asks while another holds
it, whatever its busy timeout: two workers started together, one refused to start
(bench/scale.py found it). So the switch is asked again until the timeout.
"""

from __future__ import annotations

import sqlite3
import time

RETRY_SECONDS = 0.02


def enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Put the database of `conn` in WAL mode, waiting up to `timeout` seconds for
    another connection doing the same; raise its OperationalError after that."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(RETRY_SECONDS)
