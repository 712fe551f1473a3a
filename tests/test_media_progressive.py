"""The pure parts of watching while it transcodes (clipsync/media/progressive.py): which
segments ffmpeg has finished, the EVENT playlist and the early master we store, and the
ffmpeg command that rewrites its playlists as it goes."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_media_playlists import box

from clipsync.media.ladder import Variant
from clipsync.media.playlists import Segment, parse_media_playlist
from clipsync.media.progressive import (
    Encoding,
    as_vod,
    early_master,
    event_playlist,
    finished_segments,
    growing_playlists,
)

# What ffmpeg 5.1 has written two segments into a run (`-hls_playlist_type event`).
GROWING = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:EVENT
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init_0.mp4"
#EXTINF:4.000000,
seg_00000.m4s
#EXTINF:4.000000,
seg_00001.m4s
"""


def test_the_segments_ffmpeg_listed_are_the_finished_ones() -> None:
    init, segments = finished_segments(GROWING)
    assert init == "init_0.mp4"
    assert [s.uri for s in segments] == ["seg_00000.m4s", "seg_00001.m4s"]


@pytest.mark.parametrize(
    "text", [None, "", "#EXTM3U\n#EXT-X-VERSION:7\n", "garbage", "#EXTM3U\n#EXTINF:4,\n"]
)
def test_no_playlist_yet_or_no_init_means_nothing_finished(text: str | None) -> None:
    assert finished_segments(text) == (None, [])


def test_the_event_playlist_names_the_final_init_and_has_no_end() -> None:
    text = event_playlist([Segment("seg_00000.m4s", 4.0), Segment("seg_00001.m4s", 3.5)], 4)
    assert text == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MAP:URI="init.mp4"\n'
        "#EXTINF:4.000000,\nseg_00000.m4s\n#EXTINF:3.500000,\nseg_00001.m4s\n"
    )
    playlist = parse_media_playlist(text)
    assert not playlist.ended and playlist.init_uri == "init.mp4"


def test_the_event_target_duration_covers_a_longer_segment() -> None:
    text = event_playlist([Segment("seg_00000.m4s", 4.2)], 4)
    assert "#EXT-X-TARGETDURATION:5\n" in text


def test_a_finished_event_playlist_reads_as_the_vod_one() -> None:
    done = GROWING + "#EXT-X-ENDLIST\n"
    assert as_vod(done) == done.replace("PLAYLIST-TYPE:EVENT", "PLAYLIST-TYPE:VOD")
    assert as_vod(as_vod(done)) == as_vod(done)


def test_the_growing_command_differs_only_in_playlist_type_and_temp_files() -> None:
    command = [
        "ffmpeg",
        "-f",
        "hls",
        "-hls_playlist_type",
        "vod",
        "-hls_flags",
        "independent_segments",
        "out",
    ]
    assert growing_playlists(command) == [
        "ffmpeg", "-f", "hls", "-hls_playlist_type", "event",
        "-hls_flags", "independent_segments+temp_file", "out",
    ]  # fmt: skip
    assert command[4] == "vod", "the command given is left as it was"
    with pytest.raises(ValueError):
        growing_playlists(["ffmpeg", "-i", "x", "out.mp4"])


def _init(width: int, height: int, profile: int) -> bytes:
    avcc = box(b"avcC", bytes([1, profile, 0x00, 0x1E, 0xFF]))
    entry = bytes(24) + width.to_bytes(2, "big") + height.to_bytes(2, "big") + bytes(50) + avcc
    stsd = box(b"stsd", bytes(4) + (1).to_bytes(4, "big") + box(b"avc1", entry))
    mdia = box(b"mdia", box(b"mdhd", bytes(24)) + box(b"minf", box(b"stbl", stsd)))
    return box(b"ftyp", b"iso5") + box(b"moov", box(b"mvhd", bytes(100)) + box(b"trak", mdia))


def test_the_early_master_lists_every_rendition_with_the_ladders_bitrates() -> None:
    variants = [
        Variant("360p", 640, 360, 800_000, 856_000, 1_200_000),
        Variant("240p", 426, 240, 400_000, 428_000, 600_000),
    ]
    encoding = Encoding(Path("/x"), variants, True, 25.0, 4, 128_000)
    assert encoding.folders == ["360p", "240p", "audio"]
    master = early_master(encoding, {"360p": _init(640, 360, 0x64), "240p": _init(426, 240, 0x4D)})
    lines = master.splitlines()
    assert lines[3] == (
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,'
        'URI="audio/index.m3u8"'
    )
    assert lines[4:] == [
        "#EXT-X-STREAM-INF:BANDWIDTH=556000,AVERAGE-BANDWIDTH=528000,RESOLUTION=426x240,"
        'CODECS="avc1.4d001e,mp4a.40.2",FRAME-RATE=25.000,AUDIO="aud"',
        "240p/index.m3u8",
        "#EXT-X-STREAM-INF:BANDWIDTH=984000,AVERAGE-BANDWIDTH=928000,RESOLUTION=640x360,"
        'CODECS="avc1.64001e,mp4a.40.2",FRAME-RATE=25.000,AUDIO="aud"',
        "360p/index.m3u8",
    ]
