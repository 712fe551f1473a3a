"""Which renditions to make of a source: the ladder, never above the source's size.

A rung names the SHORTER side of the picture, so "720p" is 1280x720 for a landscape
source and 720x1280 for a portrait one. Rules, all in `plan_ladder`:

- a rung is used when it is no larger than the source's shorter side (no upscaling);
- nothing extra is added for a source that sits between two rungs (a 1279x719 source
  gets 240p, 360p and 480p, not a fourth rendition at 718p);
- a source smaller than the lowest rung gets one rendition at its own size;
- the longer side keeps the aspect ratio, rounded to the NEAREST even number (libx264
  with 4:2:0 chroma needs even sizes) and never past the source's own longer side:
  1279x719 at 240p is 426x240 (240 * 1279 / 719 = 426.9).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from clipsync.media.probe import SourceInfo

MAXRATE_FACTOR = 1.07
BUFSIZE_FACTOR = 1.5


@dataclass(frozen=True)
class Rung:
    """One step of the ladder: the shorter side in pixels and the video kbit/s."""

    height: int
    bitrate: int


DEFAULT_LADDER: tuple[Rung, ...] = (
    Rung(240, 400),
    Rung(360, 800),
    Rung(480, 1400),
    Rung(720, 2800),
    Rung(1080, 5000),
)


@dataclass(frozen=True)
class Variant:
    """One rendition to encode; bitrates in bit/s."""

    name: str
    width: int
    height: int
    video_bitrate: int
    maxrate: int
    bufsize: int


def _even_down(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _even_nearest(value: float, limit: int) -> int:
    nearest = max(2, round(value / 2) * 2)
    return nearest if nearest <= limit else _even_down(limit)


def _variant(name: str, width: int, height: int, kbits: float) -> Variant:
    bitrate = round(kbits * 1000)
    return Variant(
        name=name,
        width=width,
        height=height,
        video_bitrate=bitrate,
        maxrate=round(bitrate * MAXRATE_FACTOR),
        bufsize=round(bitrate * BUFSIZE_FACTOR),
    )


def _size(short: int, source: SourceInfo) -> tuple[int, int]:
    """Width and height for a rendition whose shorter side is `short`."""
    long_side = max(source.width, source.height)
    short_side = min(source.width, source.height)
    other = _even_nearest(short * long_side / short_side, long_side)
    return (other, short) if source.width >= source.height else (short, other)


def plan_ladder(rungs: Iterable[Rung], source: SourceInfo) -> list[Variant]:
    """The renditions to make of `source`, smallest first (see the module docstring)."""
    ladder = sorted({r.height: r for r in rungs if r.height > 0}.values(), key=lambda r: r.height)
    if not ladder:
        raise ValueError("the rendition ladder has no rungs")
    short_side = min(source.width, source.height)
    variants = []
    for rung in ladder:
        if rung.height > short_side:
            break
        short = _even_down(rung.height)
        width, height = _size(short, source)
        variants.append(_variant(f"{rung.height}p", width, height, rung.bitrate))
    if variants:
        return variants
    # Smaller than the lowest rung: one rendition at the source's own (even) size, with
    # the lowest rung's bitrate scaled by area but not below a quarter of it.
    lowest = ladder[0]
    short = _even_down(short_side)
    width, height = _size(short, source)
    share = max(0.25, (short / lowest.height) ** 2)
    return [_variant(f"{short}p", width, height, lowest.bitrate * share)]
