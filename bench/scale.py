"""Chunked transcoding across workers: time to READY with 1 and 2 single-core workers.

Run it with `.venv/bin/python bench/scale.py` (the issue's 5-minute source: about an
hour of CPU time in all, so on a busy 2-core machine use `--seconds 40
--chunk-seconds 10`, about 10 to 15 minutes). It makes a 1920x1080 30 fps clip with
AAC sound, then, for each of four cases, a fresh install (SQLite database and queue,
local storage, the default ladder 240p to 1080p, libx264 veryfast, 4 s segments) and
real `clipsync worker` processes, each pinned to one core of its own with `taskset`
(its ffmpeg inherits the pin) and running one job at a time:

    1 worker,  one process      1 worker,  chunks of --chunk-seconds
    2 workers, one process      2 workers, chunks of --chunk-seconds

It registers the clip as an upload is registered and measures the wall time from the
registration to READY, and the CPU time (user + system) the workers and their ffmpeg
spent meanwhile (from /proc). It then counts the frames of the 1080p rendition of each
output (every case must have the one-process count) and decodes each chunked output
end to end with `ffmpeg -v error`.

Targets (issue 19): 2 workers at least 1.8 times faster than 1 with chunking; chunking
costs at most 5 % more CPU time than one process; same frame count; no decode error.
From the measured CPU time per second of video it works out how many such cores make
one hour of video READY in under 5 minutes. Printed side by side, never asserted:
exits 1 only when something failed to run.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from uploaded_source import store_and_register

from clipsync import db
from clipsync.models import Video, VideoStatus
from clipsync.plugins import create_plugin_host
from clipsync.settings import load_settings
from clipsync.storage import keys

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FFPROBE = shutil.which("ffprobe") or "ffprobe"
TARGET_SPEEDUP = 1.8
TARGET_OVERHEAD = 0.05
HLD_VIDEO_SECONDS = 3600
HLD_WALL_SECONDS = 300
STARTED = "job consumer started"
TICKS = os.sysconf("SC_CLK_TCK")

CONFIG = """
[paths]
data_dir = "{data}"

[queue]
backend = "sqlite"
workers = 1
run_in_server = false

[transcoder]
backend = "cpu"
max_concurrent = 1
chunk_seconds = {chunk_seconds}
"""


class BenchFailed(Exception):
    """A measurement could not be run; the message says which and why."""


@dataclass
class Case:
    workers: int
    chunked: bool
    wall: float = 0.0
    cpu: float = 0.0
    frames: int = 0
    chunks: int = 0
    decode: str = ""

    @property
    def label(self) -> str:
        way = "chunks" if self.chunked else "one process"
        return f"{self.workers} worker{'s' if self.workers > 1 else ''}, {way}"


def run(argv: list[str], what: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BenchFailed(f"{what}: exit status {done.returncode}\n{tail}")
    return done.stdout


def make_clip(out: Path, seconds: int) -> None:
    run(
        [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(out),
        ],
        "making the test clip",
    )  # fmt: skip


def process_cpu(pid: int) -> float:
    """CPU seconds of `pid` and of its children it has waited for (utime+stime+cutime+cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(v) for v in fields[11:15]) / TICKS


class Worker:
    """`clipsync worker` pinned to one core."""

    def __init__(self, config: Path, core: int, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                ["taskset", "-c", str(core), sys.executable, "-m", "clipsync",
                 "--config", str(config), "worker"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")},
                start_new_session=True,
            )  # fmt: skip

    def wait_started(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while STARTED not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchFailed(f"clipsync worker did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


async def register(config: Path, source: Path, size: int) -> str:
    """Store `source` as an upload and register it (queues its transcode); its id."""
    from clipsync.backends import Backends, select_all
    from clipsync.jobs.queue import create_queue

    settings = load_settings(str(config))
    plugins = create_plugin_host(settings)
    storage = Backends(select_all(plugins, settings)).storage
    tasks = create_queue(settings)
    video_id = await store_and_register(
        settings, storage, plugins, source, size, tasks.enqueue_transcode
    )
    return str(video_id)


async def wait_ready(video_id: str) -> Video:
    while True:
        video = await Video.get(id=video_id)
        if video.status in (VideoStatus.READY, VideoStatus.FAILED):
            return video
        await asyncio.sleep(0.25)


def count_frames(playlist: Path) -> int:
    out = run(
        [FFPROBE, "-v", "error", "-count_packets", "-select_streams", "v",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(playlist)],
        "counting frames",
    )  # fmt: skip
    return int(out.strip().splitlines()[0])


def measure(case: Case, tmp: Path, source: Path, template: Path, chunk_seconds: int) -> None:
    home = tmp / f"{case.workers}w-{'chunks' if case.chunked else 'one'}"
    data = home / "data"
    data.mkdir(parents=True)
    shutil.copyfile(template, data / "clipsync.sqlite3")
    config = home / "config.toml"
    config.write_text(CONFIG.format(data=data, chunk_seconds=chunk_seconds if case.chunked else 0))
    workers = [Worker(config, core, home / f"worker-{core}.log") for core in range(case.workers)]
    try:
        for worker in workers:
            worker.wait_started()
        settings = load_settings(str(config))
        size = source.stat().st_size

        async def job() -> tuple[Video, float, float]:
            await db.open_database(settings)
            try:
                cpu = sum(process_cpu(w.process.pid) for w in workers)
                started = time.perf_counter()
                video_id = await register(config, source, size)
                video = await wait_ready(video_id)
                wall = time.perf_counter() - started
                cpu = sum(process_cpu(w.process.pid) for w in workers) - cpu
                from clipsync.services import chunk_counts

                await chunk_counts.attach([video])
                return video, wall, cpu
            finally:
                await db.close_database()

        video, case.wall, case.cpu = asyncio.run(job())
    finally:
        for worker in workers:
            worker.stop()
    if video.status != VideoStatus.READY:
        raise BenchFailed(f"{case.label}: the video ended {video.status}: {video.error}")
    tree = data / "media" / keys.hls_prefix(video.id)
    case.chunks = getattr(video, "chunk_count", 1)
    case.frames = count_frames(tree / "1080p" / "index.m3u8")
    if case.chunked:
        done = subprocess.run(
            [FFMPEG, "-v", "error", "-i", str(tree / "master.m3u8"), "-f", "null", "-"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        case.decode = "ok" if done.returncode == 0 and not done.stderr.strip() else done.stderr
    shutil.rmtree(data / "media", ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=300, help="length of the 1080p source")
    parser.add_argument("--chunk-seconds", type=int, default=60, help="[transcoder] chunk_seconds")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        print("FAILED: needs 2 cores and taskset (util-linux)", file=sys.stderr)
        return 1
    load = os.getloadavg()
    print(
        f"ClipSync scaling benchmark: {os.cpu_count()} CPUs, load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {args.seconds} s 1080p source, "
        f"chunks of {args.chunk_seconds} s",
        flush=True,
    )
    cases = [Case(1, False), Case(1, True), Case(2, False), Case(2, True)]
    began = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="clipsync-scale-") as folder:
            tmp = Path(folder)
            source = tmp / "clip.mp4"
            print("  making the test clip ...", flush=True)
            make_clip(source, args.seconds)
            template = tmp / "template"
            template.mkdir()
            migrate_into(template)
            for case in cases:
                print(f"  {case.label} ...", flush=True)
                measure(case, tmp, source, template / "clipsync.sqlite3", args.chunk_seconds)
    except BenchFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    report(cases, args.seconds, time.perf_counter() - began)
    return 0


def migrate_into(folder: Path) -> None:
    from clipsync.settings import parse_settings

    asyncio.run(db.migrate(parse_settings({"paths": {"data_dir": str(folder)}}, where="bench")))


def report(cases: list[Case], seconds: int, total: float) -> None:
    one, one_chunked, two, two_chunked = cases
    load = os.getloadavg()
    print()
    print(f"{'case':<26} {'chunks':>6} {'wall s':>8} {'CPU s':>8} {'cores':>6} {'frames':>7}")
    for case in cases:
        print(
            f"{case.label:<26} {case.chunks:>6} {case.wall:8.1f} {case.cpu:8.1f} "
            f"{case.cpu / case.wall:6.2f} {case.frames:>7}"
        )
    speedup = one_chunked.wall / two_chunked.wall
    overhead = one_chunked.cpu / one.cpu - 1
    same_frames = len({c.frames for c in cases}) == 1
    decoded = all(c.decode == "ok" for c in cases if c.chunked)
    print()
    print(f"{'figure':<52} {'value':>8} {'target':>8}  result")
    rows = [
        ("2 workers / 1 worker, with chunks (speed-up)", f"{speedup:.2f}",
         f">= {TARGET_SPEEDUP}", speedup >= TARGET_SPEEDUP),
        ("chunks / one process, CPU time, 1 worker (overhead)", f"{overhead:+.1%}",
         f"<= {TARGET_OVERHEAD:.0%}", overhead <= TARGET_OVERHEAD),
        ("chunked frames = one-process frames", str(same_frames), "True", same_frames),
        ("chunked outputs decode with no error", str(decoded), "True", decoded),
    ]  # fmt: skip
    for label, value, target, ok in rows:
        print(f"{label:<52} {value:>8} {target:>8}  {'PASS' if ok else 'MISS'}")
    print("for information:")
    print(f"  2 workers / 1 worker, one process (one video cannot use two): "
          f"{one.wall / two.wall:.2f}")  # fmt: skip
    print(f"  chunks / one process, CPU time, 2 workers: {two_chunked.cpu / two.cpu - 1:+.1%}")
    for case in cases:
        if case.decode not in ("", "ok"):
            print(f"  decode errors ({case.label}): {case.decode[:300]}")
    # Per-core throughput: CPU seconds of one core per second of video, with chunks.
    per_second = one_chunked.cpu / seconds
    cores = math.ceil(HLD_VIDEO_SECONDS * per_second / HLD_WALL_SECONDS)
    print()
    print(
        f"One core makes {1 / per_second:.2f} s of video per second ({per_second:.2f} CPU s\n"
        f"per second of video, chunked). One hour READY in {HLD_WALL_SECONDS // 60} minutes "
        f"takes {HLD_VIDEO_SECONDS} x {per_second:.2f} / {HLD_WALL_SECONDS} = at least "
        f"{cores} such cores,\nwith chunks short enough that each core gets whole chunks "
        f"(chunk_seconds x {per_second:.2f}\nwell under {HLD_WALL_SECONDS} s)."
    )
    print(
        f"Load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
        f"ran {total / 60:.1f} minutes."
    )


if __name__ == "__main__":
    sys.exit(main())
