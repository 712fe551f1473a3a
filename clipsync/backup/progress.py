"""Progress bars for `clipsync backup` and `restore`, drawn by rich.

rich is used (not tqdm) because it draws several labelled bars at once with bytes,
speed and time left, writes to stderr so stdout stays a clean summary, and knows
when it is not on a terminal. Off a terminal (a pipe, cron, the job consumer)
nothing is drawn at all: the summary lines say what happened.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

Advance = Callable[[int], None]


class Progress(Protocol):
    def task(self, label: str, total: int) -> AbstractContextManager[Advance]:
        """A step of `total` bytes; the context gives the function that advances it."""

    def close(self) -> None: ...


class Quiet:
    """No bars: scheduled backups and tests."""

    @contextmanager
    def task(self, label: str, total: int) -> Iterator[Advance]:
        yield lambda done: None

    def close(self) -> None:
        pass


class Bars:
    """One rich bar per step, on stderr, only when stderr is a terminal."""

    def __init__(self, force: bool | None = None, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = console or Console(stderr=True)
        shown = sys.stderr.isatty() if force is None else force
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not shown,
            transient=False,
        )
        self._progress.start()

    @contextmanager
    def task(self, label: str, total: int) -> Iterator[Advance]:
        task = self._progress.add_task(label, total=max(total, 1))
        try:
            yield lambda done: self._progress.advance(task, done)
        finally:
            self._progress.update(task, completed=max(total, 1))

    def close(self) -> None:
        self._progress.stop()
