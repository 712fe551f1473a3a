"""Transcoding on an Intel or AMD GPU through VAAPI: `scale_vaapi` and `h264_vaapi`.

The whole ladder is still one ffmpeg process: the source is decoded once in software
(any codec, rotation applied), uploaded to the GPU once, then split, scaled and
encoded there, with the same key frames and HLS layout as the `cpu` transcoder.

`[transcoder] backend = "auto"` uses it when no NVIDIA GPU is available and its probe
succeeds: ffmpeg has `h264_vaapi` and `scale_vaapi`, the render node exists and the
service user may open it, and a one-second test encode on it works.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

from clipsync import hookimpl
from clipsync.backends import Availability, BackendContext
from clipsync.media import detection
from clipsync.media.encoders import EncoderProfile, vaapi_profile

MISSING_DEVICE = (
    "pass the device to the container (--device /dev/dri); outside a container, "
    "this machine has no GPU with a loaded driver"
)
NO_ACCESS = "add the user to the render group (SupplementaryGroups=render)"


@dataclass(frozen=True)
class TranscoderVaapiSettings:
    # The ffmpeg program: a name looked up on PATH, or a full path.
    ffmpeg: str = "ffmpeg"
    # The GPU's VAAPI render node; the second GPU of a machine is renderD129.
    device: str = "/dev/dri/renderD128"


@functools.cache
def _probe(ffmpeg: str, device: str) -> Availability:
    """ffmpeg's build, the render node, then a real one-second encode on it.

    Cached for the life of the process: a device that appears later needs a restart.
    """
    program, why = detection.find_ffmpeg(ffmpeg)
    if program is None:
        return Availability.no(why)
    missing = detection.missing_from_ffmpeg(
        program, encoders=("h264_vaapi",), filters=("scale_vaapi", "hwupload")
    )
    if missing:
        return Availability.no(missing)
    problem = detection.device_problem(device, MISSING_DEVICE, NO_ACCESS)
    if problem:
        return Availability.no(problem)
    command = [
        program, "-hide_banner", "-loglevel", "error", "-nostdin",
        "-vaapi_device", device,
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10:duration=1",
        "-vf", "format=nv12,hwupload,scale_vaapi=w=256:h=144",
        "-c:v", "h264_vaapi", "-f", "null", "-",
    ]  # fmt: skip
    return detection.test_encode(command, f"h264_vaapi on {device}")


class VaapiTranscoder:
    """The `vaapi` transcoder: ffmpeg with scale_vaapi and h264_vaapi."""

    name: ClassVar[str] = "vaapi"
    priority: ClassVar[int] = 10
    # One GPU: more simultaneous jobs only queue up inside it.
    default_max_concurrent: ClassVar[int] = 1

    def __init__(self, ffmpeg: str, device: str) -> None:
        self.ffmpeg = ffmpeg
        self.device = device

    def profile(self) -> EncoderProfile:
        """The h264_vaapi encoder profile `clipsync.media.pipeline.transcode` runs with."""
        return vaapi_profile(self.device)

    @classmethod
    def probe(cls, context: BackendContext) -> Availability:
        config: TranscoderVaapiSettings = context.config
        return _probe(config.ffmpeg, config.device)

    @classmethod
    def create(cls, context: BackendContext) -> VaapiTranscoder:
        config: TranscoderVaapiSettings = context.config
        program, _ = detection.find_ffmpeg(config.ffmpeg)
        return cls(program or config.ffmpeg, config.device)


@hookimpl
def settings_schema() -> type:
    return TranscoderVaapiSettings


@hookimpl
def register_transcoders() -> list[type]:
    return [VaapiTranscoder]
