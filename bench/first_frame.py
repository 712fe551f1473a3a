"""Time to the first playable frame of a video while it still transcodes.

Run it with `.venv/bin/python bench/first_frame.py` (a few minutes on 2 cores: most
of it making the 10 min source). It makes a 60 s and a 10 min 1920x1080 30 fps test
clip with AAC sound, then for each runs ClipSync's real job (`run_transcode`, default
settings and ladder, 240p to 1080p, libx264 veryfast, local storage, a SQLite install
in a temporary folder) as a consumer does after an upload ends, and measures from the
job's start:

master   the early master playlist is in the store (services/early_playback.py): every
         rendition's init segment and first segment are stored then;
frame    ffmpeg, reading the stored master (the store's files, not the job's scratch),
         has decoded the first video frame: what a player needs to show a picture.

The job is then stopped (its files removed): the full transcode is bench/transcode.py's
business. Target: frame < 10 s for both lengths, whatever the length. Each figure is one
run, printed; nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from uploaded_source import register_source

from clipsync import db
from clipsync.backends import Backends, select_all
from clipsync.plugins import create_plugin_host
from clipsync.services.transcoding import JobContext, run_transcode
from clipsync.settings import parse_settings
from clipsync.storage import keys

TARGET_SECONDS = 10.0
LENGTHS = (60, 600)


BASE = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]


def make_clip(out: Path, seconds: int) -> None:
    """A `seconds` long 1080p clip; the longer ones are the 60 s one repeated (stream copy:
    making ten minutes of 1080p here would take longer than the benchmark)."""
    if seconds > LENGTHS[0]:
        first = out.with_name(f"clip-{LENGTHS[0]}.mp4")
        loops = str(seconds // LENGTHS[0] - 1)
        command = [*BASE, "-stream_loop", loops, "-i", str(first), "-c", "copy", str(out)]
        subprocess.run(command, check=True)
        return
    subprocess.run(
        [
            *BASE,
            "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "28", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "96k", "-shortest", str(out),
        ],
        check=True,
    )  # fmt: skip


def first_frame_decodes(master: Path) -> bool:
    """Whether ffmpeg decodes a first video frame from the stored master playlist."""
    done = subprocess.run(
        [
            *BASE, "-i", str(master), "-map", "0:v:0", "-frames:v", "1", "-f", "null", "-",
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    return done.returncode == 0


async def measure(ctx: JobContext, source: Path, size: int) -> tuple[float, float]:
    """Seconds from the job's start to the stored master, and to a decoded frame."""
    await db.open_database(ctx.settings)
    try:
        video_id = await register_source(ctx, source, size)
        storage = ctx.backends.storage
        master = storage.path(keys.hls_key(video_id, "master.m3u8"))
        started = time.perf_counter()
        job = asyncio.create_task(run_transcode(ctx, str(video_id), final_attempt=True))
        at_master = at_frame = float("nan")
        try:
            # The store's file, written by the job: polled as a player would.
            while not job.done():
                if await asyncio.to_thread(master.is_file):
                    break
                await asyncio.sleep(0.05)
            at_master = time.perf_counter() - started
            while not job.done():
                if await asyncio.to_thread(first_frame_decodes, master):
                    at_frame = time.perf_counter() - started
                    break
                await asyncio.sleep(0.1)
        finally:
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            await storage.delete_prefix(keys.video_prefix(video_id))
        return at_master, at_frame
    finally:
        await db.close_database()


def main() -> int:
    load = os.getloadavg()[0]
    print(f"ClipSync first-frame benchmark: {os.cpu_count()} CPUs, load average {load:.1f}")
    with tempfile.TemporaryDirectory(prefix="clipsync-bench-") as folder:
        tmp = Path(folder)
        settings = parse_settings({"paths": {"data_dir": str(tmp / "data")}}, where="bench")
        asyncio.run(db.migrate(settings))
        plugins = create_plugin_host(settings)
        ctx = JobContext(settings, plugins, Backends(select_all(plugins, settings)))
        rows = []
        for seconds in LENGTHS:
            source = tmp / f"clip-{seconds}.mp4"
            print(f"  making the {seconds} s 1080p test clip ...", flush=True)
            made = time.perf_counter()
            make_clip(source, seconds)
            print(f"    made in {time.perf_counter() - made:.0f} s", flush=True)
            at_master, at_frame = asyncio.run(measure(ctx, source, source.stat().st_size))
            rows.append((seconds, at_master, at_frame))
    print()
    print("| source | master stored | first frame decoded | target < 10 s |")
    print("| --- | --- | --- | --- |")
    for seconds, at_master, at_frame in rows:
        name = f"{seconds // 60} min 1080p" if seconds >= 60 else f"{seconds} s 1080p"
        met = "met" if at_frame < TARGET_SECONDS else "MISSED"
        print(f"| {name} | {at_master:.1f} s | {at_frame:.1f} s | {met} |")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
