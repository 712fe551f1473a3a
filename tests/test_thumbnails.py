"""Thumbnails: the candidate frames the transcode makes in its one ffmpeg run, and the
poster the uploader (or a moderator) picks among them or uploads as an image."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import struct
import subprocess
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from clips import FFMPEG, FFPROBE, make_clip
from clips import run as run_command
from PIL import Image
from test_media_ladder import source
from transcoded_videos import Site, make_site, site_settings

from clipsync.media import images, pipeline
from clipsync.media.commands import (
    Previews,
    candidate_frames,
    candidate_times,
    hls_command,
    sprite_layout,
)
from clipsync.media.encoders import cpu_profile
from clipsync.media.ladder import Rung, plan_ladder
from clipsync.media.probe import probe
from clipsync.models import AuditEntry, Video, VideoStatus
from clipsync.services.thumbnails import MAX_POSTER_BYTES
from clipsync.storage import keys

INFO = dataclasses.replace(source(1280, 720), audio_stream=1)  # 10 s at 30 fps


# --- the command: pure, pinned -----------------------------------------------------------


def test_candidates_are_spread_evenly_away_from_the_first_and_last_five_percent() -> None:
    assert candidate_times(100, 4) == [16.25, 38.75, 61.25, 83.75]
    assert candidate_times(10, 6) == [1.25, 2.75, 4.25, 5.75, 7.25, 8.75]
    assert all(5 <= t <= 95 for t in candidate_times(100, 30))
    assert candidate_times(10, 0) == [] and candidate_times(0, 6) == []


def test_candidate_frames_rise_and_never_take_the_placeholder_frame() -> None:
    assert candidate_frames(10, 6, Fraction(30)) == [38, 83, 128, 173, 218, 263]
    # A clip of a few frames: each candidate still its own frame, none the first.
    assert candidate_frames(0.1, 4, Fraction(30)) == [1, 2, 3, 4]
    # 2.75 s and 7.25 s at 29.97 fps: the first frames at or after them.
    assert candidate_frames(10, 2, Fraction(30000, 1001)) == [83, 218]


def previews(candidates: int) -> Previews:
    layout = sprite_layout(INFO.duration, 5, 10, 160, INFO.width / INFO.height)
    return Previews(
        Path("/out/poster.jpg"), Path("/out/sprite.jpg"), layout,
        candidates=Path("/out/candidates"), candidate_count=candidates,
    )  # fmt: skip


def test_the_candidates_are_one_more_branch_and_output_of_the_one_command() -> None:
    variants = plan_ladder([Rung(240, 400)], INFO)
    command = hls_command(
        "ffmpeg", Path("/src/in.mp4"), INFO, variants, Path("/out"), cpu_profile("veryfast"),
        previews=previews(3),
    )  # fmt: skip
    graph = command[command.index("-filter_complex") + 1]
    assert graph.startswith("[0:0]fps=30,format=yuv420p,split=4[s0][vp][vs][vc];")
    # Frames at 2, 5 and 8 s (frames 60, 150, 240), after the first one at once.
    assert graph.endswith(
        ";[vc]select=eq(n\\,0)+gte(pts\\,60)*lt(prev_pts\\,60)+gte(pts\\,150)*lt(prev_pts\\,150)"
        "+gte(pts\\,240)*lt(prev_pts\\,240),"
        "scale=1280:720:flags=bicubic,setsar=1,settb=1/1000,setpts=N[candidates]"
    )
    assert command[-15:] == [
        "-map", "[candidates]", "-fps_mode", "passthrough", "-enc_time_base", "1:1000",
        "-q:v", "3", "-map_metadata", "-1", "-f", "image2", "-start_number", "0",
        "/out/candidates/%d.jpg",
    ]  # fmt: skip
    without = hls_command(
        "ffmpeg", Path("/src/in.mp4"), INFO, variants, Path("/out"), cpu_profile("veryfast"),
        previews=previews(0),
    )  # fmt: skip
    assert "[vc]" not in without[without.index("-filter_complex") + 1]
    assert "[candidates]" not in without


# --- the real run --------------------------------------------------------------------------


def mean_gray(image: Path) -> float:
    command = [FFMPEG, "-v", "error", "-i", str(image), "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return sum(raw) / len(raw)


def test_the_transcode_makes_the_candidates_at_their_times_in_its_one_ffmpeg_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 s whose brightness says the second: each candidate shows the second it is from."""
    clip = tmp_path / "seconds.mp4"
    run_command([
        FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
        "-i", "color=black:size=320x180:rate=10:duration=10,format=yuv420p,"
              "geq=lum='16+20*floor(T)':cb=128:cr=128",
        "-c:v", "libx264", "-preset", "ultrafast", str(clip),
    ])  # fmt: skip
    runs: list[list[str]] = []
    real = pipeline.run_ffmpeg

    async def counted(command: list[str], **kwargs: Any) -> None:
        runs.append(command)
        await real(command, **kwargs)

    monkeypatch.setattr(pipeline, "run_ffmpeg", counted)

    async def main() -> pipeline.TranscodeResult:
        info = await probe(clip, FFPROBE)
        return await pipeline.transcode(
            clip, info, tmp_path / "hls", ffmpeg=FFMPEG, profile=cpu_profile("veryfast"),
            rungs=[Rung(144, 200)], segment_seconds=2, thumbnail_candidates=6,
        )  # fmt: skip

    result = asyncio.run(main())
    assert len(runs) == 1
    assert [p.name for p in result.candidates] == [f"{n}.jpg" for n in range(1, 7)]
    assert not (tmp_path / "hls" / "candidates" / "0.jpg").exists()  # the placeholder
    assert set(result.candidates) <= set(result.files)
    # Candidates at 1.25, 2.75, 4.25, 5.75, 7.25 and 8.75 s: seconds 1, 2, 4, 5, 7, 8,
    # each 20 video levels (about 23 full-range levels) brighter than the second before.
    for path, second in zip(result.candidates, (1, 2, 4, 5, 7, 8), strict=True):
        assert mean_gray(path) == pytest.approx(second * 20 * 255 / 219, abs=6), path.name
        with Image.open(path) as image:
            assert image.size == (320, 180)


# --- choosing one, uploading one -----------------------------------------------------------


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path) -> Site:
    return await make_site(start_app, site_settings(make_settings, migrated_sqlite))


def image_bytes(
    fmt: str = "JPEG", size: tuple[int, int] = (200, 100), exif: Image.Exif | None = None
) -> bytes:
    """Red on the left half, blue on the right."""
    image = Image.new("RGB", size, (220, 20, 20))
    image.paste((20, 20, 220), (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    image.save(out, fmt, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


async def put_image(site: Site, video_id: Any, data: bytes, who: str = "uploader") -> Any:
    return await site.client.put(
        f"/api/videos/{video_id}/thumbnail",
        files={"file": ("poster.jpg", data, "image/jpeg")},
        headers=site.auth(who),
    )


async def read_stored(site: Site, key: str) -> bytes:
    return b"".join([chunk async for chunk in site.app.ctx.backends.storage.read(key)])


async def test_the_uploader_lists_the_candidates_and_picks_one(site: Site) -> None:
    video = await site.ready_video()
    listed = await site.client.get(
        f"/api/videos/{video.id}/thumbnails", headers=site.auth("uploader")
    )
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [c["number"] for c in body["candidates"]] == [1, 2, 3, 4, 5, 6]
    assert body["poster"] == f"/hls/{video.id}/poster.jpg" and not body["uploaded"]
    assert not any(c["chosen"] for c in body["candidates"])
    # Each is served through the authorised HLS path, to whoever may see the video.
    third = body["candidates"][2]["url"]
    assert third == f"/hls/{video.id}/candidates/3.jpg"
    served = await site.client.get(third, headers=site.auth("uploader"))
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert (await site.client.get(third)).status_code == 401

    chosen = await site.client.put(
        f"/api/videos/{video.id}/thumbnail", json={"candidate": 3}, headers=site.auth("uploader")
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["poster"] == third
    row = await Video.get(id=video.id)
    assert row.poster_key == keys.candidate_key(video.id, 3)
    entry = await AuditEntry.get(action="thumbnail")
    assert entry.details["candidate"] == 3 and entry.details["byOwner"] is True
    again = await site.client.get(
        f"/api/videos/{video.id}/thumbnails", headers=site.auth("uploader")
    )
    assert [c["chosen"] for c in again.json()["candidates"]] == [
        False,
        False,
        True,
        False,
        False,
        False,
    ]

    for bad in (0, 7, "3", True, None):
        refused = await site.client.put(
            f"/api/videos/{video.id}/thumbnail",
            json={"candidate": bad},
            headers=site.auth("uploader"),
        )
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["error"]["field"] == "candidate"
    assert (await Video.get(id=video.id)).poster_key == keys.candidate_key(video.id, 3)


async def test_an_uploaded_image_is_checked_upright_cropped_and_stripped(site: Site) -> None:
    video = await site.ready_video()
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation: upside down, so upright it is blue left, red right
    exif[0x010E] = "taken at home, 51.5N 0.1W"  # ImageDescription
    answer = await put_image(site, video.id, image_bytes(exif=exif))
    assert answer.status_code == 200, answer.text
    row = await Video.get(id=video.id)
    assert row.poster_key.startswith(keys.uploaded_posters_prefix(video.id) + "/")
    assert answer.json()["poster"] == f"/hls/{video.id}/{keys.hls_path(video.id, row.poster_key)}"
    stored = await read_stored(site, row.poster_key)
    assert b"taken at home" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert image.size == (640, 360)  # the automatic poster's size: the video's shape
        assert not image.getexif()
        left, right = image.convert("RGB").getpixel((20, 180)), image.getpixel((620, 180))
    assert left[2] > 150 > left[0] and right[0] > 150 > right[2]
    served = await site.client.get(answer.json()["poster"], headers=site.auth("viewer"))
    assert served.status_code == 404  # READY: only its uploader and moderators see it
    served = await site.client.get(answer.json()["poster"], headers=site.auth("uploader"))
    assert served.status_code == 200 and served.content == stored

    # Another choice replaces the uploaded file: it is deleted, not left behind.
    first = row.poster_key
    assert (await put_image(site, video.id, image_bytes("PNG"))).status_code == 200
    second = (await Video.get(id=video.id)).poster_key
    assert second != first and first not in await site.stored(video.id)
    picked = await site.client.put(
        f"/api/videos/{video.id}/thumbnail", json={"candidate": 1}, headers=site.auth("uploader")
    )
    assert picked.status_code == 200
    assert second not in await site.stored(video.id)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` by `height` pixels (a decompression bomb)."""
    small = image_bytes("PNG", (1, 1))
    header = struct.pack(">II", width, height) + small[24:29]
    chunk = b"IHDR" + header
    return small[:12] + chunk + struct.pack(">I", zlib.crc32(chunk)) + small[33:]


async def test_bad_images_are_refused_and_nothing_changes(site: Site) -> None:
    video = await site.ready_video()
    before = await site.stored(video.id)
    for data, status, message in (
        (b"<svg><script>alert(1)</script></svg>", 422, images.NOT_AN_IMAGE),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 422, images.NOT_AN_IMAGE),
        (png_claiming(30000, 30000), 422, images.too_many_pixels("thumbnails")),
        (png_claiming(6001, 4000), 422, images.too_many_pixels("thumbnails")),
        (b"", 422, "Choose an image file."),
        (image_bytes("PNG") + b"\x00" * MAX_POSTER_BYTES, 413, None),
    ):
        answer = await put_image(site, video.id, data)
        assert answer.status_code == status, answer.text
        if message:
            assert answer.json()["error"]["message"] == message
    assert await site.stored(video.id) == before
    assert (await Video.get(id=video.id)).poster_key == keys.hls_key(video.id, "poster.jpg")


async def test_only_the_uploader_and_the_videos_moderators_may_change_it(site: Site) -> None:
    video = await site.ready_video(approve=True)
    for who in ("viewer", "dealer", "dealer_editor"):
        listed = await site.client.get(f"/api/videos/{video.id}/thumbnails", headers=site.auth(who))
        assert listed.status_code == 404, who
        picked = await site.client.put(
            f"/api/videos/{video.id}/thumbnail", json={"candidate": 2}, headers=site.auth(who)
        )
        assert picked.status_code == 404, who
        assert (await put_image(site, video.id, image_bytes(), who)).status_code == 404
    assert (await Video.get(id=video.id)).poster_key == keys.hls_key(video.id, "poster.jpg")
    picked = await site.client.put(
        f"/api/videos/{video.id}/thumbnail", json={"candidate": 2}, headers=site.auth("editor")
    )
    assert picked.status_code == 200, picked.text
    entry = await AuditEntry.get(action="thumbnail")
    assert entry.actor_email == "editor@example.org" and entry.details["byOwner"] is False


async def test_a_video_being_converted_keeps_its_thumbnail(site: Site) -> None:
    video_id = await site.upload(make_clip("landscape"))
    assert (await Video.get(id=video_id)).status == VideoStatus.PROCESSING
    picked = await site.client.put(
        f"/api/videos/{video_id}/thumbnail", json={"candidate": 1}, headers=site.auth("uploader")
    )
    assert picked.status_code == 409, picked.text
    assert (await put_image(site, video_id, image_bytes())).status_code == 409
    assert keys.uploaded_posters_prefix(video_id) not in "".join(await site.stored(video_id))


async def test_a_new_transcode_keeps_the_chosen_thumbnail(site: Site) -> None:
    moderation = site.app.ctx.moderation
    picked = await site.ready_video(approve=True)
    answer = await site.client.put(
        f"/api/videos/{picked.id}/thumbnail", json={"candidate": 4}, headers=site.auth("uploader")
    )
    assert answer.status_code == 200
    uploaded = await site.ready_video()
    assert (await put_image(site, uploaded.id, image_bytes())).status_code == 200
    kept = (await Video.get(id=uploaded.id)).poster_key

    for video in (picked, uploaded):
        await moderation.retranscode(site.user("editor"), video.id)
        await site.transcode(video.id)
    row = await Video.get(id=picked.id)
    assert row.status == VideoStatus.APPROVED
    assert row.poster_key == keys.candidate_key(picked.id, 4)
    assert row.poster_key in await site.stored(picked.id)
    row = await Video.get(id=uploaded.id)
    assert row.poster_key == kept and kept in await site.stored(uploaded.id)
    # The rest of the tree is the new run's: one uploaded poster, no other leftovers.
    posters = [k for k in await site.stored(uploaded.id) if "/posters/" in k]
    assert posters == [kept]
