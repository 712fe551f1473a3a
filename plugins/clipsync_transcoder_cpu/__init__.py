"""Software transcoding with ffmpeg and libx264: works on any machine with ffmpeg.

It has the lowest priority, so `[transcoder] backend = "auto"` uses it only when no
hardware transcoder is available, and it is the usual `fallback`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import ClassVar

from clipsync import hookimpl
from clipsync.backends import Availability, BackendContext
from clipsync.media.encoders import EncoderProfile, cpu_profile


@dataclass(frozen=True)
class TranscoderCpuSettings:
    # The ffmpeg program: a name looked up on PATH, or a full path.
    ffmpeg: str = "ffmpeg"
    # libx264 speed/quality trade-off: ultrafast … veryslow.
    preset: str = "veryfast"


@functools.cache
def _probe(ffmpeg: str) -> Availability:
    """Really encode one second of test video; cached for the life of the process."""
    program = shutil.which(ffmpeg)
    if program is None:
        return Availability.no(f"{ffmpeg} not found (install ffmpeg)")
    command = [
        program, "-hide_banner", "-loglevel", "error", "-nostdin",
        "-f", "lavfi", "-i", "testsrc2=size=128x72:rate=10:duration=1",
        "-c:v", "libx264", "-preset", "ultrafast", "-f", "null", "-",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Availability.no(f"test encode with {program} failed: {exc}")
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return Availability.no(f"test encode with libx264 failed: {detail[0]}")
    return Availability.yes(f"libx264 test encode with {program} succeeded")


class CpuTranscoder:
    """The `cpu` transcoder: ffmpeg with libx264."""

    name: ClassVar[str] = "cpu"
    priority: ClassVar[int] = 0
    # Half the cores: libx264 uses several threads per job, and the web server and
    # the database need some CPU left while videos encode.
    default_max_concurrent: ClassVar[int] = max(1, (os.cpu_count() or 2) // 2)

    def __init__(self, ffmpeg: str, preset: str) -> None:
        self.ffmpeg = ffmpeg
        self.preset = preset

    def profile(self) -> EncoderProfile:
        """The libx264 encoder profile `clipsync.media.pipeline.transcode` runs with."""
        return cpu_profile(self.preset)

    @classmethod
    def probe(cls, context: BackendContext) -> Availability:
        return _probe(context.config.ffmpeg)

    @classmethod
    def create(cls, context: BackendContext) -> CpuTranscoder:
        config: TranscoderCpuSettings = context.config
        return cls(shutil.which(config.ffmpeg) or config.ffmpeg, config.preset)


@hookimpl
def settings_schema() -> type:
    return TranscoderCpuSettings


@hookimpl
def register_transcoders() -> list[type]:
    return [CpuTranscoder]
