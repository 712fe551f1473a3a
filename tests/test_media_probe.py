"""Probing sources: what ffprobe's JSON means, and which files are refused and why."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from clips import GOOD, Clips, clips_fixture  # noqa: F401  (`clips` fixture)

from clipsync.media.errors import TooLong, UnsupportedMedia
from clipsync.media.probe import ACCEPTED_FORMATS, parse_probe, probe, sha256_file

# Captured from ffprobe 5.1 (`-show_format -show_streams`) on the test clips, trimmed to
# the fields parse_probe reads.
ROTATED = {
    "streams": [
        {
            "index": 0, "codec_name": "h264", "codec_type": "video", "width": 640,
            "height": 360, "sample_aspect_ratio": "1:1", "pix_fmt": "yuv420p",
            "r_frame_rate": "30/1", "avg_frame_rate": "30/1", "duration": "2.000000",
            "bit_rate": "7960", "nb_frames": "60",
            "disposition": {"default": 1, "attached_pic": 0},
            "side_data_list": [{"side_data_type": "Display Matrix", "rotation": 90}],
        },
        {
            "index": 1, "codec_name": "aac", "codec_type": "audio", "r_frame_rate": "0/0",
            "avg_frame_rate": "0/0", "duration": "2.000000", "bit_rate": "94799",
            "nb_frames": "88", "disposition": {"default": 1, "attached_pic": 0},
        },
    ],
    "format": {
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2", "format_long_name": "QuickTime / MOV",
        "duration": "2.000000", "size": "29091", "bit_rate": "116364",
    },
}  # fmt: skip
COVER_MP3 = {
    "streams": [
        {
            "index": 0, "codec_name": "mp3", "codec_type": "audio", "r_frame_rate": "0/0",
            "avg_frame_rate": "0/0", "duration": "2.037551", "bit_rate": "128000",
            "disposition": {"default": 0, "attached_pic": 0},
        },
        {
            "index": 1, "codec_name": "png", "codec_type": "video", "width": 320,
            "height": 180, "sample_aspect_ratio": "1:1", "pix_fmt": "rgb24",
            "r_frame_rate": "90000/1", "avg_frame_rate": "0/0", "duration": "2.037556",
            "disposition": {"default": 0, "attached_pic": 1},
        },
    ],
    "format": {
        "format_name": "mp3", "format_long_name": "MP2/3 (MPEG audio layer 2/3)",
        "duration": "2.037551", "size": "40100", "bit_rate": "157443",
    },
}  # fmt: skip
PNG = {
    "streams": [
        {
            "index": 0, "codec_name": "png", "codec_type": "video", "width": 320,
            "height": 180, "sample_aspect_ratio": "1:1", "pix_fmt": "rgb24",
            "r_frame_rate": "25/1", "avg_frame_rate": "25/1",
            "disposition": {"default": 0, "attached_pic": 0},
        }
    ],
    "format": {"format_name": "png_pipe", "format_long_name": "piped png sequence", "size": "7015"},
}  # fmt: skip
WEBM = {
    "streams": [
        {
            "index": 0, "codec_name": "vp9", "codec_type": "video", "width": 640,
            "height": 360, "sample_aspect_ratio": "1:1", "pix_fmt": "yuv420p",
            "r_frame_rate": "24/1", "avg_frame_rate": "24/1",
            "disposition": {"default": 0, "attached_pic": 0},
        },
        {
            "index": 1, "codec_name": "opus", "codec_type": "audio", "r_frame_rate": "0/0",
            "avg_frame_rate": "0/0", "disposition": {"default": 0, "attached_pic": 0},
        },
    ],
    "format": {
        "format_name": "matroska,webm", "format_long_name": "Matroska / WebM",
        "duration": "2.008000", "size": "135175", "bit_rate": "538545",
    },
}  # fmt: skip


def edited(data: dict[str, Any], **video: Any) -> dict[str, Any]:
    """A copy of `data` with fields of its first video stream replaced (None deletes)."""
    data = copy.deepcopy(data)
    stream = next(s for s in data["streams"] if s["codec_type"] == "video")
    for key, value in video.items():
        if value is None:
            stream.pop(key, None)
        else:
            stream[key] = value
    return data


# --- parse_probe -----------------------------------------------------------------------


def test_rotation_swaps_the_display_size() -> None:
    info = parse_probe(ROTATED, 29091)
    assert (info.width, info.height, info.rotation) == (360, 640, 90)
    assert info.format_name == "mov,mp4,m4a,3gp,3g2,mj2"
    assert info.duration == 2.0
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.frame_rate, info.variable_frame_rate) == (30.0, False)
    assert (info.bitrate, info.size, info.has_audio) == (116364, 29091, True)
    assert (info.video_stream, info.audio_stream) == (0, 1)


@pytest.mark.parametrize(
    ("side_data", "tags", "rotation", "size"),
    [
        ([{"rotation": -90}], None, 270, (360, 640)),
        ([{"rotation": 180}], None, 180, (640, 360)),
        ([{"rotation": 270.0}], None, 270, (360, 640)),
        (None, {"rotate": "90"}, 90, (360, 640)),
        (None, None, 0, (640, 360)),
    ],
)
def test_rotation_is_read_from_display_matrix_or_old_tag(
    side_data: Any, tags: Any, rotation: int, size: tuple[int, int]
) -> None:
    info = parse_probe(edited(ROTATED, side_data_list=side_data, tags=tags), 1)
    assert info.rotation == rotation
    assert (info.width, info.height) == size


def test_non_square_pixels_give_the_display_width() -> None:
    anamorphic = edited(ROTATED, width=720, height=576, sample_aspect_ratio="64:45")
    info = parse_probe(edited(anamorphic, side_data_list=None), 1)
    assert (info.width, info.height) == (1024, 576)


def test_variable_frame_rate_is_flagged_and_average_rate_kept() -> None:
    info = parse_probe(edited(ROTATED, r_frame_rate="30/1", avg_frame_rate="375/22"), 1)
    assert info.variable_frame_rate is True
    assert info.frame_rate == pytest.approx(17.045, abs=0.001)


def test_ntsc_rate_is_constant() -> None:
    info = parse_probe(edited(ROTATED, r_frame_rate="30000/1001", avg_frame_rate="30000/1001"), 1)
    assert info.variable_frame_rate is False
    assert info.frame_rate == pytest.approx(29.97, abs=0.01)


def test_matroska_without_stream_duration_uses_the_format_duration() -> None:
    info = parse_probe(WEBM, 135175)
    assert info.duration == pytest.approx(2.008)
    assert (info.video_codec, info.audio_codec) == ("vp9", "opus")


def test_cover_art_is_not_video_so_an_mp3_is_refused_as_audio_only() -> None:
    with pytest.raises(UnsupportedMedia, match="no video, only sound"):
        parse_probe(COVER_MP3, 40100)


def test_cover_art_is_skipped_when_choosing_the_video_stream() -> None:
    data = copy.deepcopy(ROTATED)
    cover = copy.deepcopy(COVER_MP3["streams"][1]) | {"index": 2}
    data["streams"].insert(0, cover)
    assert parse_probe(data, 1).video_stream == 0


def test_png_is_refused_as_a_still_image() -> None:
    with pytest.raises(UnsupportedMedia, match="still image") as caught:
        parse_probe(PNG, 7015)
    assert caught.value.message.startswith("This file is not a video we can read: ")


def test_single_frame_video_is_refused_as_a_picture() -> None:
    data = edited(ROTATED, nb_frames="1")
    with pytest.raises(UnsupportedMedia, match="single picture"):
        parse_probe(data, 1)


def test_jpeg_in_a_container_without_duration_is_a_still_image() -> None:
    data = edited(WEBM, codec_name="mjpeg")
    data["format"].pop("duration")
    with pytest.raises(UnsupportedMedia, match="still image"):
        parse_probe(data, 1)


def test_unknown_duration_is_refused() -> None:
    data = copy.deepcopy(WEBM)
    data["format"]["duration"] = "N/A"
    with pytest.raises(UnsupportedMedia, match="cannot tell how long"):
        parse_probe(data, 1)


def test_no_streams_at_all_is_refused() -> None:
    with pytest.raises(UnsupportedMedia, match="no video"):
        parse_probe({"streams": [], "format": {"format_name": "mpegts"}}, 1)


def test_other_containers_are_refused_with_the_accepted_list() -> None:
    data = copy.deepcopy(ROTATED)
    data["format"]["format_name"] = "mpegts"
    data["format"]["format_long_name"] = "MPEG-TS (MPEG-2 Transport Stream)"
    with pytest.raises(UnsupportedMedia) as caught:
        parse_probe(data, 1)
    assert "MPEG-TS" in caught.value.message
    for label in ACCEPTED_FORMATS.values():
        assert label in caught.value.message


def test_accepted_formats_are_ffprobes_names() -> None:
    assert set(ACCEPTED_FORMATS) == {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"}


def test_too_long_names_both_lengths() -> None:
    data = copy.deepcopy(ROTATED)
    data["format"]["duration"] = "3725.4"
    with pytest.raises(TooLong) as caught:
        parse_probe(data, 1, max_duration=3600)
    assert "1:02:05" in caught.value.message and "1:00:00" in caught.value.message
    assert parse_probe(data, 1, max_duration=4000).duration == 3725.4


# --- probe on real files ---------------------------------------------------------------

MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
EXPECTED = {
    # kind: (width, height, rotation, video codec, has audio, format, duration)
    "landscape": (640, 360, 0, "h264", True, MP4, 4.0),
    "portrait": (360, 640, 0, "h264", True, MP4, 2.0),
    "odd": (1279, 719, 0, "h264", True, MP4, 2.0),
    "rotated": (360, 640, 90, "h264", True, MP4, 2.0),
    "vfr": (320, 180, 0, "h264", False, MP4, 2.93),
    "hevc10": (640, 360, 0, "hevc", False, MP4, 2.0),
    "no_audio": (640, 360, 0, "h264", False, MP4, 2.0),
    "mov": (640, 360, 0, "h264", True, MP4, 2.0),
    "webm": (640, 360, 0, "vp9", True, "matroska,webm", 2.0),
    "mkv": (640, 360, 0, "h264", True, "matroska,webm", 2.0),
    "avi": (640, 360, 0, "mpeg4", True, "avi", 2.0),
}


@pytest.mark.parametrize("kind", [*GOOD, "mov"])
async def test_probe_reads_every_good_clip(clips: Clips, kind: str) -> None:
    path = clips(kind)
    info = await probe(path)
    width, height, rotation, codec, has_audio, format_name, duration = EXPECTED[kind]
    assert (info.width, info.height, info.rotation) == (width, height, rotation)
    assert (info.video_codec, info.has_audio, info.format_name) == (codec, has_audio, format_name)
    assert info.duration == pytest.approx(duration, abs=0.06)
    assert info.size == path.stat().st_size
    assert info.frame_rate > 0


async def test_probe_marks_the_variable_frame_rate_clip(clips: Clips) -> None:
    info = await probe(clips("vfr"))
    assert info.variable_frame_rate is True
    assert 10 < info.frame_rate < 30


async def test_probe_sees_ten_bit_hevc(clips: Clips) -> None:
    info = await probe(clips("hevc10"))
    assert info.pix_fmt == "yuv420p10le"


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("image", "still image"),
        ("text", "text file"),
        ("empty", "empty"),
        ("truncated", "incomplete"),
        ("truncated_faststart", "incomplete"),
        ("audio_only", "no video, only sound"),
        ("audio_mp3", "no video, only sound"),
    ],
)
async def test_probe_refuses_bad_inputs_with_a_message_people_can_act_on(
    clips: Clips, kind: str, words: str
) -> None:
    with pytest.raises(UnsupportedMedia) as caught:
        await probe(clips(kind))
    message = caught.value.message
    assert message.startswith("This file is not a video we can read: ")
    assert words in message
    # Nothing technical leaks to the uploader; the details are kept for the logs.
    assert "moov" not in message and "ffprobe" not in message


async def test_probe_refuses_a_missing_ffprobe_clearly(clips: Clips) -> None:
    with pytest.raises(UnsupportedMedia, match="video tools are missing"):
        await probe(clips("no_audio"), ffprobe="/nonexistent/ffprobe")


async def test_sha256_file_matches_hashlib(clips: Clips) -> None:
    path = clips("landscape")
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert await sha256_file(path, chunk_size=4096) == expected
