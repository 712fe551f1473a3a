"""Running ffmpeg: progress, stalls, failures and cancellation, with real processes."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from clips import FFMPEG

from clipsync.media.errors import TranscodeFailed, TranscodeStalled
from clipsync.media.runner import failure_reason, parse_progress, run_ffmpeg

# One block of ffmpeg 5.1's `-progress pipe:1`, as captured.
BLOCK = """frame=45
fps=0.00
stream_0_0_q=-1.0
bitrate=N/A
total_size=N/A
out_time_us=1500000
out_time_ms=1500000
out_time=00:00:01.500000
dup_frames=0
drop_frames=0
speed=3.42x
progress=continue"""


def test_parse_progress_blocks() -> None:
    lines = [*BLOCK.splitlines(), *BLOCK.replace("1500000", "2999000").splitlines()]
    lines += ["out_time_us=3000000", "progress=end"]
    assert parse_progress(lines, 3.0) == [50, 99, 100]


def test_parse_progress_falls_back_to_out_time_and_ignores_na() -> None:
    lines = ["out_time_us=N/A", "out_time_ms=N/A", "out_time=00:01:15.000000", "progress=continue"]
    lines += ["out_time_us=N/A", "out_time=N/A", "progress=continue"]
    lines += ["out_time_us=-23000", "progress=continue"]
    assert parse_progress(lines, 150.0) == [50, 0, 0]


def test_parse_progress_ignores_partial_blocks_and_noise() -> None:
    assert parse_progress(["garbage", "out_time_us=1000000"], 2.0) == []


def test_failure_reason_is_short_and_human() -> None:
    tail = [
        "[libx264 @ 0x55d0c1a2b3c0] Error while opening encoder for output stream #0:0",
        "Conversion failed!",
    ]
    assert failure_reason(tail, 1) == (
        "ffmpeg reported: Error while opening encoder for output stream #0:0"
    )
    assert failure_reason(["av_interleaved_write_frame(): No space left on device"], 1) == (
        "the disk is full"
    )
    assert failure_reason([], -9) == "the converter was stopped by signal 9"


def lavfi_encode(seconds: float, out: Path) -> list[str]:
    return [
        FFMPEG, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
        "-progress", "pipe:1", "-stats_period", "0.1",
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=30:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-threads", "1", str(out),
    ]  # fmt: skip


async def test_progress_is_reported_increasing_up_to_100(tmp_path: Path) -> None:
    seen: list[int] = []

    async def record(percent: int) -> None:
        seen.append(percent)

    await run_ffmpeg(
        lavfi_encode(6, tmp_path / "out.mp4"), duration=6, on_progress=record, stall_timeout=30
    )
    assert seen[-1] == 100
    assert seen == sorted(set(seen)), "only increases are reported"
    assert len(seen) >= 2
    assert (tmp_path / "out.mp4").stat().st_size > 0


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def wait_for_file(path: Path) -> str:
    for _ in range(100):
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


async def test_a_silent_process_is_killed_after_the_stall_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    command = ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"]
    started = time.monotonic()
    with pytest.raises(TranscodeStalled) as caught:
        await run_ffmpeg(command, duration=10, on_progress=None, stall_timeout=1)
    assert time.monotonic() - started < 5
    assert "no progress for 1 seconds" in caught.value.message
    assert gone(int(pid_file.read_text()))


async def test_ffmpeg_stuck_on_an_input_that_never_comes_is_killed(tmp_path: Path) -> None:
    fifo = tmp_path / "never"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: none will
    command = [
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-progress", "pipe:1",
        "-f", "rawvideo", "-pix_fmt", "gray", "-s", "16x16", "-i", str(fifo), "-f", "null", "-",
    ]  # fmt: skip
    with pytest.raises(TranscodeStalled):
        await run_ffmpeg(command, duration=10, on_progress=None, stall_timeout=1)


async def test_a_failing_command_raises_with_a_reason_and_keeps_stderr(tmp_path: Path) -> None:
    command = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-progress", "pipe:1"]
    command += ["-i", str(tmp_path / "missing.mp4"), "-f", "null", "-"]
    with pytest.raises(TranscodeFailed) as caught:
        await run_ffmpeg(command, duration=1, on_progress=None, stall_timeout=10)
    assert caught.value.message.startswith("The video could not be converted: ")
    assert "No such file or directory" in caught.value.message
    assert "missing.mp4" in caught.value.detail


async def test_a_missing_program_is_a_failure_not_a_crash() -> None:
    with pytest.raises(TranscodeFailed, match="could not be started"):
        await run_ffmpeg(["/nonexistent/ffmpeg"], duration=1, on_progress=None, stall_timeout=1)


async def test_cancelling_the_job_kills_ffmpeg(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    command = ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"]
    task = asyncio.create_task(run_ffmpeg(command, duration=10, on_progress=None, stall_timeout=60))
    pid = int(await wait_for_file(pid_file))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gone(pid)


async def test_ffmpeg_runs_at_lower_priority(tmp_path: Path) -> None:
    out = tmp_path / "niceness"
    await run_ffmpeg(
        ["sh", "-c", f"nice > {out}"], duration=1, on_progress=None, stall_timeout=10, nice=7
    )
    assert int(out.read_text()) == os.nice(0) + 7
