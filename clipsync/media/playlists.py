"""HLS playlists and the seek-preview VTT: parse what ffmpeg wrote, write our own master.

ffmpeg's master playlist lists the audio rendition as a video variant and states
bandwidths from the target bitrates; ours states what the files really hold: peak
and average bitrates measured from the segments, RESOLUTION and CODECS read from each
rendition's `init.mp4`, and the audio as an `EXT-X-MEDIA` rendition only. For
playback from object storage, a media playlist's URIs are rewritten to presigned
URLs (`sign_media_playlist`); for the app's own signed URLs, a query is added to
each (`with_signed_uris`, see clipsync/delivery.py).
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from clipsync.media.commands import SpriteLayout

AUDIO_GROUP = "aud"
AUDIO_CODEC = "mp4a.40.2"  # AAC-LC, what `hls_command` encodes


@dataclass(frozen=True)
class Segment:
    uri: str
    duration: float


@dataclass(frozen=True)
class MediaPlaylist:
    target_duration: int
    segments: list[Segment]
    init_uri: str | None
    ended: bool

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)


_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def parse_attributes(text: str) -> dict[str, str]:
    """`KEY=VALUE,KEY="quoted, value"` as a dict, quotes removed."""
    return {key: value.strip('"') for key, value in _ATTRIBUTE.findall(text)}


def parse_media_playlist(text: str) -> MediaPlaylist:
    """Read a media playlist: target duration, segments (URI, duration), init URI."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not an HLS playlist (no #EXTM3U)")
    if "#EXT-X-STREAM-INF" in text:
        raise ValueError("this is a master playlist, not a media playlist")
    target = 0
    init_uri = None
    ended = False
    segments: list[Segment] = []
    pending: float | None = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MAP:"):
            init_uri = parse_attributes(line.split(":", 1)[1]).get("URI")
        elif line.startswith("#EXTINF:"):
            pending = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif line.startswith("#"):
            continue
        else:
            if pending is None:
                raise ValueError(f"segment {line!r} has no #EXTINF before it")
            segments.append(Segment(line, pending))
            pending = None
    return MediaPlaylist(target, segments, init_uri, ended)


# --- presigned playback -----------------------------------------------------------

_QUOTED_URI = re.compile(r'(URI=")([^"]*)(")')


def is_master_playlist(text: str) -> bool:
    return "#EXT-X-STREAM-INF" in text


def resolve_uri(playlist_path: str, uri: str) -> str | None:
    """The path in the HLS tree that `uri`, read in the playlist at `playlist_path`, names.

    Both are relative to the tree (`720p/index.m3u8`, `seg_001.m4s` → `720p/seg_001.m4s`).
    None for an absolute URL or path, or one that leaves the tree: those are not ours
    to sign.
    """
    if not uri or "://" in uri or uri.startswith("/") or "?" in uri or "#" in uri:
        return None
    path = posixpath.normpath(posixpath.join(posixpath.dirname(playlist_path), uri))
    if path.startswith("../") or path in (".", ".."):
        return None
    return path


def sign_media_playlist(text: str, sign: Callable[[str], str]) -> str:
    """`text` with every segment URI and the `EXT-X-MAP` init URI replaced by `sign(uri)`.

    Used for private playback from object storage: the app serves each media playlist
    with its URIs rewritten to presigned URLs, so the player fetches the bytes straight
    from the store. `sign` gets each URI as written and returns what to write instead
    (it may return the URI unchanged). Everything else (tags, durations, blank lines)
    is kept as it is. A master playlist is refused: its URIs name media playlists,
    which must go on through the app so each one is authorised and signed afresh.
    """
    if is_master_playlist(text):
        raise ValueError("a master playlist's URIs are not signed")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "#EXTM3U":
        raise ValueError("not an HLS playlist (no #EXTM3U)")
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#EXT-X-MAP:"):
            line = _QUOTED_URI.sub(lambda m: m.group(1) + sign(m.group(2)) + m.group(3), line)
        elif stripped and not stripped.startswith("#"):
            line = sign(stripped)
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def with_signed_uris(
    text: str, playlist_path: str, query: Callable[[str, float], str | None]
) -> str:
    """`text` (a master or media playlist) with a query string added to each URI it names.

    For the signed URLs of `clipsync/delivery.py`: every URI line (a segment, a
    variant's playlist) and every `URI="…"` attribute (`EXT-X-MAP`, `EXT-X-MEDIA`,
    `EXT-X-I-FRAME-STREAM-INF`) that names a file of the tree gets `?` plus
    `query(path, start)`, where `path` is the file's path in the tree (`resolve_uri`,
    the playlist being at `playlist_path`) and `start` the playlist time in seconds at
    which it is needed: the sum of the `#EXTINF` durations before it (0 for a master
    playlist's URIs and the first init segment). URIs outside the tree, absolute ones
    and those with a query already, or where `query` returns None, are kept as they
    are; so is everything else, so the URIs stay relative and the playlist works
    under any prefix.
    """
    lines = text.splitlines()
    if not lines or lines[0].strip() != "#EXTM3U":
        raise ValueError("not an HLS playlist (no #EXTM3U)")
    position = 0.0
    pending = 0.0

    def signed(uri: str) -> str:
        path = resolve_uri(playlist_path, uri)
        extra = query(path, position) if path is not None else None
        return f"{uri}?{extra}" if extra else uri

    out = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#EXTINF:"):
            pending = float(stripped.split(":", 1)[1].split(",", 1)[0] or 0)
        elif stripped.startswith("#") and 'URI="' in stripped:
            line = _QUOTED_URI.sub(lambda m: m.group(1) + signed(m.group(2)) + m.group(3), line)
        elif stripped and not stripped.startswith("#"):
            line = signed(stripped)
            position += pending
            pending = 0.0
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


# --- reading init.mp4 ---------------------------------------------------------------

# Boxes that only hold other boxes, on the way from the file to the sample description.
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
# A VisualSampleEntry's fixed fields before its child boxes (ISO 14496-12, 12.1.3).
_VISUAL_ENTRY_HEADER = 78


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in `data[start:end]`."""
    end = len(data) if end is None else end
    position = start
    while position + 8 <= end:
        size = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        header = 8
        if size == 1:
            size = int.from_bytes(data[position + 8 : position + 16], "big")
            header = 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            raise ValueError(f"box {kind!r} at {position} is damaged")
        yield kind, position + header, position + size
        position += size


@dataclass(frozen=True)
class VideoTrack:
    codecs: str
    width: int
    height: int


def avc_codec_string(avcc: bytes) -> str:
    """RFC 6381 codec string from the payload of an `avcC` box: `avc1.PPCCLL`.

    The payload starts with configurationVersion (1), then profile, constraint flags
    and level, one byte each: `01 64 00 1f …` is High profile, level 3.1: `avc1.64001f`.
    """
    if len(avcc) < 4 or avcc[0] != 1:
        raise ValueError("not an AVCDecoderConfigurationRecord")
    return "avc1." + avcc[1:4].hex()


def read_video_track(init: bytes) -> VideoTrack:
    """Codec string and coded size of the first H.264 track of an fMP4 init segment."""

    def search(start: int, end: int) -> VideoTrack | None:
        for kind, payload, box_end in _boxes(init, start, end):
            if kind in _CONTAINERS:
                found = search(payload, box_end)
                if found:
                    return found
            elif kind == b"stsd":
                # version/flags (4) and entry count (4), then the sample entries.
                for entry, entry_start, entry_end in _boxes(init, payload + 8, box_end):
                    if entry not in (b"avc1", b"avc3"):
                        continue
                    width = int.from_bytes(init[entry_start + 24 : entry_start + 26], "big")
                    height = int.from_bytes(init[entry_start + 26 : entry_start + 28], "big")
                    children = entry_start + _VISUAL_ENTRY_HEADER
                    for child, child_start, child_end in _boxes(init, children, entry_end):
                        if child == b"avcC":
                            codec = avc_codec_string(init[child_start:child_end])
                            return VideoTrack(codec, width, height)
        return None

    track = search(0, len(init))
    if track is None:
        raise ValueError("no H.264 track in this init segment")
    return track


# --- measuring renditions -------------------------------------------------------------


@dataclass(frozen=True)
class RenditionOutput:
    """One video rendition as written; bandwidths (bit/s) are of the video alone."""

    name: str
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    codecs: str
    frame_rate: float
    playlist: str


@dataclass(frozen=True)
class AudioOutput:
    name: str
    bandwidth: int
    average_bandwidth: int
    codecs: str
    playlist: str


def _bitrates(folder: Path, playlist: MediaPlaylist) -> tuple[int, int]:
    """Peak segment and average bitrate of the segments (the init is fetched once)."""
    peak = 0.0
    total_bytes = 0
    for segment in playlist.segments:
        size = (folder / segment.uri).stat().st_size
        total_bytes += size
        if segment.duration > 0:
            peak = max(peak, size * 8 / segment.duration)
    duration = playlist.duration
    average = total_bytes * 8 / duration if duration > 0 else 0.0
    return math.ceil(peak), math.ceil(average)


def _read_playlist(folder: Path) -> MediaPlaylist:
    playlist = parse_media_playlist((folder / "index.m3u8").read_text())
    if not playlist.segments:
        raise ValueError(f"{folder / 'index.m3u8'} lists no segments")
    return playlist


def measure_rendition(folder: Path, *, frame_rate: float = 0.0) -> RenditionOutput:
    """Measure a video rendition folder (`index.m3u8`, its init and segments).

    The frame rate is not in the init segment; the caller passes the one it encoded.
    """
    playlist = _read_playlist(folder)
    if playlist.init_uri is None:
        raise ValueError(f"{folder / 'index.m3u8'} has no #EXT-X-MAP init segment")
    track = read_video_track((folder / playlist.init_uri).read_bytes())
    peak, average = _bitrates(folder, playlist)
    return RenditionOutput(
        name=folder.name,
        width=track.width,
        height=track.height,
        bandwidth=peak,
        average_bandwidth=average,
        codecs=track.codecs,
        frame_rate=frame_rate,
        playlist=f"{folder.name}/index.m3u8",
    )


def measure_audio(folder: Path) -> AudioOutput:
    """Measure the audio rendition folder."""
    playlist = _read_playlist(folder)
    peak, average = _bitrates(folder, playlist)
    return AudioOutput(folder.name, peak, average, AUDIO_CODEC, f"{folder.name}/index.m3u8")


def master_playlist(renditions: list[RenditionOutput], audio: AudioOutput | None) -> str:
    """Our master playlist: audio as its own rendition, video variants by bandwidth.

    A variant's BANDWIDTH and AVERAGE-BANDWIDTH add the audio rendition's to the
    video's, since a player fetches both.
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="{audio.name}",'
            f'DEFAULT=YES,AUTOSELECT=YES,URI="{audio.playlist}"'
        )
    for rendition in sorted(renditions, key=lambda r: (r.bandwidth, r.height)):
        bandwidth = rendition.bandwidth + (audio.bandwidth if audio else 0)
        average = rendition.average_bandwidth + (audio.average_bandwidth if audio else 0)
        codecs = rendition.codecs + (f",{audio.codecs}" if audio else "")
        attributes = [
            f"BANDWIDTH={bandwidth}",
            f"AVERAGE-BANDWIDTH={average}",
            f"RESOLUTION={rendition.width}x{rendition.height}",
            f'CODECS="{codecs}"',
        ]
        if rendition.frame_rate > 0:
            attributes.append(f"FRAME-RATE={rendition.frame_rate:.3f}")
        if audio is not None:
            attributes.append(f'AUDIO="{AUDIO_GROUP}"')
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attributes))
        lines.append(rendition.playlist)
    return "\n".join(lines) + "\n"


# --- subtitles ------------------------------------------------------------------------

SUBTITLE_GROUP = "subs"


@dataclass(frozen=True)
class SubtitleTrack:
    """A caption track as the master playlist lists it."""

    language: str  # a checked BCP 47 tag
    name: str  # what a player's menu shows; no double quote (a quoted-string)
    uri: str  # its subtitle media playlist, relative to the master playlist


def subtitle_playlist(vtt_uri: str, duration: float) -> str:
    """A subtitle media playlist: one WebVTT segment covering the whole video.

    HLS wants subtitles as segments of a media playlist; one segment holding every
    cue is valid and all a VOD needs (players load it once).
    """
    seconds = max(duration, 0.001)
    return (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        f"#EXT-X-TARGETDURATION:{math.ceil(seconds)}\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:{seconds:.3f},\n"
        f"{vtt_uri}\n"
        "#EXT-X-ENDLIST\n"
    )


def master_with_subtitles(master: str, tracks: list[SubtitleTrack]) -> str:
    """`master` (as the transcode stored it) listing `tracks` as a SUBTITLES group.

    Captions are added after the transcode, so the stored master playlist knows none:
    the app merges them in each time it serves it. Any SUBTITLES group already in the
    text is replaced. Each track becomes an `EXT-X-MEDIA` line before the first
    variant (DEFAULT=NO: captions are the viewer's choice), and every variant names
    the group. Without tracks, the playlist comes back without a SUBTITLES group.
    """
    lines = master.splitlines()
    if not lines or lines[0].strip() != "#EXTM3U" or not is_master_playlist(master):
        raise ValueError("not a master playlist")
    media = [
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLE_GROUP}",'
        f'NAME="{track.name.replace(chr(34), chr(39))}",LANGUAGE="{track.language}",'
        f'DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="{track.uri}"'
        for track in tracks
    ]
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#EXT-X-MEDIA:") and "TYPE=SUBTITLES" in stripped:
            continue
        if stripped.startswith("#EXT-X-STREAM-INF:"):
            out += media
            media = []
            attributes = re.sub(r',SUBTITLES="[^"]*"', "", stripped)
            if tracks:
                attributes += f',SUBTITLES="{SUBTITLE_GROUP}"'
            line = attributes
        out.append(line)
    return "\n".join(out) + "\n"


# --- seek preview -------------------------------------------------------------------


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def thumbnails_vtt(layout: SpriteLayout, sprite_url: str) -> str:
    """WebVTT whose cues point into the sprite: `sprite.jpg#xywh=x,y,w,h`."""
    blocks = ["WEBVTT"]
    for index in range(layout.count):
        start, end, x, y = layout.cue(index)
        blocks.append(
            f"{_timestamp(start)} --> {_timestamp(end)}\n"
            f"{sprite_url}#xywh={x},{y},{layout.tile_width},{layout.tile_height}"
        )
    return "\n\n".join(blocks) + "\n"
