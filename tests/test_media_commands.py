"""The ffmpeg command lines, pinned exactly: a change to them has to be deliberate."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import pytest
from test_media_ladder import source

from clipsync.media.commands import (
    Previews,
    even_size,
    gop_frames,
    hls_command,
    output_frame_rate,
    poster_time,
    sprite_layout,
)
from clipsync.media.encoders import cpu_profile
from clipsync.media.ladder import Rung, plan_ladder
from clipsync.media.probe import SourceInfo

INFO = dataclasses.replace(source(1280, 720), audio_stream=1)


def previews(info: SourceInfo, out: Path = Path("/out"), interval: float = 5) -> Previews:
    layout = sprite_layout(info.duration, interval, 10, 160, info.width / info.height)
    return Previews(out / "poster.jpg", out / "sprite.jpg", layout)


def images(poster: str, sprite: str) -> list[str]:
    """The two JPEG outputs that follow the HLS output."""
    return [
        "-map", "[poster]", "-fps_mode", "passthrough", "-enc_time_base", "1:1000",
        "-q:v", "3", "-map_metadata", "-1", "-f", "image2", "-update", "1", poster,
        "-map", "[sprite]", "-fps_mode", "passthrough", "-enc_time_base", "1:1000",
        "-q:v", "5", "-map_metadata", "-1", "-f", "image2", "-update", "1", sprite,
    ]  # fmt: skip


def graph_of(command: list[str]) -> str:
    return command[command.index("-filter_complex") + 1]


def branch(command: list[str], label: str) -> str:
    """The filters of the graph's chain that starts at `[label]`."""
    (chain,) = [c for c in graph_of(command).split(";") if c.startswith(f"[{label}]")]
    return chain


def poster_branch(frame: int, size: str = "1280:720") -> str:
    return (
        f"[vp]select=eq(n\\,0)+gte(pts\\,{frame})*lt(start_pts\\,{frame})*eq(selected_n\\,1),"
        f"scale={size}:flags=bicubic,setsar=1,settb=1/1000,setpts=N[poster]"
    )


def test_hls_command_golden() -> None:
    variants = plan_ladder([Rung(240, 400), Rung(360, 800)], INFO)
    command = hls_command(
        "ffmpeg", Path("/src/in.mp4"), INFO, variants, Path("/out"), cpu_profile("veryfast"),
        previews=previews(INFO),
    )  # fmt: skip
    # The source (10 s, 30 fps) is decoded once: two renditions, then the poster (the
    # first frame at or after 1 s: frame 30) and the sprite (a thumbnail every 5 s). Each
    # image output gets a first frame at once (the first frame; the first thumbnail on a
    # sheet) that the final image replaces, so ffmpeg reports progress from the start.
    assert command == [
        "ffmpeg", "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
        "-progress", "pipe:1",
        "-protocol_whitelist", "file", "-format_whitelist", "mov,matroska,avi",
        "-i", "file:/src/in.mp4",
        "-filter_complex",
        "[0:0]fps=30,format=yuv420p,split=4[s0][s1][vp][vs];"
        "[s0]scale=426:240:flags=bicubic,setsar=1[v0];"
        "[s1]scale=640:360:flags=bicubic,setsar=1[v1];"
        "[vp]select=eq(n\\,0)+gte(pts\\,30)*lt(start_pts\\,30)*eq(selected_n\\,1),"
        "scale=1280:720:flags=bicubic,setsar=1,settb=1/1000,setpts=N[poster];"
        "[vs]setpts=PTS-STARTPTS,fps=1/5:round=up,trim=end_frame=2,"
        "scale=160:90:flags=bicubic,setsar=1,split[vs_first][vs_all];"
        "[vs_first]trim=end_frame=1,pad=320:90[vs_placeholder];"
        "[vs_all]tile=2x1[vs_sheet];"
        "[vs_placeholder][vs_sheet]concat=n=2:v=1:a=0,settb=1/1000,setpts=N[sprite]",
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
        "-map", "[poster]", "-fps_mode", "passthrough", "-enc_time_base", "1:1000",
        "-q:v", "3", "-map_metadata", "-1", "-f", "image2", "-update", "1", "/out/poster.jpg",
        "-map", "[sprite]", "-fps_mode", "passthrough", "-enc_time_base", "1:1000",
        "-q:v", "5", "-map_metadata", "-1", "-f", "image2", "-update", "1", "/out/sprite.jpg",
    ]  # fmt: skip


def test_hls_command_without_audio_maps_video_only() -> None:
    silent = dataclasses.replace(INFO, audio_codec=None, audio_stream=None)
    variants = plan_ladder([Rung(240, 400), Rung(360, 800)], silent)
    command = hls_command(
        "ffmpeg", Path("/s.mp4"), silent, variants, Path("/o"), cpu_profile(),
        previews=previews(silent, Path("/o")),
    )  # fmt: skip
    assert "-c:a" not in command and "0:1" not in command
    assert command[command.index("-var_stream_map") + 1] == "v:0,name:240p v:1,name:360p"
    expected = images("/o/poster.jpg", "/o/sprite.jpg")
    assert command[-len(expected) :] == expected


def test_hls_command_key_frames_follow_the_segment_length() -> None:
    ntsc = dataclasses.replace(INFO, frame_rate=30000 / 1001)
    variants = plan_ladder([Rung(240, 400)], ntsc)
    command = hls_command(
        "ffmpeg", Path("/s.mp4"), ntsc, variants, Path("/o"), cpu_profile(),
        previews=previews(ntsc), segment_seconds=2,
    )  # fmt: skip
    assert graph_of(command).startswith("[0:0]fps=30000/1001,")
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


@pytest.mark.parametrize(
    ("rate", "duration", "frame"),
    [
        # 1 s in: frame 30 exactly (a frame's pts counts frames after fps, no rounding).
        (30.0, 10.0, 30),
        # 1 s in at 29.97 fps: frame 30 is at 1.001 s, the first one at or after 1 s.
        (30000 / 1001, 10.0, 30),
        # 0.93 s in at 25 fps: frame 23.25, so frame 24.
        (25.0, 9.3, 24),
        # A clip of 0.3 s: its first frame (0.03 s at 30 fps is frame 0.9, so frame 1).
        (30.0, 0.3, 1),
        (30.0, 3600.0, 150),
    ],
)
def test_the_poster_is_the_first_frame_at_or_after_the_poster_time(
    rate: float, duration: float, frame: int
) -> None:
    info = dataclasses.replace(INFO, frame_rate=rate, duration=duration)
    variants = plan_ladder([Rung(240, 400)], info)
    command = hls_command(
        "ffmpeg", Path("/s.mp4"), info, variants, Path("/o"), cpu_profile(),
        previews=previews(info),
    )  # fmt: skip
    assert branch(command, "vp") == poster_branch(frame)


def test_the_poster_is_at_most_poster_width_wide_with_even_sides() -> None:
    info = dataclasses.replace(source(1279, 719), audio_stream=1)
    variants = plan_ladder([Rung(240, 400)], info)
    layout = sprite_layout(info.duration, 5, 10, 160, info.width / info.height)
    narrow = Previews(Path("/o/p.jpg"), Path("/o/s.jpg"), layout, poster_width=641)
    command = hls_command(
        "ffmpeg", Path("/s.mp4"), info, variants, Path("/o"), cpu_profile(), previews=narrow
    )
    assert branch(command, "vp") == poster_branch(30, "640:360")
    expected = images("/o/p.jpg", "/o/s.jpg")
    assert command[-len(expected) :] == expected


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


def test_sprite_branch_follows_the_layout_from_the_first_frame() -> None:
    info = dataclasses.replace(INFO, duration=3600.0)
    variants = plan_ladder([Rung(240, 400)], info)
    command = hls_command(
        "ffmpeg", Path("/s.mp4"), info, variants, Path("/o"), cpu_profile(),
        previews=previews(info, Path("/o"), interval=5),
    )  # fmt: skip
    # 100 thumbnails at most: one every 36 s, 10x10. The shift to 0 comes first, so a
    # stream that starts late (WebM's 0.007 s, say) still gets its thumbnail at 0.
    assert branch(command, "vs") == (
        "[vs]setpts=PTS-STARTPTS,fps=1/36:round=up,trim=end_frame=100,"
        "scale=160:90:flags=bicubic,setsar=1,split[vs_first][vs_all]"
    )
    assert branch(command, "vs_first") == "[vs_first]trim=end_frame=1,pad=1600:900[vs_placeholder]"
    assert branch(command, "vs_all") == "[vs_all]tile=10x10[vs_sheet]"


def test_a_clip_shorter_than_the_interval_gets_one_thumbnail() -> None:
    info = dataclasses.replace(source(360, 640), duration=2.0)
    variants = plan_ladder([Rung(240, 400)], info)
    command = hls_command(
        "ffmpeg", Path("/s.mp4"), info, variants, Path("/o"), cpu_profile(),
        previews=previews(info, Path("/o"), interval=5),
    )  # fmt: skip
    assert "fps=1/5:round=up,trim=end_frame=1,scale=160:284:" in branch(command, "vs")
    assert branch(command, "vs_all") == "[vs_all]tile=1x1[vs_sheet]"
