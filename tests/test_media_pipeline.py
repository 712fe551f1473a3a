"""End to end: real clips through `transcode()` and real ffmpeg, then the output checked
the way a player and a reviewer would: playlists, sizes, key frames, decoding, images."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clips import FFMPEG, FFPROBE, GOOD, Clips, clips_fixture  # noqa: F401  (`clips` fixture)
from clips import run as run_command

from clipsync.media import pipeline
from clipsync.media.commands import Previews, hls_command, sprite_layout
from clipsync.media.encoders import cpu_profile
from clipsync.media.errors import TranscodeFailed
from clipsync.media.ladder import DEFAULT_LADDER, Rung, plan_ladder
from clipsync.media.pipeline import TranscodeResult, transcode
from clipsync.media.playlists import parse_attributes, parse_media_playlist
from clipsync.media.probe import SourceInfo, probe

# Small rungs keep the run fast; the 640x360 clips get all three.
RUNGS = [Rung(144, 200), Rung(240, 400), Rung(360, 800)]
SEGMENT = 1


@dataclass
class Transcoded:
    source: Path
    info: SourceInfo
    out: Path
    result: TranscodeResult
    progress: list[int]


def run_transcode(source: Path, out: Path, rungs: list[Rung]) -> Transcoded:
    progress: list[int] = []

    async def record(percent: int) -> None:
        progress.append(percent)

    async def main() -> Transcoded:
        info = await probe(source, FFPROBE)
        result = await transcode(
            source, info, out, ffmpeg=FFMPEG, profile=cpu_profile("veryfast"),
            rungs=rungs, segment_seconds=SEGMENT, stall_timeout=60, on_progress=record,
        )  # fmt: skip
        return Transcoded(source, info, out, result, progress)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def transcoded(clips: Clips, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Transcode each kind of clip once for the whole module."""
    done: dict[str, Transcoded] = {}

    def get(kind: str) -> Transcoded:
        if kind not in done:
            out = tmp_path_factory.mktemp(f"hls-{kind}")
            done[kind] = run_transcode(clips(kind), out, RUNGS)
        return done[kind]

    return get


def ffprobe_json(*args: str, data: bytes | None = None) -> dict[str, Any]:
    command = [FFPROBE, "-v", "error", "-print_format", "json", *args]
    done = subprocess.run(command, input=data, capture_output=True, check=True)
    return json.loads(done.stdout)


def master_variants(text: str) -> list[tuple[dict[str, str], str]]:
    lines = text.splitlines()
    return [
        (parse_attributes(line.split(":", 1)[1]), lines[i + 1])
        for i, line in enumerate(lines)
        if line.startswith("#EXT-X-STREAM-INF:")
    ]


@pytest.mark.parametrize("kind", GOOD)
def test_master_playlist_describes_each_rendition(transcoded: Any, kind: str) -> None:
    done = transcoded(kind)
    text = (done.out / "master.m3u8").read_text()
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
    variants = master_variants(text)
    assert variants, "at least one rendition"
    bandwidths = [int(attributes["BANDWIDTH"]) for attributes, _ in variants]
    assert bandwidths == sorted(bandwidths)
    codecs = re.compile(r"avc1\.64[0-9a-f]{4}" + (r",mp4a\.40\.2" if done.info.has_audio else ""))
    for attributes, uri in variants:
        assert int(attributes["AVERAGE-BANDWIDTH"]) <= int(attributes["BANDWIDTH"])
        assert re.fullmatch(r"\d+x\d+", attributes["RESOLUTION"])
        assert codecs.fullmatch(attributes["CODECS"]), attributes["CODECS"]
        assert float(attributes["FRAME-RATE"]) > 0
        assert ("AUDIO" in attributes) == done.info.has_audio
        assert (done.out / uri).is_file()
    # The audio is a rendition of its own, never listed as a variant.
    assert ("#EXT-X-MEDIA:TYPE=AUDIO" in text) == done.info.has_audio
    assert all(not uri.startswith("audio/") for _, uri in variants)


@pytest.mark.parametrize("kind", GOOD)
def test_renditions_are_even_upright_h264_never_above_the_source(
    transcoded: Any, kind: str
) -> None:
    done = transcoded(kind)
    info = done.info
    for attributes, uri in master_variants((done.out / "master.m3u8").read_text()):
        width, height = map(int, attributes["RESOLUTION"].split("x"))
        assert width % 2 == 0 and height % 2 == 0
        assert width <= info.width and height <= info.height
        assert (width > height) == (info.width > info.height)
        stream = ffprobe_json("-show_streams", "-select_streams", "v", str(done.out / uri))
        (video,) = stream["streams"]
        assert (video["width"], video["height"]) == (width, height)
        assert (video["codec_name"], video["profile"], video["pix_fmt"]) == (
            "h264", "High", "yuv420p",
        )  # fmt: skip
        assert not video.get("side_data_list"), "no rotation left for players to apply"


def first_video_packet(init: bytes, segment: bytes) -> tuple[float, str]:
    data = ffprobe_json(
        "-show_packets", "-select_streams", "v", "-read_intervals", "%+#1", "-",
        data=init + segment,
    )  # fmt: skip
    packet = data["packets"][0]
    return round(float(packet["pts_time"]), 3), packet["flags"]


@pytest.mark.parametrize("kind", GOOD)
def test_every_segment_starts_with_a_key_frame_at_the_same_time_on_every_rendition(
    transcoded: Any, kind: str
) -> None:
    done = transcoded(kind)
    timelines = {}
    for rendition in done.result.variants:
        folder = done.out / rendition.name
        playlist = parse_media_playlist((folder / "index.m3u8").read_text())
        assert playlist.init_uri == "init.mp4"
        init = (folder / "init.mp4").read_bytes()
        starts = []
        for segment in playlist.segments:
            start, flags = first_video_packet(init, (folder / segment.uri).read_bytes())
            assert flags.startswith("K"), f"{rendition.name}/{segment.uri} starts with {flags}"
            starts.append(start)
        timelines[rendition.name] = (starts, [round(s.duration, 3) for s in playlist.segments])
        assert playlist.duration == pytest.approx(done.info.duration, abs=0.25)
    first = next(iter(timelines.values()))
    assert len(first[0]) >= 2, "short segments give several switch points"
    assert all(timeline == first for timeline in timelines.values()), timelines


@pytest.mark.parametrize("kind", GOOD)
def test_the_stream_decodes_end_to_end(transcoded: Any, kind: str) -> None:
    done = transcoded(kind)
    command = [FFMPEG, "-v", "error", "-i", str(done.out / "master.m3u8"), "-f", "null", "-"]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert finished.returncode == 0 and not finished.stderr.strip(), finished.stderr


@pytest.mark.parametrize("kind", GOOD)
def test_poster_sprite_and_thumbnails(transcoded: Any, kind: str) -> None:
    done = transcoded(kind)
    layout = done.result.sprite_layout
    for name in ("poster.jpg", "sprite.jpg"):
        assert (done.out / name).read_bytes()[:3] == b"\xff\xd8\xff", f"{name} is a JPEG"
    poster = ffprobe_json("-show_streams", str(done.out / "poster.jpg"))["streams"][0]
    assert poster["width"] == min(done.info.width // 2 * 2, 1280)
    assert (poster["width"] > poster["height"]) == (done.info.width > done.info.height)
    sprite = ffprobe_json("-show_streams", str(done.out / "sprite.jpg"))["streams"][0]
    assert (sprite["width"], sprite["height"]) == (layout.width, layout.height)

    vtt = (done.out / "thumbnails.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n")
    cues = re.findall(
        r"(\d\d):(\d\d):(\d\d\.\d{3}) --> (\d\d):(\d\d):(\d\d\.\d{3})\n"
        r"sprite\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)",
        vtt,
    )
    assert len(cues) == layout.count

    def seconds(h: str, m: str, s: str) -> float:
        return int(h) * 3600 + int(m) * 60 + float(s)

    end = 0.0
    for cue in cues:
        start = seconds(*cue[0:3])
        assert start == pytest.approx(end, abs=0.001), "cues are contiguous"
        end = seconds(*cue[3:6])
        x, y, w, h = map(int, cue[6:])
        assert x + w <= layout.width and y + h <= layout.height
    assert end == pytest.approx(done.info.duration, abs=0.001)


@pytest.mark.parametrize("kind", GOOD)
def test_progress_rises_to_100_and_the_folder_holds_only_the_result(
    transcoded: Any, kind: str
) -> None:
    done = transcoded(kind)
    assert done.progress[0] == 0 and done.progress[-1] == 100
    assert done.progress == sorted(set(done.progress))
    assert any(0 < p < 90 for p in done.progress) or done.info.duration < 3
    written = {p for p in done.out.rglob("*") if p.is_file()}
    assert written == set(done.result.files)
    assert done.result.encoder == "libx264 (cpu)"
    assert (done.result.audio is not None) == done.info.has_audio


def corner_colors(path: Path, *input_args: str) -> list[tuple[int, int, int]]:
    """Top and bottom colour of the first frame, as ffmpeg (honouring rotation) shows it."""
    command = [FFMPEG, "-v", "error", *input_args, "-i", str(path), "-frames:v", "1"]
    command += ["-vf", "scale=1:2:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return [tuple(raw[i : i + 3]) for i in (0, 3)]  # type: ignore[misc]


def close(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return all(abs(x - y) < 40 for x, y in zip(a, b, strict=True))


def test_rotated_source_comes_out_upright(transcoded: Any) -> None:
    done = transcoded("rotated")
    assert (done.info.rotation, done.info.width, done.info.height) == (90, 360, 640)
    top = done.result.variants[-1]
    assert (top.width, top.height) == (360, 640)
    # The source is red on the left and blue on the right as stored; shown with its
    # rotation, the colours are above each other, and the output must look the same.
    expected = corner_colors(done.source)
    assert not close(expected[0], expected[1])
    assert all(
        close(a, b) for a, b in zip(corner_colors(done.out / top.playlist), expected, strict=True)
    )
    assert all(
        close(a, b) for a, b in zip(corner_colors(done.out / "poster.jpg"), expected, strict=True)
    )


def test_portrait_source_stays_portrait(transcoded: Any) -> None:
    done = transcoded("portrait")
    assert [(v.name, v.width, v.height) for v in done.result.variants] == [
        ("144p", 144, 256), ("240p", 240, 426), ("360p", 360, 640),
    ]  # fmt: skip


def test_odd_sized_source_gets_even_renditions(transcoded: Any) -> None:
    done = transcoded("odd")
    assert [(v.name, v.width, v.height) for v in done.result.variants] == [
        ("144p", 256, 144), ("240p", 426, 240), ("360p", 640, 360),
    ]  # fmt: skip


def test_variable_frame_rate_source_comes_out_constant(transcoded: Any) -> None:
    done = transcoded("vfr")
    rendition = done.result.variants[0]
    assert rendition.frame_rate == 17.0
    packets = ffprobe_json(
        "-show_packets", "-select_streams", "v", str(done.out / rendition.playlist)
    )["packets"]
    durations = {round(float(p["duration_time"]), 4) for p in packets}
    assert durations == {round(1 / 17, 4)}


def test_ten_bit_hevc_becomes_eight_bit_h264(transcoded: Any) -> None:
    done = transcoded("hevc10")
    assert done.info.pix_fmt == "yuv420p10le"
    # The stream checks above already require yuv420p High profile H.264; the CODECS
    # string says so to players too.
    assert all(v.codecs.startswith("avc1.64") for v in done.result.variants)


def test_default_ladder_skips_rungs_above_a_720p_source(clips: Clips, tmp_path: Path) -> None:
    done = run_transcode(clips("hd"), tmp_path / "hls", list(DEFAULT_LADDER))
    assert [(v.name, v.width, v.height) for v in done.result.variants] == [
        ("240p", 426, 240), ("360p", 640, 360), ("480p", 854, 480), ("720p", 1280, 720),
    ]  # fmt: skip
    assert not (tmp_path / "hls" / "1080p").exists()
    assert "RESOLUTION=1280x720" in (tmp_path / "hls" / "master.m3u8").read_text()
    assert "1920x1080" not in (tmp_path / "hls" / "master.m3u8").read_text()


def test_a_rerun_replaces_the_previous_output(clips: Clips, tmp_path: Path) -> None:
    out = tmp_path / "hls"
    run_transcode(clips("no_audio"), out, RUNGS)
    (out / "360p" / "seg_00099.m4s").write_bytes(b"left over")
    done = run_transcode(clips("no_audio"), out, RUNGS[:2])
    assert not (out / "360p").exists()
    assert {p for p in out.rglob("*") if p.is_file()} == set(done.result.files)


def counting_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record every command `transcode` runs (and still run it)."""
    commands: list[list[str]] = []
    real = pipeline.run_ffmpeg

    async def recorded(command: list[str], **kwargs: Any) -> None:
        commands.append(command)
        await real(command, **kwargs)

    monkeypatch.setattr(pipeline, "run_ffmpeg", recorded)
    return commands


def gray_means(image: Path, tiles: int) -> list[float]:
    """Mean brightness (0-255) of each of `tiles` equal columns of `image`."""
    data = ffprobe_json("-show_streams", str(image))["streams"][0]
    width, height = data["width"], data["height"]
    command = [FFMPEG, "-v", "error", "-i", str(image), "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    tile = width // tiles
    sums = [0] * tiles
    for y in range(height):
        row = raw[y * width : (y + 1) * width]
        for i in range(tiles):
            sums[i] += sum(row[i * tile : (i + 1) * tile])
    return [total / (tile * height) for total in sums]


@pytest.fixture(scope="module")
def seconds_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s of video whose brightness says the second (16 + 20 per second, as video
    levels), starting 0.5 s after its 10.5 s of sound (so after the file's start)."""
    clip = tmp_path_factory.mktemp("seconds") / "seconds.mkv"
    run_command([
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-itsoffset", "0.5", "-f", "lavfi",
        "-i", "color=black:size=320x180:rate=10:duration=10,format=yuv420p,"
              "geq=lum='16+20*floor(T)':cb=128:cr=128",
        "-f", "lavfi", "-i", "sine=duration=10.5",
        "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(clip),
    ])  # fmt: skip
    return clip


def test_poster_and_sprite_come_from_the_ladders_run_at_the_right_times(
    seconds_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ffmpeg run makes everything, and the images show the frames they should.

    The sprite takes a thumbnail every 2 s from the video's first frame (its shift to 0
    is what keeps a late-starting stream's first thumbnail); the poster is the first
    frame at or after 10% of the duration counted from the file's start, as `-ss` did
    when it was a run of its own: 1.05 s into the file is 0.55 s into the video. Both
    replace the placeholder written first.
    """
    commands = counting_runs(monkeypatch)

    async def main() -> TranscodeResult:
        info = await probe(seconds_clip, FFPROBE)
        assert info.duration == pytest.approx(10.5, abs=0.05)
        return await transcode(
            seconds_clip, info, tmp_path / "hls", ffmpeg=FFMPEG,
            profile=cpu_profile("ultrafast"), rungs=[Rung(144, 100)], segment_seconds=2,
            sprite_interval=2, stall_timeout=60,
        )  # fmt: skip

    result = asyncio.run(main())
    assert len(commands) == 1, "the renditions, the poster and the sprite: one ffmpeg run"
    # A second of video is 20 levels apart: 23.3 in the JPEGs' full range.
    step = 20 * 255 / 219
    layout = result.sprite_layout
    assert (layout.count, layout.columns, layout.rows) == (5, 5, 1)
    seconds = [round(mean / step) for mean in gray_means(result.sprite, layout.columns)]
    assert seconds == [0, 2, 4, 6, 8]
    assert [round(mean / step) for mean in gray_means(result.poster, 1)] == [0]


def test_progress_starts_at_once_and_never_runs_ahead_of_the_renditions(
    seconds_clip: Path, tmp_path: Path
) -> None:
    """ffmpeg 5.1 says nothing on -progress until every output has written its header,
    and reports the furthest output's end as out_time. A sheet with empty places (three
    thumbnails on 2x2) is only complete at the end: without the placeholders, the first
    progress came with the last frame; with the sheet's own timestamps, out_time went
    past the duration.

    The source is read at 10 times its speed and progress asked for every 0.1 s, so the
    run lasts about a second whatever the machine.
    """
    info = asyncio.run(probe(seconds_clip, FFPROBE))
    layout = sprite_layout(info.duration, 3, 2, 160, info.width / info.height)
    assert (layout.count, layout.columns, layout.rows) == (3, 2, 2)
    out = tmp_path / "hls"
    previews = Previews(out / "poster.jpg", out / "sprite.jpg", layout)
    variants = plan_ladder([Rung(144, 100)], info)
    command = hls_command(
        FFMPEG, seconds_clip, info, variants, out, cpu_profile("ultrafast"), previews=previews
    )
    at = command.index("-i")
    command[at:at] = ["-stats_period", "0.1", "-readrate", "10"]
    for variant in variants:
        (out / variant.name).mkdir(parents=True)
    (out / "audio").mkdir()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    out_times = [
        int(line.split("=", 1)[1]) / 1e6
        for line in done.stdout.splitlines()
        if line.startswith("out_time_us=")
    ]
    assert len(out_times) >= 4, out_times
    assert out_times[0] < info.duration / 2, out_times
    assert max(out_times) <= info.duration + 0.1, out_times
    assert gray_means(out / "sprite.jpg", 2)[1] > 0, "the sheet, not the placeholder"


def test_a_video_that_ends_before_the_poster_time_keeps_its_first_frame_as_poster(
    tmp_path: Path,
) -> None:
    """The video lasts 0.2 s and the sound 10 s: no frame comes at the poster time (1 s),
    so the placeholder (the first frame) stays the poster; the sprite has its one
    thumbnail and black where the second would be."""
    clip = tmp_path / "short-video.mp4"
    run_command([
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "color=white:size=320x180:rate=25:duration=0.2",
        "-f", "lavfi", "-i", "sine=duration=10",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        str(clip),
    ])  # fmt: skip

    async def main() -> TranscodeResult:
        info = await probe(clip, FFPROBE)
        return await transcode(
            clip, info, tmp_path / "hls", ffmpeg=FFMPEG, profile=cpu_profile("ultrafast"),
            rungs=[Rung(144, 100)], stall_timeout=60,
        )  # fmt: skip

    result = asyncio.run(main())
    assert gray_means(result.poster, 1)[0] > 230
    assert (result.sprite_layout.count, result.sprite_layout.columns) == (2, 2)
    first, second = gray_means(result.sprite, 2)
    assert first > 230 and second < 5


def test_an_image_ffmpeg_did_not_write_fails_the_transcode(tmp_path: Path) -> None:
    """ffmpeg can exit 0 without writing an output (no frame reached it)."""
    (tmp_path / "poster.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "sprite.jpg").write_bytes(b"")
    with pytest.raises(TranscodeFailed) as failed:
        pipeline._require([tmp_path / "poster.jpg", tmp_path / "sprite.jpg"])
    assert "the preview images could not be made" in failed.value.message
    assert failed.value.detail == "ffmpeg exited 0 but did not write sprite.jpg"
    pipeline._require([tmp_path / "poster.jpg"])
