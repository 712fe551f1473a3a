"""Chunked transcoding, the pure parts: where a source is cut, what each chunk picks,
how a chunk's fMP4 segments are put on the whole video's timeline, and the joined
playlists.

A long source is cut into chunks at multiples of the HLS segment length, so every
join falls on a segment boundary, which is a key frame of every rendition. Each chunk
is one ffmpeg run (`chunk_commands.chunk_command`) that decodes its time range (with
timestamps kept as in the whole file) and encodes every video rendition of it; chunk 0
also encodes the whole file's audio, so the audio is one continuous encode with no
priming or padding at the joins (AAC's 1024 samples of encoder delay would otherwise
make a gap or an overlap at every join). The joined stream is the one a single ffmpeg
run would have made, frame for frame and timestamp for timestamp:

- frames: after `fps` every frame's pts is its frame number on the whole video's
  timeline, so a chunk keeps frames `[ceil(start * rate), ceil(end * rate))`, exactly
  those whose time is at or after its start, which is where the one-process run forces
  a key frame and starts a segment;
- init segments: the same encoder settings give byte-identical `init.mp4` files but
  for the edit list, where the muxer writes the chunk's start. Chunk 0's init is the
  one-process run's own; the others are checked to be the same (`init_fingerprint`)
  and dropped, so every rendition has one `EXT-X-MAP` and no discontinuity;
- timestamps: the mp4 muxer starts each chunk's decode times at 0 (the start lives in
  the edit list it writes), so `shift_fragment` adds the chunk's start to each
  segment's `tfdt` and `sidx` and numbers its `mfhd` on, as the one run would have.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from clipsync.media.commands import SpriteLayout, candidate_frames, poster_time
from clipsync.media.playlists import _boxes

# A last chunk shorter than this share of a chunk is joined onto the one before: a
# separate run for a few seconds costs more (its start, its seek) than it saves.
SHORT_TAIL = Fraction(1, 4)


@dataclass(frozen=True)
class ChunkSpan:
    """Chunk `index` covers `[start, end)` seconds of the source; `end` None: to its end.

    `start` is a whole number of segments, so its first frame starts a segment.
    """

    index: int
    start: int
    end: int | None

    def first_frame(self, rate: Fraction) -> int:
        """The first frame (after `fps=rate`) at or after `start`."""
        return math.ceil(self.start * rate)

    def end_frame(self, rate: Fraction) -> int | None:
        """The first frame of the next chunk, or None for the last chunk."""
        return None if self.end is None else math.ceil(self.end * rate)

    def first_segment(self, segment_seconds: int) -> int:
        """The number of this chunk's first segment in the whole rendition."""
        return self.start // segment_seconds

    def covers(self, frame: int, rate: Fraction) -> bool:
        end = self.end_frame(rate)
        return self.first_frame(rate) <= frame and (end is None or frame < end)

    def length(self, duration: float) -> float:
        """Seconds of the source this chunk covers."""
        return max(0.0, (duration if self.end is None else self.end) - self.start)


def chunk_length(segment_seconds: int, chunk_seconds: int) -> int:
    """`chunk_seconds` rounded down to whole segments (at least one)."""
    if segment_seconds <= 0:
        raise ValueError("segment_seconds must be positive")
    return max(segment_seconds, chunk_seconds // segment_seconds * segment_seconds)


def plan_chunks(duration: float, segment_seconds: int, chunk_seconds: int) -> list[ChunkSpan]:
    """The chunks of a source of `duration` seconds; [] when it is made in one run.

    One run when `chunk_seconds` is 0 or the source is not longer than it. Otherwise
    chunks of `chunk_length` seconds from 0; a last chunk shorter than `SHORT_TAIL` of
    that joins the one before, and when that leaves one chunk, it is one run.
    """
    if chunk_seconds <= 0 or duration <= chunk_seconds:
        return []
    length = chunk_length(segment_seconds, chunk_seconds)
    starts = list(range(0, math.ceil(duration), length))
    starts = [s for s in starts if s < duration]
    if len(starts) > 1 and duration - starts[-1] < length * SHORT_TAIL:
        starts.pop()
    if len(starts) < 2:
        return []
    ends: list[int | None] = [*starts[1:], None]
    pairs = zip(starts, ends, strict=True)
    return [ChunkSpan(i, start, end) for i, (start, end) in enumerate(pairs)]


# --- what each chunk picks for the poster, the candidates and the sprite ------------------


@dataclass(frozen=True)
class Picks:
    """Frames (numbers on the whole video's timeline) one chunk saves as JPEGs.

    `stills` are poster-sized: the poster and the thumbnail candidates; `thumbnails`
    are the sprite's tiles. Every chunk also saves its first frame as a still
    (`first`): ffmpeg needs a frame from each image output early (see
    `commands._IMAGE_TIMING`), and chunk 0's is the poster when the video stream ends
    before the poster's time.
    """

    first: int
    poster: int | None = None
    # Candidate number (from 1) -> frame.
    candidates: dict[int, int] = field(default_factory=dict)
    # Sprite tile index (from 0) -> frame.
    thumbnails: dict[int, int] = field(default_factory=dict)

    @property
    def still_frames(self) -> list[int]:
        wanted = {self.first, *self.candidates.values()}
        if self.poster is not None:
            wanted.add(self.poster)
        return sorted(wanted)

    @property
    def thumbnail_frames(self) -> list[int]:
        return sorted(set(self.thumbnails.values()))


def thumbnail_frame(layout: SpriteLayout, index: int, rate: Fraction) -> int:
    """The frame of sprite tile `index`: the first at or after `index * interval`."""
    interval = Fraction(layout.interval).limit_denominator(1000)
    return math.ceil(index * interval * rate)


def plan_picks(
    spans: list[ChunkSpan],
    duration: float,
    rate: Fraction,
    layout: SpriteLayout,
    candidate_count: int,
) -> list[Picks]:
    """What each chunk of `spans` saves: each frame goes to the chunk that covers it."""
    poster = math.ceil(Fraction(f"{poster_time(duration):.3f}") * rate)
    candidates = dict(enumerate(candidate_frames(duration, candidate_count, rate), start=1))
    tiles = {i: thumbnail_frame(layout, i, rate) for i in range(layout.count)}
    plans = []
    for span in spans:
        plans.append(
            Picks(
                first=span.first_frame(rate),
                poster=poster if span.covers(poster, rate) else None,
                candidates={n: f for n, f in candidates.items() if span.covers(f, rate)},
                thumbnails={i: f for i, f in tiles.items() if span.covers(f, rate)},
            )
        )
    return plans


# --- fMP4 boxes ----------------------------------------------------------------------


def _find(
    data: bytes, path: list[bytes], start: int = 0, end: int | None = None
) -> list[tuple[int, int]]:
    """(payload start, end) of every box at `path` (e.g. moov/trak/mdia/mdhd)."""
    found = []
    for kind, payload, box_end in _boxes(data, start, end):
        if kind != path[0]:
            continue
        if len(path) == 1:
            found.append((payload, box_end))
        else:
            found += _find(data, path[1:], payload, box_end)
    return found


def track_timescale(init: bytes) -> int:
    """The time scale (ticks per second) of the one track of an fMP4 init segment."""
    ((mdhd, _),) = _find(init, [b"moov", b"trak", b"mdia", b"mdhd"])
    # version/flags, then creation and modification times: 4 bytes each (v0), 8 (v1).
    at = mdhd + (20 if init[mdhd] == 1 else 12)
    return int.from_bytes(init[at : at + 4], "big")


def init_fingerprint(init: bytes) -> str:
    """A digest of an init segment with its edit lists blanked out.

    Each chunk's muxer writes the chunk's start in the edit list (`elst`) and nothing
    else differs when the encoder and its settings are the same; two chunks whose
    fingerprints differ were not encoded alike and cannot share one `EXT-X-MAP`.
    """
    data = bytearray(init)
    for payload, end in _find(init, [b"moov", b"trak", b"edts", b"elst"]):
        data[payload:end] = bytes(end - payload)
    return hashlib.sha256(bytes(data)).hexdigest()


def shift_fragment(segment: bytes, ticks: int, sequence_offset: int) -> bytes:
    """`segment` (an fMP4 media segment) moved `ticks` later and numbered on.

    Adds `ticks` (in the track's time scale) to every `tfdt` base decode time and
    `sidx` earliest presentation time, and `sequence_offset` to every `mfhd` sequence
    number. Only fixed-size fields change, so every offset in the file stays right.
    """
    data = bytearray(segment)

    def add(at: int, width: int, amount: int, what: str) -> None:
        value = int.from_bytes(data[at : at + width], "big") + amount
        if not 0 <= value < 1 << (8 * width):
            raise ValueError(f"{what} does not fit in {width * 8} bits once shifted")
        data[at : at + width] = value.to_bytes(width, "big")

    for kind, payload, box_end in _boxes(segment):
        if kind == b"sidx":
            # version/flags, reference_ID, timescale, then the earliest presentation time.
            add(payload + 12, 8 if segment[payload] == 1 else 4, ticks, "sidx time")
        elif kind == b"moof":
            for inner, inner_payload, inner_end in _boxes(segment, payload, box_end):
                if inner == b"mfhd":
                    add(inner_payload + 4, 4, sequence_offset, "mfhd sequence number")
                elif inner == b"traf":
                    for tfdt, _ in _find(segment, [b"tfdt"], inner_payload, inner_end):
                        width = 8 if segment[tfdt] == 1 else 4
                        add(tfdt + 4, width, ticks, "tfdt decode time")
    return bytes(data)


def fragment_times(segment: bytes) -> list[int]:
    """The `tfdt` base decode time of each track fragment in `segment` (for tests)."""
    times = []
    for kind, payload, box_end in _boxes(segment):
        if kind == b"moof":
            for tfdt, _ in _find(segment, [b"traf", b"tfdt"], payload, box_end):
                width = 8 if segment[tfdt] == 1 else 4
                times.append(int.from_bytes(segment[tfdt + 4 : tfdt + 4 + width], "big"))
    return times


def start_ticks(span: ChunkSpan, rate: Fraction, timescale: int) -> int:
    """Where chunk `span` starts, in ticks of `timescale`: its first frame's time."""
    ticks = Fraction(span.first_frame(rate)) / rate * timescale
    if ticks.denominator != 1:
        raise ValueError(f"frame times at {rate} fps are not whole ticks of 1/{timescale} s")
    return int(ticks)


# --- what a chunk made, and the joined playlists -----------------------------------------


@dataclass(frozen=True)
class SegmentRecord:
    uri: str
    duration: float
    size: int


@dataclass(frozen=True)
class RenditionPart:
    """One rendition's segments as one chunk made them."""

    target_duration: int
    segments: list[SegmentRecord]
    init: str  # `init_fingerprint` of the chunk's init segment
    # Read from chunk 0's init (the one kept): the codec string and the coded size.
    codecs: str = ""
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class ChunkOutputs:
    """What a chunk stored, as kept in its database row between the chunk and the join."""

    renditions: dict[str, RenditionPart]
    # The frame rate every rendition was made at, and the video encoder.
    frame_rate: float = 0.0
    encoder: str = ""
    # Chunk 0 only: the audio rendition's playlist, as ffmpeg wrote it, and its segments.
    audio_playlist: str | None = None
    audio: RenditionPart | None = None
    poster: bool = False
    candidates: list[int] = field(default_factory=list)
    thumbnails: list[int] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ChunkOutputs:
        raw = json.loads(text)
        audio = raw.get("audio")
        return cls(
            renditions={name: _part(part) for name, part in raw["renditions"].items()},
            frame_rate=raw.get("frame_rate", 0.0),
            encoder=raw.get("encoder", ""),
            audio_playlist=raw.get("audio_playlist"),
            audio=_part(audio) if audio else None,
            poster=raw.get("poster", False),
            candidates=list(raw.get("candidates", [])),
            thumbnails=list(raw.get("thumbnails", [])),
        )


def _part(raw: dict[str, Any]) -> RenditionPart:
    return RenditionPart(
        target_duration=raw["target_duration"],
        segments=[SegmentRecord(**segment) for segment in raw["segments"]],
        init=raw["init"],
        codecs=raw.get("codecs", ""),
        width=raw.get("width", 0),
        height=raw.get("height", 0),
    )


class ChunksDisagree(ValueError):
    """The chunks of one rendition were not encoded alike and cannot be joined."""


def joined_playlist(parts: list[RenditionPart], init_uri: str = "init.mp4") -> str:
    """One VOD media playlist of every part's segments in order, one `EXT-X-MAP`.

    Written as ffmpeg writes its own (six decimals, independent segments). Refuses
    parts whose init segments differ (`ChunksDisagree`): they would need an
    `EXT-X-MAP` and a discontinuity each.
    """
    if not parts:
        raise ValueError("no parts to join")
    if len({part.init for part in parts}) > 1:
        raise ChunksDisagree("the chunks' init segments differ: they were encoded differently")
    target = max(part.target_duration for part in parts)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{init_uri}"',
    ]
    for part in parts:
        for segment in part.segments:
            lines += [f"#EXTINF:{segment.duration:.6f},", segment.uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def joined_bitrates(parts: list[RenditionPart]) -> tuple[int, int]:
    """Peak segment and average bitrate (bit/s) of the joined rendition, as
    `playlists.measure_rendition` measures one made in one run."""
    peak = 0.0
    total_bytes = 0
    total_seconds = 0.0
    for part in parts:
        for segment in part.segments:
            total_bytes += segment.size
            total_seconds += segment.duration
            if segment.duration > 0:
                peak = max(peak, segment.size * 8 / segment.duration)
    average = total_bytes * 8 / total_seconds if total_seconds > 0 else 0.0
    return math.ceil(peak), math.ceil(average)


def weighted_progress(parts: list[tuple[float, int]]) -> int:
    """The whole transcode's percentage from each chunk's (seconds, percent)."""
    total = sum(seconds for seconds, _ in parts)
    if total <= 0:
        return 0
    return int(sum(seconds * min(100, max(0, p)) for seconds, p in parts) / total)
