"""Transcoding on an NVIDIA GPU: NVDEC decoding, `scale_cuda` and `h264_nvenc`.

The whole ladder is still one ffmpeg process: the source is decoded once (on the GPU
when NVDEC can take it, otherwise in software and uploaded), split, scaled and
encoded on the GPU, with the same key frames and HLS layout as the `cpu` transcoder.

Its priority is the highest of the built-in transcoders, so `[transcoder] backend =
"auto"` uses it whenever the probe succeeds: ffmpeg has `h264_nvenc` and `scale_cuda`,
`/dev/nvidia<gpu>` and `/dev/nvidiactl` exist and the service user may open them, and
a one-second test encode on the GPU works.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

from clipsync import hookimpl
from clipsync.backends import Availability, BackendContext
from clipsync.errors import ConfigError
from clipsync.media import detection
from clipsync.media.encoders import NVENC_PRESETS, EncoderProfile, nvenc_profile

MISSING_DEVICE = (
    "install the NVIDIA driver; in a container, pass the GPU "
    "(--gpus all with the NVIDIA Container Toolkit)"
)
NO_ACCESS = "add the user to the group that owns it (usually video: SupplementaryGroups=video)"


@dataclass(frozen=True)
class TranscoderNvencSettings:
    # The ffmpeg program: a name looked up on PATH, or a full path.
    ffmpeg: str = "ffmpeg"
    # NVENC speed/quality trade-off: p1 (fastest) … p7 (best quality).
    preset: str = "p4"
    # Which GPU: 0 is the first (/dev/nvidia0).
    gpu: int = 0

    def __post_init__(self) -> None:
        if self.preset not in NVENC_PRESETS:
            raise ConfigError(
                f"[plugins.transcoder_nvenc] preset must be one of {', '.join(NVENC_PRESETS)} "
                f"(got {self.preset!r})"
            )
        if self.gpu < 0:
            raise ConfigError(f"[plugins.transcoder_nvenc] gpu must be 0 or more (got {self.gpu})")


@functools.cache
def _probe(ffmpeg: str, gpu: int) -> Availability:
    """ffmpeg's build, the device nodes, then a real one-second encode on the GPU.

    Cached for the life of the process: a GPU that appears later needs a restart.
    """
    program, why = detection.find_ffmpeg(ffmpeg)
    if program is None:
        return Availability.no(why)
    missing = detection.missing_from_ffmpeg(
        program, encoders=("h264_nvenc",), filters=("scale_cuda", "hwupload_cuda")
    )
    if missing:
        return Availability.no(missing)
    for node in (f"/dev/nvidia{gpu}", "/dev/nvidiactl"):
        problem = detection.device_problem(node, MISSING_DEVICE, NO_ACCESS)
        if problem:
            return Availability.no(problem)
    command = [
        program, "-hide_banner", "-loglevel", "error", "-nostdin",
        "-init_hw_device", f"cuda=cu:{gpu}", "-filter_hw_device", "cu",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10:duration=1",
        "-vf", "format=nv12,hwupload_cuda,scale_cuda=w=256:h=144",
        "-c:v", "h264_nvenc", "-preset", "p1", "-f", "null", "-",
    ]  # fmt: skip
    return detection.test_encode(command, f"h264_nvenc on GPU {gpu}")


class NvencTranscoder:
    """The `nvenc` transcoder: ffmpeg with NVDEC, scale_cuda and h264_nvenc."""

    name: ClassVar[str] = "nvenc"
    priority: ClassVar[int] = 20
    # One GPU: more simultaneous jobs only queue up inside it (and in its memory).
    default_max_concurrent: ClassVar[int] = 1

    def __init__(self, ffmpeg: str, preset: str, gpu: int) -> None:
        self.ffmpeg = ffmpeg
        self.preset = preset
        self.gpu = gpu

    def profile(self) -> EncoderProfile:
        """The h264_nvenc encoder profile `clipsync.media.pipeline.transcode` runs with."""
        return nvenc_profile(self.preset, self.gpu)

    @classmethod
    def probe(cls, context: BackendContext) -> Availability:
        config: TranscoderNvencSettings = context.config
        return _probe(config.ffmpeg, config.gpu)

    @classmethod
    def create(cls, context: BackendContext) -> NvencTranscoder:
        config: TranscoderNvencSettings = context.config
        program, _ = detection.find_ffmpeg(config.ffmpeg)
        return cls(program or config.ffmpeg, config.preset, config.gpu)


@hookimpl
def settings_schema() -> type:
    return TranscoderNvencSettings


@hookimpl
def register_transcoders() -> list[type]:
    return [NvencTranscoder]
