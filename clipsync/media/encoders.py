"""What differs between encoders (CPU, NVENC, VAAPI), kept as data.

`commands.hls_command` builds the same graph for every encoder: decode once, an
optional pre-filter, `split`, one scale per rendition, one encoder per rendition. A
profile fills in the parts that differ:

- `input_args`: before `-i`, e.g. `-hwaccel cuda -hwaccel_output_format cuda` (NVENC)
  or `-vaapi_device /dev/dri/renderD128` (VAAPI); nothing for the CPU.
- `pre_filter`: once, before `split`: `format=yuv420p` on the CPU, so 10-bit and 4:2:2
  sources become 8-bit 4:2:0 that every H.264 decoder plays; `format=nv12,hwupload`
  for VAAPI.
- `scale_template`: per rendition: `scale=…` (CPU), `scale_cuda=…`, `scale_vaapi=…`.
- `video_encoder` and `stream_options`: the encoder and its own options, written per
  output stream (`-preset:v:2 veryfast`); NVENC would add `("forced-idr", "1")` so
  forced key frames are IDR frames.
"""

from __future__ import annotations

from dataclasses import dataclass

from clipsync.media.ladder import Variant


@dataclass(frozen=True)
class EncoderProfile:
    name: str
    video_encoder: str
    input_args: tuple[str, ...] = ()
    pre_filter: str = ""
    scale_template: str = "scale={width}:{height}"
    h264_profile: str = "high"
    # Encoder options set on every rendition, as (option, value) without the stream suffix.
    stream_options: tuple[tuple[str, str], ...] = ()

    def scale_filter(self, width: int, height: int) -> str:
        """The filter that scales one rendition to exactly `width`x`height`."""
        return self.scale_template.format(width=width, height=height)

    def video_args(self, variant: Variant, index: int, gop: int) -> list[str]:
        """Encoder arguments of output video stream `index`, with a fixed GOP of `gop` frames.

        `keyint_min` equal to the GOP and no scene-cut key frames keep every rendition's
        key frames at the same instants (with the forced key frames `hls_command` adds).
        """
        spec = f":v:{index}"
        args = [
            f"-c{spec}", self.video_encoder,
            f"-b{spec}", str(variant.video_bitrate),
            f"-maxrate{spec}", str(variant.maxrate),
            f"-bufsize{spec}", str(variant.bufsize),
            f"-profile{spec}", self.h264_profile,
            f"-g{spec}", str(gop),
            f"-keyint_min{spec}", str(gop),
        ]  # fmt: skip
        for option, value in self.stream_options:
            args += [f"-{option}{spec}", value]
        return args


def cpu_profile(preset: str = "veryfast") -> EncoderProfile:
    """libx264 in software; `preset` is libx264's speed/quality trade-off."""
    return EncoderProfile(
        name="cpu",
        video_encoder="libx264",
        pre_filter="format=yuv420p",
        scale_template="scale={width}:{height}:flags=bicubic",
        stream_options=(("preset", preset), ("sc_threshold", "0")),
    )
