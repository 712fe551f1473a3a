"""Work that must have ended before a cancelled task goes on: `outlast()`.

A task that is cancelled stops where it awaits, but what it awaited may run on: a
store's call on a thread, a child process, a task of its own. When the cancelled
task then sweeps up after that work (a deleted video's files, a scratch folder), it
must first wait for the work to end, and `asyncio.shield` alone does not do that: a
second cancellation (a job stopped by its heartbeat while it was already stopping
for another reason) ends the wait, and the work lands after the sweep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def outlast(work: Awaitable[T]) -> T:
    """Wait for `work` to end and return its result (or raise its error), however
    often the calling task is cancelled meanwhile; the cancellation is raised once
    the work has ended. `work` itself is never cancelled."""
    future = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        if not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller hears of
        raise cancelled
    return future.result()
