"""SQLite files every process of an install opens: started together, none is refused
(clipsync/sqlite_wal.py). bench/scale.py found it: of two `clipsync worker`s started
at once, one stopped with "[analytics] backend = 'sqlite': unavailable: cannot open
…analytics.sqlite3: database is locked"."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from clipsync_analytics_sqlite import store

from clipsync.events.sqlite_log import SqliteLogTransport

ROUNDS = 40
PROCESSES = 6


def _open(kind: str, path: str, barrier, errors) -> None:
    barrier.wait()
    try:
        if kind == "analytics":
            store.connect(Path(path)).close()
        else:
            SqliteLogTransport(Path(path))._newest()
    except Exception as exc:
        errors.put(repr(exc))


def open_at_once(kind: str, folder: Path) -> list[str]:
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    for round_ in range(ROUNDS):
        path = folder / f"{kind}-{round_}.sqlite3"
        barrier = context.Barrier(PROCESSES)
        processes = [
            context.Process(target=_open, args=(kind, str(path), barrier, errors))
            for _ in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    found = []
    while not errors.empty():
        found.append(errors.get())
    return found


def test_processes_opening_a_new_analytics_database_at_once_all_open_it(tmp_path: Path) -> None:
    assert open_at_once("analytics", tmp_path) == []


def test_processes_opening_a_new_event_log_at_once_all_open_it(tmp_path: Path) -> None:
    assert open_at_once("events", tmp_path) == []
