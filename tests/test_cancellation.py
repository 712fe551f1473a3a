"""Work a cancelled job must wait for before it sweeps up (clipsync/cancellation.py).

The CI run that found this: a video deleted while it was transcoded. ffmpeg's progress
callback saw the row gone and stopped the run; while the run waited for the early
playback follower to finish the stores it had under way, the heartbeat cancelled the
job as well. That second cancellation ended the wait, the job swept the video's files,
and the follower's last stores (the master among them) landed after the sweep.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from clipsync.cancellation import outlast
from clipsync.media.pipeline import run_beside
from clipsync.services.transcoding import put_files


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_outlast_returns_what_the_work_returns() -> None:
    async def work() -> int:
        await asyncio.sleep(0.01)
        return 7

    assert await outlast(work()) == 7


async def test_outlast_raises_the_works_error() -> None:
    async def work() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await outlast(work())


async def test_a_task_cancelled_twice_waits_for_the_work_then_is_cancelled() -> None:
    release = asyncio.Event()
    ended: list[str] = []

    async def work() -> None:
        await release.wait()
        ended.append("work")

    task = asyncio.ensure_future(outlast(work()))
    await settle()
    task.cancel()
    await settle()
    task.cancel()
    await settle()
    assert not task.done(), "the cancellations ended the wait before the work ended"
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended == ["work"]


class Stopped(Exception):
    """ffmpeg stopped by its progress callback (the transcode's `VideoGone`)."""


async def test_run_beside_waits_for_the_follower_when_cancelled_during_that_wait() -> None:
    storing = asyncio.Event()
    stored = asyncio.Event()
    log: list[str] = []

    async def ffmpeg() -> None:
        await storing.wait()
        raise Stopped()

    async def follow(encoding: Any, done: asyncio.Event) -> frozenset[str]:
        storing.set()  # a store is under way when ffmpeg stops
        await stored.wait()
        log.append("follower stored its last file")
        return frozenset()

    async def job() -> None:
        try:
            await run_beside(ffmpeg(), encoding=None, follow=follow)  # type: ignore[arg-type]
        finally:
            log.append("job sweeps up")

    task = asyncio.ensure_future(job())
    await settle()
    task.cancel()  # the heartbeat stops the job while it waits for the follower
    await settle()
    assert log == [], "the job went on while the follower was still storing"
    stored.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["follower stored its last file", "job sweeps up"]


class SlowStorage:
    """put_file on a thread, as the S3 plugin's calls run: cancelling its awaiter does not
    stop it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []
        self.finished: list[str] = []

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        self.started.append(key)

        def upload() -> None:
            self.release.wait(10)
            self.finished.append(key)

        await asyncio.to_thread(upload)


async def test_put_files_cancelled_twice_waits_for_the_uploads_under_way(tmp_path: Path) -> None:
    storage = SlowStorage()
    files = [(f"k{i}", tmp_path / f"f{i}") for i in range(6)]
    task = asyncio.ensure_future(put_files(storage, files, concurrency=2))  # type: ignore[arg-type]
    await settle()
    assert len(storage.started) == 2
    task.cancel()
    await settle()
    task.cancel()
    await settle()
    assert not task.done(), "put_files returned with uploads still running on their threads"
    storage.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(storage.finished) == sorted(storage.started) == ["k0", "k1"]
