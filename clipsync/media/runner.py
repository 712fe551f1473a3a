"""Run ffmpeg: follow its `-progress` output, kill it when it stalls or is cancelled.

Commands come from `clipsync.media.commands` and carry `-progress pipe:1`, so ffmpeg
writes `key=value` blocks on stdout about twice a second, each ending in
`progress=continue` (or `progress=end`). A block that does not come for
`stall_timeout` seconds means ffmpeg is stuck: the whole process group is killed.

ffmpeg never outlives the process that started it: on Linux it is started with a
parent-death signal (`PR_SET_PDEATHSIG`, SIGKILL), so a job consumer that is killed,
even with SIGKILL, takes its ffmpeg with it instead of leaving an orphan encoding
to the end for nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from clipsync import tracing
from clipsync.cancellation import outlast
from clipsync.media.errors import TranscodeFailed, TranscodeStalled

ProgressCallback = Callable[[int], Awaitable[None]]

STDERR_TAIL_LINES = 40


def _out_time(values: dict[str, str]) -> float | None:
    """Seconds of output written, from whichever of ffmpeg's time keys is usable."""
    # ffmpeg 5.1 writes microseconds under both out_time_us and (by mistake) out_time_ms.
    for key in ("out_time_us", "out_time_ms"):
        try:
            return int(values[key]) / 1_000_000
        except (KeyError, ValueError):
            continue
    text = values.get("out_time", "")
    match = re.fullmatch(r"(-?)(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if match:
        sign, hours, minutes, seconds = match.groups()
        total = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        return -total if sign else total
    return None


@dataclass
class ProgressReader:
    """Turns `-progress` lines into whole percentages of `duration`.

    `start`: where the output's time starts (a chunk of a longer video, its timestamps
    kept: `media/chunk_commands.py`); percentages are of the time since.
    """

    duration: float
    values: dict[str, str] = field(default_factory=dict)
    start: float = 0.0

    def feed(self, line: str) -> int | None:
        """Take one line; at the end of a block, return the percentage done."""
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        self.values[key] = value
        if key != "progress":
            return None
        values, self.values = self.values, {}
        if value == "end":
            return 100
        seconds = _out_time(values)
        if seconds is None or self.duration <= 0:
            return 0
        return max(0, min(99, int((seconds - self.start) * 100 / self.duration)))


def parse_progress(lines: Iterable[str], duration: float) -> list[int]:
    """The percentage at the end of every complete block in `lines` (pure, for tests)."""
    reader = ProgressReader(duration)
    return [p for p in map(reader.feed, lines) if p is not None]


_KNOWN_REASONS = (
    ("No space left on device", "the disk is full"),
    ("Cannot allocate memory", "the server ran out of memory"),
    ("Invalid data found when processing input", "the file is damaged or incomplete"),
    ("Permission denied", "the server could not write the converted files"),
    ("moov atom not found", "the file is incomplete"),
)


def failure_reason(stderr_lines: Iterable[str], returncode: int | None = None) -> str:
    """A short reason for a failed run, from the end of ffmpeg's stderr."""
    lines = [line.strip() for line in stderr_lines if line.strip()]
    for needle, reason in _KNOWN_REASONS:
        if any(needle in line for line in lines):
            return reason
    useful = [line for line in lines if line != "Conversion failed!"]
    if useful:
        last = re.sub(r"^\[[^\]]+ @ 0x[0-9a-f]+\]\s*", "", useful[-1])
        return f"ffmpeg reported: {last[:200]}"
    if returncode is not None and returncode < 0:
        return f"the converter was stopped by signal {-returncode}"
    return f"the converter exited with status {returncode}"


# From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded now: after fork, before exec, nothing may be imported."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: be killed when the thread that started us ends.

    That thread is the job runtime's event loop, which lives as long as its process.
    If the parent already died before this ran, no signal would ever come: exit.
    """
    assert _PRCTL is not None
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def child_options() -> dict[str, object]:
    """Popen options that tie a child process's life to this one (empty where unsupported)."""
    if _PRCTL is None:
        return {}
    parent = os.getpid()
    return {"preexec_fn": lambda: _die_with_parent(parent)}


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            process.kill()


async def _collect(stream: asyncio.StreamReader, tail: deque[str]) -> None:
    while line := await stream.readline():
        tail.append(line.decode("utf-8", "replace").rstrip())


async def run_ffmpeg(
    command: list[str],
    *,
    duration: float,
    on_progress: ProgressCallback | None,
    stall_timeout: float,
    nice: int = 10,
    start: float = 0.0,
) -> None:
    """Run `command` to the end, reporting whole percentages as they increase.

    `start`: the output time at which the run's `duration` begins (`ProgressReader`).

    Raises `TranscodeStalled` when no progress line comes for `stall_timeout` seconds
    and `TranscodeFailed` when the command exits non-zero; in both cases, and when
    the calling task is cancelled, ffmpeg's whole process group is killed first.
    The run is a span (`clipsync.tracing`): the program, the media's duration, the
    exit code; a failure marks it failed.
    """
    attributes = {
        "process.executable.name": os.path.basename(command[0]) if command else "",
        "clipsync.media.duration_seconds": duration,
    }
    with tracing.span("ffmpeg.run", attributes):
        await _run_ffmpeg(
            command,
            duration=duration,
            on_progress=on_progress,
            stall_timeout=stall_timeout,
            nice=nice,
            start=start,
        )


async def _run_ffmpeg(
    command: list[str],
    *,
    duration: float,
    on_progress: ProgressCallback | None,
    stall_timeout: float,
    nice: int,
    start: float = 0.0,
) -> None:
    argv = list(command)
    if shutil.which(argv[0]) is None:
        raise TranscodeFailed(
            "The video could not be converted: the converter could not be started.",
            detail=f"{argv[0]}: not found",
        )
    nice_program = shutil.which("nice") if nice > 0 else None
    if nice_program:
        # `nice` execs the command, so the pid (and the process group) stays ffmpeg's.
        argv = [nice_program, "-n", str(nice), *argv]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Its own process group, so a kill reaches anything ffmpeg started too.
            start_new_session=True,
            **child_options(),
        )
    except OSError as exc:
        raise TranscodeFailed(
            "The video could not be converted: the converter could not be started.",
            detail=f"{command[0]}: {exc}",
        ) from exc
    assert process.stdout is not None and process.stderr is not None
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    collector = asyncio.create_task(_collect(process.stderr, tail))
    reader = ProgressReader(duration, start=start)
    reported = -1
    try:
        while True:
            try:
                line = await asyncio.wait_for(process.stdout.readline(), stall_timeout)
            except TimeoutError:
                _kill(process)
                raise TranscodeStalled(
                    f"The conversion made no progress for {stall_timeout:g} seconds and was "
                    "stopped. The file may be damaged; please try uploading it again.",
                    detail="\n".join(tail),
                ) from None
            if not line:
                break
            percent = reader.feed(line.decode("utf-8", "replace"))
            if percent is not None and percent > reported:
                reported = percent
                if on_progress is not None:
                    await on_progress(percent)
        try:
            returncode = await asyncio.wait_for(process.wait(), stall_timeout)
        except TimeoutError:
            _kill(process)
            raise TranscodeStalled(
                "The conversion stopped responding and was stopped.", detail="\n".join(tail)
            ) from None
        tracing.set_attributes({"process.exit.code": returncode})
    finally:
        # Cancelled, stalled, or a callback raised: ffmpeg must not outlive the job.
        _kill(process)
        with contextlib.suppress(Exception):
            await outlast(process.wait())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(collector, 5)
    if returncode != 0:
        raise TranscodeFailed(
            f"The video could not be converted: {failure_reason(tail, returncode)}.",
            detail="\n".join(tail),
        )
    if reported < 100 and on_progress is not None:
        await on_progress(100)
