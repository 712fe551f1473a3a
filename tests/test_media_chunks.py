"""Chunked transcoding's pure parts: where a source is cut, what each chunk picks, the
chunk's command, its segments moved onto the whole timeline, and the joined playlists."""

from __future__ import annotations

import dataclasses
import itertools
import struct
from fractions import Fraction
from pathlib import Path

import pytest
from test_media_ladder import source

from clipsync.media.chunk_commands import chunk_command
from clipsync.media.chunks import (
    ChunkOutputs,
    ChunksDisagree,
    ChunkSpan,
    RenditionPart,
    SegmentRecord,
    chunk_length,
    fragment_times,
    init_fingerprint,
    joined_bitrates,
    joined_playlist,
    plan_chunks,
    plan_picks,
    shift_fragment,
    start_ticks,
    track_timescale,
    weighted_progress,
)
from clipsync.media.commands import candidate_frames, sprite_layout
from clipsync.media.encoders import cpu_profile
from clipsync.media.ladder import Rung, plan_ladder

NTSC = Fraction(30000, 1001)


# --- planning -------------------------------------------------------------------------


def spans(*bounds: int | None) -> list[ChunkSpan]:
    return [ChunkSpan(i, s, e) for i, (s, e) in enumerate(itertools.pairwise(bounds))]


def test_no_chunks_when_off_or_not_longer_than_a_chunk() -> None:
    assert plan_chunks(600, 4, 0) == []
    assert plan_chunks(120, 4, 120) == []
    assert plan_chunks(0, 4, 120) == []


def test_chunks_start_on_whole_segments_and_the_last_runs_to_the_end() -> None:
    assert plan_chunks(11, 2, 4) == spans(0, 4, 8, None)
    # 5 s chunks of 2 s segments are 4 s: a join always falls on a segment boundary.
    assert chunk_length(2, 5) == 4
    assert plan_chunks(11, 2, 5) == spans(0, 4, 8, None)
    # A chunk is never shorter than a segment.
    assert chunk_length(4, 3) == 4
    assert plan_chunks(3600, 4, 120)[-1] == ChunkSpan(29, 3480, None)
    assert len(plan_chunks(3600, 4, 120)) == 30


def test_a_short_tail_joins_the_chunk_before() -> None:
    # 0.5 s after the last 4 s boundary: less than a quarter chunk, not a run of its own.
    assert plan_chunks(8.5, 2, 4) == spans(0, 4, None)
    assert plan_chunks(9.0, 2, 4) == spans(0, 4, 8, None)
    # Which can leave one chunk: then the video is made in one run.
    assert plan_chunks(4.5, 2, 4) == []


def test_chunk_frames_are_those_at_or_after_its_start_on_the_whole_timeline() -> None:
    span = ChunkSpan(1, 4, 8)
    assert (span.first_frame(Fraction(30)), span.end_frame(Fraction(30))) == (120, 240)
    # 4 s is frame 119.88 at 29.97 fps: the first frame at or after it is 120 (4.004 s),
    # where the one-process run forces its key frame.
    assert (span.first_frame(NTSC), span.end_frame(NTSC)) == (120, 240)
    assert ChunkSpan(2, 8, None).end_frame(NTSC) is None
    assert span.first_segment(2) == 2
    assert span.length(11) == 4 and ChunkSpan(2, 8, None).length(11) == 3


def test_every_pick_goes_to_exactly_one_chunk() -> None:
    rate = Fraction(30)
    layout = sprite_layout(600, 5, 10, 160, 16 / 9)
    chunked = plan_chunks(600, 4, 120)
    picks = plan_picks(chunked, 600, rate, layout, 6)
    assert [p.first for p in picks] == [s.first_frame(rate) for s in chunked]
    posters = [p.poster for p in picks if p.poster is not None]
    assert posters == [150]  # 5 s in: chunk 0's
    assert picks[0].poster == 150
    candidates = {n: f for p in picks for n, f in p.candidates.items()}
    assert candidates == dict(enumerate(candidate_frames(600, 6, rate), start=1))
    tiles = sorted(i for p in picks for i in p.thumbnails)
    assert tiles == list(range(layout.count))
    # 100 tiles at most: one every 6 s. Tile 20 is at 120 s: the first frame of
    # chunk 1, not the last of chunk 0.
    assert layout.interval == 6
    assert picks[1].thumbnails[20] == 3600 and 20 not in picks[0].thumbnails
    for pick, span in zip(picks, chunked, strict=True):
        assert all(span.covers(f, rate) for f in pick.thumbnails.values())


def test_progress_weighs_chunks_by_their_length() -> None:
    assert weighted_progress([(120, 100), (120, 0), (60, 0)]) == 40
    assert weighted_progress([(120, 100), (120, 100), (60, 100)]) == 100
    assert weighted_progress([]) == 0


# --- the chunk's command -----------------------------------------------------------------


INFO = dataclasses.replace(source(1280, 720), duration=11.0, audio_stream=1)


def command_for(span: ChunkSpan, info=INFO) -> list[str]:
    layout = sprite_layout(info.duration, 5, 10, 160, info.width / info.height)
    rate = Fraction(30)
    (picks,) = plan_picks([span], info.duration, rate, layout, 6)
    variants = plan_ladder([Rung(240, 400), Rung(360, 800)], info)
    return chunk_command(
        "ffmpeg", Path("/in/source.mp4"), info, variants, Path("/out"), cpu_profile(),
        span=span, picks=picks, layout=layout, segment_seconds=2,
    )  # fmt: skip


def after(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_a_middle_chunk_reads_its_range_with_the_whole_files_timestamps() -> None:
    command = command_for(ChunkSpan(1, 4, 8))
    assert command[command.index("-copyts") + 1] == "-start_at_zero"
    assert (after(command, "-ss"), after(command, "-to")) == ("3", "9")
    assert command.count("-i") == 1  # video only: chunk 0 makes the audio
    graph = after(command, "-filter_complex")
    assert graph.startswith("[0:0]fps=30,trim=start_pts=120:end_pts=240,format=yuv420p,split=4")
    assert after(command, "-force_key_frames:v:0") == "expr:gte(t,4+n_forced*2)"
    assert after(command, "-start_number") == "2"
    assert after(command, "-var_stream_map") == "v:0,name:240p v:1,name:360p"
    assert "-c:a" not in command


def test_chunk_zero_also_encodes_the_whole_files_audio_from_a_second_input() -> None:
    command = command_for(ChunkSpan(0, 0, 4))
    assert "-ss" not in command and after(command, "-to") == "5"
    inputs = [i for i, arg in enumerate(command) if arg == "-i"]
    assert len(inputs) == 2
    # The second input is the whole file: no -ss or -to between the two.
    assert "-to" not in command[inputs[0] + 1 : inputs[1]]
    assert "1:1" in command and after(command, "-c:a") == "aac"
    assert after(command, "-var_stream_map").endswith("a:0,agroup:aud,name:audio")


def test_the_last_chunk_runs_to_the_end_and_picks_frames_by_their_number() -> None:
    command = command_for(ChunkSpan(2, 8, None))
    assert "-to" not in command
    graph = after(command, "-filter_complex")
    assert "trim=start_pts=240," in graph
    # Candidates 5 and 6 of 11 s at 30 fps are frames 240 (the chunk's first: picked
    # once) and 289.
    assert "[vst]select=eq(n\\,0)+eq(pts\\,289)," in graph
    stills = command.index("/out/stills/%d.jpg")
    assert command[stills - 2 : stills] == ["-frame_pts", "1"]
    assert after(command, "-enc_time_base") == "1:30"


# --- fMP4: segments moved onto the whole timeline ---------------------------------------


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full(kind: bytes, version: int, payload: bytes) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + payload)


def segment(tfdt: int, sidx: int, sequence: int, version: int = 1) -> bytes:
    width = ">Q" if version == 1 else ">I"
    sidx_box = full(
        b"sidx",
        version,
        struct.pack(">II", 1, 15360) + struct.pack(width, sidx) * 2 + b"\0" * 16,
    )
    traf = box(
        b"traf",
        full(b"tfhd", 0, struct.pack(">I", 1))
        + full(b"tfdt", version, struct.pack(width, tfdt))
        + full(b"trun", 0, struct.pack(">I", 0)),
    )
    moof = box(b"moof", full(b"mfhd", 0, struct.pack(">I", sequence)) + traf)
    return box(b"styp", b"msdh\0\0\0\0") + sidx_box + moof + box(b"mdat", b"frames")


def read_sidx_and_sequence(data: bytes) -> tuple[int, int]:
    sidx_at = data.index(b"sidx") + 4
    sidx = struct.unpack(">Q", data[sidx_at + 12 : sidx_at + 20])[0]
    mfhd_at = data.index(b"mfhd") + 4
    return sidx, struct.unpack(">I", data[mfhd_at + 4 : mfhd_at + 8])[0]


def test_shift_fragment_moves_decode_times_and_numbers_the_fragment_on() -> None:
    original = segment(tfdt=30720, sidx=30720, sequence=2)
    shifted = shift_fragment(original, 61440, 2)
    assert len(shifted) == len(original)
    assert fragment_times(shifted) == [92160]
    assert read_sidx_and_sequence(shifted) == (92160, 4)
    assert shifted.endswith(b"frames")


def test_shift_fragment_refuses_a_time_that_no_longer_fits() -> None:
    small = segment(tfdt=2**32 - 10, sidx=0, sequence=1, version=0)
    with pytest.raises(ValueError, match="tfdt"):
        shift_fragment(small, 100, 0)


def init(elst_start: int, width: int = 640, timescale: int = 15360) -> bytes:
    mdhd = full(b"mdhd", 0, struct.pack(">IIII", 0, 0, timescale, 0) + b"\x55\xc4\0\0")
    elst = full(b"elst", 0, struct.pack(">IIiI", 1, elst_start, -1, 65536))
    tkhd = full(b"tkhd", 0, b"\0" * 76 + struct.pack(">II", width << 16, 360 << 16))
    trak = box(b"trak", tkhd + box(b"edts", elst) + box(b"mdia", mdhd))
    return box(b"ftyp", b"iso6\0\0\0\0") + box(b"moov", trak)


def test_init_segments_that_differ_only_in_their_edit_list_are_alike() -> None:
    assert init_fingerprint(init(66)) == init_fingerprint(init(4000))
    assert init_fingerprint(init(66)) != init_fingerprint(init(66, width=642))
    assert track_timescale(init(66, timescale=90000)) == 90000


def test_a_chunk_starts_at_its_first_frames_time_in_whole_ticks() -> None:
    assert start_ticks(ChunkSpan(1, 4, 8), Fraction(30), 15360) == 61440
    # 29.97 fps: frame 120 is at 4.004 s, 1001 ticks a frame at 30000.
    assert start_ticks(ChunkSpan(1, 4, 8), NTSC, 30000) == 120 * 1001
    with pytest.raises(ValueError):
        start_ticks(ChunkSpan(1, 4, 8), NTSC, 15360)


# --- joining ---------------------------------------------------------------------------


def part(*segments: tuple[str, float, int], init: str = "same", target: int = 2) -> RenditionPart:
    return RenditionPart(target, [SegmentRecord(*s) for s in segments], init)


def test_joined_playlist_lists_every_chunks_segments_under_one_init() -> None:
    parts = [
        part(("seg_00000.m4s", 2.0, 1000), ("seg_00001.m4s", 2.0, 3000)),
        part(("seg_00002.m4s", 2.0, 2000), ("seg_00003.m4s", 0.966667, 500), target=1),
    ]
    assert joined_playlist(parts) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-TARGETDURATION:2\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-MAP:URI="init.mp4"\n'
        "#EXTINF:2.000000,\nseg_00000.m4s\n"
        "#EXTINF:2.000000,\nseg_00001.m4s\n"
        "#EXTINF:2.000000,\nseg_00002.m4s\n"
        "#EXTINF:0.966667,\nseg_00003.m4s\n"
        "#EXT-X-ENDLIST\n"
    )
    assert joined_bitrates(parts) == (12000, 7465)  # 6500 bytes in 6.966667 s


def test_parts_encoded_differently_are_not_joined() -> None:
    with pytest.raises(ChunksDisagree):
        joined_playlist([part(("a.m4s", 2.0, 1)), part(("b.m4s", 2.0, 1), init="other")])
    with pytest.raises(ValueError):
        joined_playlist([])


def test_chunk_outputs_survive_their_database_row() -> None:
    outputs = ChunkOutputs(
        renditions={"240p": part(("seg_00000.m4s", 2.0, 10))},
        frame_rate=29.97,
        encoder="libx264",
        audio_playlist="#EXTM3U\n",
        audio=part(("seg_00000.m4s", 2.005333, 20)),
        poster=True,
        candidates=[1, 2],
        thumbnails=[0],
    )
    assert ChunkOutputs.from_json(outputs.to_json()) == outputs
