"""Playlists: reading ffmpeg's media playlists, writing our master and the thumbnails VTT."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from clipsync.media.commands import sprite_layout
from clipsync.media.playlists import (
    AudioOutput,
    RenditionOutput,
    avc_codec_string,
    master_playlist,
    measure_audio,
    parse_attributes,
    parse_media_playlist,
    read_video_track,
    thumbnails_vtt,
)

# As ffmpeg 5.1 writes it (after the pipeline renamed init_0.mp4).
MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.000000,
seg_00000.m4s
#EXTINF:4.000000,
seg_00001.m4s
#EXTINF:1.533333,
seg_00002.m4s
#EXT-X-ENDLIST
"""


def test_parse_media_playlist() -> None:
    playlist = parse_media_playlist(MEDIA)
    assert playlist.target_duration == 4
    assert playlist.init_uri == "init.mp4"
    assert playlist.ended is True
    assert [(s.uri, s.duration) for s in playlist.segments] == [
        ("seg_00000.m4s", 4.0),
        ("seg_00001.m4s", 4.0),
        ("seg_00002.m4s", 1.533333),
    ]
    assert playlist.duration == pytest.approx(9.533333)


def test_parse_media_playlist_refuses_other_text() -> None:
    with pytest.raises(ValueError, match="EXTM3U"):
        parse_media_playlist("hello")
    with pytest.raises(ValueError, match="master playlist"):
        parse_media_playlist("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n240p/index.m3u8\n")


def test_parse_attributes_keeps_commas_inside_quotes() -> None:
    assert parse_attributes('BANDWIDTH=10,CODECS="avc1.64001f,mp4a.40.2",AUDIO="aud"') == {
        "BANDWIDTH": "10",
        "CODECS": "avc1.64001f,mp4a.40.2",
        "AUDIO": "aud",
    }


def test_avc_codec_string_from_avcc_bytes() -> None:
    assert avc_codec_string(bytes([1, 0x64, 0x00, 0x1F, 0xFF, 0xE1])) == "avc1.64001f"
    assert avc_codec_string(bytes([1, 0x42, 0xC0, 0x1E])) == "avc1.42c01e"
    with pytest.raises(ValueError):
        avc_codec_string(b"\x00\x64")


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def test_read_video_track_walks_to_the_avcc_box() -> None:
    avcc = box(b"avcC", bytes([1, 0x4D, 0x40, 0x15, 0xFF]))
    entry = bytes(24) + struct.pack(">HH", 426, 240) + bytes(50) + avcc
    stsd = box(b"stsd", bytes(4) + struct.pack(">I", 1) + box(b"avc1", entry))
    mdia = box(b"mdia", box(b"mdhd", bytes(24)) + box(b"minf", box(b"stbl", stsd)))
    init = box(b"ftyp", b"iso5") + box(b"moov", box(b"mvhd", bytes(100)) + box(b"trak", mdia))
    track = read_video_track(init)
    assert (track.codecs, track.width, track.height) == ("avc1.4d4015", 426, 240)


def test_read_video_track_without_h264_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"no H\.264"):
        read_video_track(box(b"ftyp", b"iso5") + box(b"moov", b""))


def rendition(name: str, width: int, height: int, peak: int, average: int) -> RenditionOutput:
    return RenditionOutput(
        name=name, width=width, height=height, bandwidth=peak, average_bandwidth=average,
        codecs="avc1.64001e", frame_rate=30000 / 1001, playlist=f"{name}/index.m3u8",
    )  # fmt: skip


def test_master_playlist_golden_with_audio() -> None:
    audio = AudioOutput("audio", 140_000, 130_000, "mp4a.40.2", "audio/index.m3u8")
    renditions = [
        rendition("360p", 640, 360, 900_000, 800_000),
        rendition("240p", 426, 240, 450_000, 400_000),
    ]
    assert master_playlist(renditions, audio) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,'
        'URI="audio/index.m3u8"\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=590000,AVERAGE-BANDWIDTH=530000,RESOLUTION=426x240,"
        'CODECS="avc1.64001e,mp4a.40.2",FRAME-RATE=29.970,AUDIO="aud"\n'
        "240p/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1040000,AVERAGE-BANDWIDTH=930000,RESOLUTION=640x360,"
        'CODECS="avc1.64001e,mp4a.40.2",FRAME-RATE=29.970,AUDIO="aud"\n'
        "360p/index.m3u8\n"
    )  # fmt: skip


def test_master_playlist_without_audio() -> None:
    text = master_playlist([rendition("240p", 426, 240, 450_000, 400_000)], None)
    assert "EXT-X-MEDIA" not in text and "AUDIO=" not in text and "mp4a" not in text
    assert (
        'BANDWIDTH=450000,AVERAGE-BANDWIDTH=400000,RESOLUTION=426x240,CODECS="avc1.64001e"' in text
    )


def test_measure_uses_peak_segment_and_average_over_all(tmp_path: Path) -> None:
    folder = tmp_path / "audio"
    folder.mkdir()
    (folder / "index.m3u8").write_text(MEDIA)
    (folder / "init.mp4").write_bytes(bytes(700))
    for name, size in (
        ("seg_00000.m4s", 50_000),
        ("seg_00001.m4s", 60_000),
        ("seg_00002.m4s", 10_000),
    ):
        (folder / name).write_bytes(bytes(size))
    audio = measure_audio(folder)
    assert audio.bandwidth == 120_000  # 60 000 bytes in 4 s
    assert audio.average_bandwidth == 100_700  # 120 000 bytes in 9.533 s (init not counted)
    assert audio.playlist == "audio/index.m3u8"


def test_thumbnails_vtt() -> None:
    layout = sprite_layout(12.5, 5.0, 10, 160, 16 / 9)
    assert thumbnails_vtt(layout, "sprite.jpg") == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:05.000\nsprite.jpg#xywh=0,0,160,90\n\n"
        "00:00:05.000 --> 00:00:12.500\nsprite.jpg#xywh=160,0,160,90\n"
    )


def test_thumbnails_vtt_hours() -> None:
    layout = sprite_layout(3725.0, 5.0, 10, 160, 16 / 9)
    last = thumbnails_vtt(layout, "s.jpg").rstrip().split("\n\n")[-1]
    assert last == "01:01:27.750 --> 01:02:05.000\ns.jpg#xywh=1440,810,160,90"  # every 37.25 s
