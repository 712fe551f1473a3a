"""The ffmpeg command lines, pinned exactly: a change to them has to be deliberate."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import pytest
from test_media_ladder import source

from clipsync.media.commands import (
    even_size,
    gop_frames,
    hls_command,
    output_frame_rate,
    poster_command,
    poster_time,
    sprite_command,
    sprite_layout,
)
from clipsync.media.encoders import cpu_profile
from clipsync.media.ladder import Rung, plan_ladder

INFO = dataclasses.replace(source(1280, 720), audio_stream=1)


def test_hls_command_golden() -> None:
    variants = plan_ladder([Rung(240, 400), Rung(360, 800)], INFO)
    command = hls_command(
        "ffmpeg", Path("/src/in.mp4"), INFO, variants, Path("/out"), cpu_profile("veryfast")
    )
    assert command == [
        "ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
        "-progress", "pipe:1",
        "-protocol_whitelist", "file", "-format_whitelist", "mov,matroska,avi",
        "-i", "file:/src/in.mp4",
        "-filter_complex",
        "[0:0]fps=30,format=yuv420p,split=2[s0][s1];"
        "[s0]scale=426:240:flags=bicubic,setsar=1[v0];"
        "[s1]scale=640:360:flags=bicubic,setsar=1[v1]",
        "-map", "[v0]", "-map", "[v1]", "-map", "0:1",
        "-c:v:0", "libx264", "-b:v:0", "400000", "-maxrate:v:0", "428000",
        "-bufsize:v:0", "600000", "-profile:v:0", "high", "-g:v:0", "120",
        "-keyint_min:v:0", "120", "-preset:v:0", "veryfast", "-sc_threshold:v:0", "0",
        "-force_key_frames:v:0", "expr:gte(t,n_forced*4)",
        "-c:v:1", "libx264", "-b:v:1", "800000", "-maxrate:v:1", "856000",
        "-bufsize:v:1", "1200000", "-profile:v:1", "high", "-g:v:1", "120",
        "-keyint_min:v:1", "120", "-preset:v:1", "veryfast", "-sc_threshold:v:1", "0",
        "-force_key_frames:v:1", "expr:gte(t,n_forced*4)",
        "-c:a", "aac", "-b:a", "128000", "-ac", "2", "-ar", "48000",
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
        "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", "/out/%v/seg_%05d.m4s",
        "-var_stream_map",
        "v:0,agroup:aud,name:240p v:1,agroup:aud,name:360p a:0,agroup:aud,name:audio",
        "/out/%v/index.m3u8",
    ]  # fmt: skip


def test_hls_command_without_audio_maps_video_only() -> None:
    silent = dataclasses.replace(INFO, audio_codec=None, audio_stream=None)
    variants = plan_ladder([Rung(240, 400), Rung(360, 800)], silent)
    command = hls_command("ffmpeg", Path("/s.mp4"), silent, variants, Path("/o"), cpu_profile())
    assert "-c:a" not in command and "0:1" not in command
    assert command[command.index("-var_stream_map") + 1] == "v:0,name:240p v:1,name:360p"


def test_hls_command_key_frames_follow_the_segment_length() -> None:
    ntsc = dataclasses.replace(INFO, frame_rate=30000 / 1001)
    variants = plan_ladder([Rung(240, 400)], ntsc)
    command = hls_command(
        "ffmpeg", Path("/s.mp4"), ntsc, variants, Path("/o"), cpu_profile(), segment_seconds=2
    )
    assert "[0:0]fps=30000/1001," in command[command.index("-filter_complex") + 1]
    assert command[command.index("-g:v:0") + 1] == "60"
    assert command[command.index("-force_key_frames:v:0") + 1] == "expr:gte(t,n_forced*2)"
    assert command[command.index("-hls_time") + 1] == "2"


@pytest.mark.parametrize(
    ("rate", "variable", "expected"),
    [
        (30.0, False, Fraction(30)),
        (30000 / 1001, False, Fraction(30000, 1001)),
        (25.0, False, Fraction(25)),
        (17.045, True, Fraction(17)),
        (29.6, True, Fraction(30)),
        (120.0, False, Fraction(60)),
        (0.0, False, Fraction(30)),
        (0.5, True, Fraction(1)),
    ],
)
def test_output_frame_rate(rate: float, variable: bool, expected: Fraction) -> None:
    info = dataclasses.replace(INFO, frame_rate=rate, variable_frame_rate=variable)
    assert output_frame_rate(info) == expected


def test_gop_is_one_segment_of_frames() -> None:
    assert gop_frames(Fraction(30), 4) == 120
    assert gop_frames(Fraction(30000, 1001), 4) == 120
    assert gop_frames(Fraction(1), 1) == 1


def test_poster_command_golden() -> None:
    command = poster_command("ffmpeg", Path("/s.mp4"), INFO, Path("/o/poster.jpg"))
    assert command == [
        "ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
        "-progress", "pipe:1", "-ss", "1.000",
        "-protocol_whitelist", "file", "-format_whitelist", "mov,matroska,avi",
        "-i", "file:/s.mp4", "-map", "0:0", "-frames:v", "1",
        "-vf", "scale=1280:720:flags=bicubic,setsar=1", "-q:v", "3",
        "-map_metadata", "-1", "-f", "image2", "-update", "1", "/o/poster.jpg",
    ]  # fmt: skip


@pytest.mark.parametrize(("duration", "at"), [(0.3, 0.03), (10, 1.0), (49, 4.9), (3600, 5.0)])
def test_poster_is_taken_ten_percent_in_at_most_five_seconds(duration: float, at: float) -> None:
    assert poster_time(duration) == pytest.approx(at)


@pytest.mark.parametrize(
    ("size", "limit", "expected"),
    [
        ((1920, 1080), 1280, (1280, 720)),
        ((1279, 719), 1280, (1278, 718)),
        ((360, 640), 1280, (360, 640)),
        ((1080, 1920), 720, (720, 1280)),
        ((201, 113), 1280, (200, 112)),
    ],
)
def test_even_size(size: tuple[int, int], limit: int, expected: tuple[int, int]) -> None:
    assert even_size(*size, limit) == expected


def test_sprite_layout_of_a_short_video() -> None:
    layout = sprite_layout(23.0, 5.0, 10, 160, 16 / 9)
    assert (layout.count, layout.columns, layout.rows) == (4, 4, 1)
    assert (layout.tile_width, layout.tile_height) == (160, 90)
    assert (layout.width, layout.height) == (640, 90)
    assert layout.cue(0) == (0.0, 5.0, 0, 0)
    # The last thumbnail covers the rest of the video.
    assert layout.cue(3) == (15.0, 23.0, 480, 0)


def test_sprite_layout_keeps_at_most_100_thumbnails() -> None:
    layout = sprite_layout(3600.0, 5.0, 10, 160, 16 / 9)
    assert layout.interval == 36.0
    assert (layout.count, layout.rows) == (100, 10)
    assert layout.cue(99)[:2] == (3564.0, 3600.0)
    assert layout.cue(13)[2:] == (480, 90)


def test_sprite_layout_of_a_clip_shorter_than_the_interval() -> None:
    layout = sprite_layout(2.0, 5.0, 10, 160, 9 / 16)
    assert (layout.count, layout.columns, layout.rows, layout.tile_height) == (1, 1, 1, 284)
    assert layout.cue(0) == (0.0, 2.0, 0, 0)


def test_sprite_command_golden() -> None:
    info = dataclasses.replace(INFO, duration=23.0)
    command = sprite_command(
        "ffmpeg", Path("/s.mp4"), info, Path("/o/sprite.jpg"),
        interval=5, columns=10, tile_width=160,
    )  # fmt: skip
    assert command == [
        "ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
        "-progress", "pipe:1",
        "-protocol_whitelist", "file", "-format_whitelist", "mov,matroska,avi",
        "-i", "file:/s.mp4", "-map", "0:0",
        "-vf", "setpts=PTS-STARTPTS,fps=1/5:round=up,scale=160:90:flags=bicubic,setsar=1,tile=4x1",
        "-frames:v", "1", "-q:v", "5", "-map_metadata", "-1",
        "-f", "image2", "-update", "1", "/o/sprite.jpg",
    ]  # fmt: skip
