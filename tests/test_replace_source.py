"""A new file for an existing video: checked as an upload, then transcoded again; the
video keeps its id, comments, likes, captions and thumbnail; the old file goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from clips import make_clip
from transcoded_videos import Site, make_site, site_settings

from clipsync import hookimpl
from clipsync.models import AuditEntry, Caption, Comment, Like, Rendition, Video, VideoStatus
from clipsync.storage import keys

WEBVTT = b"WEBVTT\n\n00:00.000 --> 00:01.000\nBonjour\n"


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path) -> Site:
    return await make_site(start_app, site_settings(make_settings, migrated_sqlite))


async def send(site: Site, video_id: Any, path: Path, who: str = "uploader") -> httpx.Response:
    with path.open("rb") as fh:
        return await site.client.post(
            f"/api/videos/{video_id}/source",
            files={"file": (path.name, fh, "video/mp4")},
            headers=site.auth(who),
        )


def sources(stored: list[str]) -> list[str]:
    return [key.rsplit("/", 1)[1] for key in stored if "/hls/" not in key and "/source" in key]


async def test_the_uploader_replaces_the_file_of_an_approved_video(site: Site) -> None:
    video = await site.ready_video(approve=True)  # 640x360, 4 s
    old_source = video.source_key
    await Comment.create(video=video, author=site.user("viewer"), body="Nice")
    await Like.create(video=video, user=site.user("viewer"))
    caption = await site.client.post(
        f"/api/videos/{video.id}/captions",
        data={"language": "fr"},
        files={"file": ("fr.vtt", WEBVTT, "text/vtt")},
        headers=site.auth("uploader"),
    )
    assert caption.status_code == 201, caption.text
    picked = await site.client.put(
        f"/api/videos/{video.id}/thumbnail", json={"candidate": 2}, headers=site.auth("uploader")
    )
    assert picked.status_code == 200

    answer = await send(site, video.id, make_clip("portrait"))  # 360x640, 2 s
    assert answer.status_code == 202, answer.text
    assert answer.json()["video"]["status"] == "PROCESSING"
    row = await Video.get(id=video.id)
    assert row.source_key != old_source and row.source_key.startswith(
        keys.video_prefix(video.id) + "/source-"
    )
    assert (row.width, row.height, row.duration) == (360, 640, pytest.approx(2, abs=0.1))
    assert (row.original_filename, row.attempts, row.moderated_at is not None) == (
        "portrait.mp4", 0, True,
    )  # fmt: skip
    stored = await site.stored(video.id)
    # The old file is gone at once; the old renditions stay until the new ones are in.
    assert old_source not in stored and len(sources(stored)) == 1
    assert keys.hls_key(video.id, "master.m3u8") in stored
    # Not shown while it converts.
    watched = await site.client.get(f"/api/videos/{video.id}", headers=site.auth("viewer"))
    assert watched.status_code == 404
    entry = await AuditEntry.get(action="replace_source")
    assert entry.details["old"] == "APPROVED" and entry.details["backToModeration"] is False

    done = await site.transcode(video.id)
    assert done.status == VideoStatus.APPROVED  # it was approved, and stays so
    assert {r.name for r in await Rendition.filter(video_id=video.id)} == {"144p", "240p"}
    assert {(r.width, r.height) for r in await Rendition.filter(video_id=video.id)} == {
        (144, 256), (240, 426),
    }  # fmt: skip
    # Everything that hangs on the video is still there.
    assert await Comment.filter(video_id=video.id).count() == 1
    assert await Like.filter(video_id=video.id).count() == 1
    assert await Caption.filter(video_id=video.id, language="fr").exists()
    assert done.poster_key == keys.candidate_key(video.id, 2)
    stored = await site.stored(video.id)
    assert keys.caption_key(video.id, "fr") in stored
    assert sources(stored) == [done.source_key.rsplit("/", 1)[1]]
    watched = await site.client.get(f"/api/videos/{video.id}", headers=site.auth("viewer"))
    assert watched.status_code == 200 and watched.json()["video"]["height"] == 640


async def test_with_reapprove_on_edit_the_new_file_waits_for_a_moderator(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = site_settings(make_settings, migrated_sqlite, moderation={"reapprove_on_edit": True})
    site = await make_site(start_app, settings)
    video = await site.ready_video(approve=True)
    assert (await send(site, video.id, make_clip("landscape"))).status_code == 202
    assert (await site.transcode(video.id)).status == VideoStatus.READY
    entry = await AuditEntry.get(action="replace_source")
    assert entry.details["backToModeration"] is True


async def test_a_moderator_of_the_video_may_replace_it_others_get_404(site: Site) -> None:
    video = await site.ready_video(approve=True)
    for who in ("viewer", "dealer", "dealer_editor"):
        refused = await send(site, video.id, make_clip("landscape"), who)
        assert refused.status_code == 404, who
    assert (await Video.get(id=video.id)).source_key == video.source_key
    assert (await send(site, video.id, make_clip("landscape"), "editor")).status_code == 202
    entry = await AuditEntry.get(action="replace_source")
    assert entry.actor_email == "editor@example.org"


async def test_a_refused_file_leaves_the_video_as_it_was(site: Site) -> None:
    video = await site.ready_video(approve=True)
    before = await site.stored(video.id)

    class NoPortrait:
        @hookimpl
        def validate_upload(self, video, source):
            return (
                "Portrait videos are not accepted here." if source.height > source.width else None
            )

    site.app.ctx.plugins.pm.register(NoPortrait(), name="no_portrait")
    try:
        refused = await send(site, video.id, make_clip("portrait"))
    finally:
        site.app.ctx.plugins.pm.unregister(name="no_portrait")
    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == "Portrait videos are not accepted here."
    for path, status in ((make_clip("text"), 422), (make_clip("empty"), 422)):
        assert (await send(site, video.id, path)).status_code == status, path
    row = await Video.get(id=video.id)
    assert (row.status, row.source_key, row.size) == (
        VideoStatus.APPROVED,
        video.source_key,
        video.size,
    )
    assert await site.stored(video.id) == before


async def test_a_file_over_the_size_limit_is_refused_before_it_is_stored(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    clip = make_clip("landscape")  # about 1.0 MB; "hd" is about 1.6 MB
    settings = site_settings(
        make_settings, migrated_sqlite, uploads={"max_size": clip.stat().st_size + 100_000}
    )
    site = await make_site(start_app, settings)
    video = await site.ready_video()
    before = await site.stored(video.id)
    too_large = await send(site, video.id, make_clip("hd"))
    assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "too_large"
    assert await site.stored(video.id) == before
    assert (await send(site, video.id, clip)).status_code == 202


async def test_the_owners_quota_counts_the_replaced_file_once(site: Site) -> None:
    video = await site.ready_video()  # about 1.0 MB; "hd" is about 1.6 MB
    before = await site.stored(video.id)
    owner = site.user("uploader")
    owner.storage_quota_bytes = video.size + 100_000  # one such file, and the form's framing
    await owner.save()
    for who in ("uploader", "editor"):  # the owner's quota, whoever sends the file
        over = await send(site, video.id, make_clip("hd"), who)
        assert over.status_code == 413 and over.json()["error"]["code"] == "quota_exceeded"
    assert await site.stored(video.id) == before
    assert (await send(site, video.id, make_clip("landscape"))).status_code == 202


async def test_a_video_being_converted_or_rejected_takes_no_new_file(site: Site) -> None:
    video_id = await site.upload(make_clip("landscape"))
    refused = await send(site, video_id, make_clip("landscape"))
    assert refused.status_code == 409 and refused.json()["error"]["status"] == "PROCESSING"
    await site.transcode(video_id)
    await site.app.ctx.moderation.reject(site.user("editor"), video_id, "Off topic", False)
    refused = await send(site, video_id, make_clip("landscape"))
    assert refused.status_code == 409
