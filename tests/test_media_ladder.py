"""The rendition ladder: which sizes and bitrates a source gets, never above its own size."""

from __future__ import annotations

import pytest

from clipsync.media.ladder import DEFAULT_LADDER, Rung, Variant, plan_ladder
from clipsync.media.probe import SourceInfo


def source(width: int, height: int) -> SourceInfo:
    return SourceInfo(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        duration=10.0,
        width=width,
        height=height,
        rotation=0,
        video_codec="h264",
        pix_fmt="yuv420p",
        frame_rate=30.0,
        variable_frame_rate=False,
        audio_codec="aac",
        bitrate=None,
        size=1,
    )


def sizes(variants: list[Variant]) -> list[tuple[str, int, int]]:
    return [(v.name, v.width, v.height) for v in variants]


def test_default_ladder() -> None:
    assert [(r.height, r.bitrate) for r in DEFAULT_LADDER] == [
        (240, 400), (360, 800), (480, 1400), (720, 2800), (1080, 5000),
    ]  # fmt: skip


def test_1080p_landscape_gets_every_rung() -> None:
    assert sizes(plan_ladder(DEFAULT_LADDER, source(1920, 1080))) == [
        ("240p", 426, 240),
        ("360p", 640, 360),
        ("480p", 854, 480),
        ("720p", 1280, 720),
        ("1080p", 1920, 1080),
    ]


def test_portrait_rungs_name_the_shorter_side() -> None:
    assert sizes(plan_ladder(DEFAULT_LADDER, source(1080, 1920))) == [
        ("240p", 240, 426),
        ("360p", 360, 640),
        ("480p", 480, 854),
        ("720p", 720, 1280),
        ("1080p", 1080, 1920),
    ]


def test_odd_source_rounds_to_the_nearest_even_and_adds_nothing_between_rungs() -> None:
    # 240 * 1279 / 719 = 426.9 -> 426; 719 < 720, so 720p is skipped and no 718p is added.
    assert sizes(plan_ladder(DEFAULT_LADDER, source(1279, 719))) == [
        ("240p", 426, 240),
        ("360p", 640, 360),
        ("480p", 854, 480),
    ]


def test_720p_source_stops_at_720p() -> None:
    assert sizes(plan_ladder(DEFAULT_LADDER, source(1280, 720)))[-1] == ("720p", 1280, 720)
    assert len(plan_ladder(DEFAULT_LADDER, source(1280, 720))) == 4


def test_4k_source_is_capped_by_the_ladder_not_upscaled_or_extended() -> None:
    assert sizes(plan_ladder(DEFAULT_LADDER, source(3840, 2160)))[-1] == ("1080p", 1920, 1080)


def test_tiny_source_gets_one_rendition_at_its_own_even_size() -> None:
    variants = plan_ladder(DEFAULT_LADDER, source(201, 113))
    assert sizes(variants) == [("112p", 200, 112)]
    # A quarter of the lowest rung's bitrate at least.
    assert variants[0].video_bitrate == 100_000


def test_never_wider_than_the_source_even_when_rounding_would_say_so() -> None:
    # 360 * 643 / 360 = 643 -> nearest even is 644, one pixel above the source.
    assert sizes(plan_ladder([Rung(360, 800)], source(643, 360))) == [("360p", 642, 360)]


@pytest.mark.parametrize(
    ("width", "height"),
    [(640, 360), (360, 640), (1279, 719), (1920, 1080), (1080, 1920), (3840, 2160), (97, 55)],
)
def test_every_rendition_is_even_and_within_the_source(width: int, height: int) -> None:
    for variant in plan_ladder(DEFAULT_LADDER, source(width, height)):
        assert variant.width % 2 == 0 and variant.height % 2 == 0
        assert variant.width <= max(width, 2) and variant.height <= max(height, 2)
        assert abs(variant.width / variant.height - width / height) < 0.02


def test_bitrates_peak_and_buffer() -> None:
    top = plan_ladder(DEFAULT_LADDER, source(1280, 720))[-1]
    assert (top.video_bitrate, top.maxrate, top.bufsize) == (2_800_000, 2_996_000, 4_200_000)


def test_rungs_are_sorted_and_deduplicated() -> None:
    rungs = [Rung(360, 800), Rung(144, 200), Rung(360, 900)]
    assert [(v.name, v.video_bitrate) for v in plan_ladder(rungs, source(640, 360))] == [
        ("144p", 200_000),
        ("360p", 900_000),
    ]


def test_an_empty_ladder_is_an_error() -> None:
    with pytest.raises(ValueError, match="no rungs"):
        plan_ladder([], source(640, 360))
