"""What differs between encoders (CPU, NVENC, VAAPI), kept as data.

`commands.hls_command` builds the same graph for every encoder: decode once, an
optional pre-filter, `split`, one scale per rendition, one encoder per rendition. A
profile fills in the parts that differ:

- `input_args`: before `-i`: the device, e.g. `-init_hw_device cuda=cu:0 -filter_hw_device
  cu` (NVENC) or `-vaapi_device /dev/dri/renderD128` (VAAPI); nothing for the CPU.
- `pre_filter`: once, before `split`: `format=yuv420p` on the CPU, so 10-bit and 4:2:2
  sources become 8-bit 4:2:0 that every H.264 decoder plays; `format=nv12,hwupload`
  (VAAPI) or `format=nv12,hwupload_cuda` (NVENC) to move decoded frames to the device.
- `device_decode`: when the source can be decoded on the device itself (NVDEC), the
  arguments that do it and the pre-filter to use instead (frames arrive there already).
- `scale_template`: per rendition: `scale=…` (CPU), `scale_cuda=…`, `scale_vaapi=…`.
- `download_filter`: on the poster's and the sprite's branches of the `split`, once their
  frames are picked and before they are scaled in software: `hwdownload,format=nv12`
  when frames after the split live on the device (NVENC, VAAPI), nothing on the CPU.
- `video_encoder` and `stream_options`: the encoder and its own options, written per
  output stream (`-preset:v:2 veryfast`); NVENC adds `("forced-idr", "1")` so forced
  key frames are IDR frames.
"""

from __future__ import annotations

from dataclasses import dataclass

from clipsync.media.ladder import Variant
from clipsync.media.probe import SourceInfo


@dataclass(frozen=True)
class DeviceDecode:
    """Decoding on the device (NVDEC), for the sources it can take.

    Decoded frames stay in video memory, so `pre_filter` replaces the profile's own
    (no upload). Sources with a rotation are decoded in software: ffmpeg does not
    rotate frames that live on a device, and the ladder is planned in display size.
    """

    args: tuple[str, ...]
    codecs: frozenset[str]
    pix_fmts: frozenset[str]
    pre_filter: str = ""

    def accepts(self, source: SourceInfo) -> bool:
        return (
            source.video_codec in self.codecs
            and source.pix_fmt in self.pix_fmts
            and source.rotation == 0
        )


@dataclass(frozen=True)
class EncoderProfile:
    name: str
    video_encoder: str
    input_args: tuple[str, ...] = ()
    pre_filter: str = ""
    scale_template: str = "scale={width}:{height}"
    # Brings the frames picked for the poster and the sprite back from the device.
    download_filter: str = ""
    h264_profile: str = "high"
    # Encoder options set on every rendition, as (option, value) without the stream suffix.
    stream_options: tuple[tuple[str, str], ...] = ()
    device_decode: DeviceDecode | None = None

    def source_args(self, source: SourceInfo) -> list[str]:
        """What goes before `-i` for this source: the device, and how to decode."""
        if self.device_decode is not None and self.device_decode.accepts(source):
            return [*self.input_args, *self.device_decode.args]
        return list(self.input_args)

    def source_filter(self, source: SourceInfo) -> str:
        """The filter run once before `split` for this source."""
        if self.device_decode is not None and self.device_decode.accepts(source):
            return self.device_decode.pre_filter
        return self.pre_filter

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


# What NVDEC decodes (8-bit 4:2:0; 10-bit and 4:2:2 sources are decoded in software,
# converted to nv12 and uploaded, since h264_nvenc writes 8-bit only).
NVDEC_CODECS = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "mpeg1video", "mpeg2video", "mpeg4", "vc1"}
)
NVDEC_PIX_FMTS = frozenset({"yuv420p", "yuvj420p", "nv12"})
NVENC_PRESETS = tuple(f"p{n}" for n in range(1, 8))


def nvenc_profile(preset: str = "p4", gpu: int = 0) -> EncoderProfile:
    """h264_nvenc on NVIDIA GPU `gpu`, decoding with NVDEC where the source allows.

    `preset` is NVENC's speed/quality trade-off, p1 (fastest) to p7 (best). Rate
    control is VBR within each rendition's maxrate and bufsize; forced key frames
    are IDR frames and scene cuts add none, so every rendition cuts segments at the
    same instants.
    """
    return EncoderProfile(
        name="nvenc",
        video_encoder="h264_nvenc",
        input_args=("-init_hw_device", f"cuda=cu:{gpu}", "-filter_hw_device", "cu"),
        pre_filter="format=nv12,hwupload_cuda",
        scale_template="scale_cuda=w={width}:h={height}:interp_algo=bicubic",
        # Uploaded frames are nv12; NVDEC is only used for 8-bit 4:2:0, which it hands
        # over as nv12 too.
        download_filter="hwdownload,format=nv12",
        stream_options=(
            ("preset", preset),
            ("rc", "vbr"),
            ("forced-idr", "1"),
            ("no-scenecut", "1"),
        ),
        device_decode=DeviceDecode(
            args=("-hwaccel", "cuda", "-hwaccel_device", "cu", "-hwaccel_output_format", "cuda"),
            codecs=NVDEC_CODECS,
            pix_fmts=NVDEC_PIX_FMTS,
        ),
    )


def vaapi_profile(device: str = "/dev/dri/renderD128") -> EncoderProfile:
    """h264_vaapi on the VAAPI render node `device` (Intel and AMD GPUs).

    ffmpeg decodes in software (any source, rotation applied), converts to nv12 and
    uploads once; the split, the scaling and the encoding happen on the GPU. Every
    forced key frame is an IDR frame (h264_vaapi's `idr_interval` 0).
    """
    return EncoderProfile(
        name="vaapi",
        video_encoder="h264_vaapi",
        input_args=("-vaapi_device", device),
        pre_filter="format=nv12,hwupload",
        scale_template="scale_vaapi=w={width}:h={height}",
        download_filter="hwdownload,format=nv12",
        stream_options=(("rc_mode", "VBR"),),
    )
