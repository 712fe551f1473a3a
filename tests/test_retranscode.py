"""Moderators transcode videos again from /admin/library (after a ladder change, say):
ticked in the list or one by one, audited, each video on its own."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from clips import make_clip
from test_library import sign_in
from transcoded_videos import Site, make_site, site_settings

from clipsync.models import AuditEntry, Rendition, Video, VideoStatus
from clipsync.services.transcoding import JobContext, run_transcode
from clipsync.settings import LadderRung
from clipsync.storage import keys


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path) -> Site:
    settings = site_settings(
        make_settings, migrated_sqlite, transcoder={"ladder": [{"height": 144, "bitrate": 150}]}
    )
    return await make_site(start_app, settings)


def with_ladder(site: Site, *heights: int) -> JobContext:
    """A consumer whose `[transcoder] ladder` was changed to `heights`."""
    settings = site.app.ctx.settings
    ladder = [LadderRung(height=h, bitrate=h * 2) for h in heights]
    changed = dataclasses.replace(
        settings, transcoder=dataclasses.replace(settings.transcoder, ladder=ladder)
    )
    return JobContext(changed, site.app.ctx.plugins, site.app.ctx.backends)


async def test_ticked_videos_are_transcoded_again_with_the_new_ladder(site: Site) -> None:
    approved = await site.ready_video(approve=True)
    ready = await site.ready_video()
    csrf = await sign_in(site.client, "editor@example.org")
    page = await site.client.get("/admin/library")
    assert page.status_code == 200
    assert 'id="library-bulk"' in page.text and 'data-action="retranscode"' in page.text
    back = re.search(r'name="back" value="([^"]+)"', page.text).group(1)

    done = await site.client.post(
        "/admin/library/retranscode",
        data={"csrf_token": csrf, "back": back, "video": [str(approved.id), str(ready.id)]},
    )
    assert done.status_code == 303, done.text
    assert parse_qs(urlsplit(done.headers["location"]).query)["done"] == ["retranscoding"]
    for video in (approved, ready):
        row = await Video.get(id=video.id)
        assert (row.status, row.progress, row.attempts) == (VideoStatus.PROCESSING, 0, 0)
    entries = await AuditEntry.filter(action="retranscode").order_by("id")
    assert [(e.actor_email, e.details["old"]) for e in entries] == [
        ("editor@example.org", "APPROVED"),
        ("editor@example.org", "READY"),
    ]
    notice = await site.client.get(done.headers["location"])
    assert "Transcoding again" in notice.text

    ctx = with_ladder(site, 144, 240)
    for video in (approved, ready):
        await run_transcode(ctx, str(video.id), final_attempt=True)
    assert (await Video.get(id=approved.id)).status == VideoStatus.APPROVED
    assert (await Video.get(id=ready.id)).status == VideoStatus.READY
    names = {r.name for r in await Rendition.filter(video_id=approved.id)}
    assert names == {"144p", "240p"}
    assert keys.hls_key(approved.id, "240p/index.m3u8") in await site.stored(approved.id)


async def test_one_that_cannot_be_transcoded_again_does_not_stop_the_others(site: Site) -> None:
    ready = await site.ready_video()
    converting = await site.upload(make_clip("landscape"))
    csrf = await sign_in(site.client, "admin@example.org")
    done = await site.client.post(
        "/admin/library/retranscode",
        data={"csrf_token": csrf, "back": "/admin/library", "video": [converting, str(ready.id)]},
    )
    assert parse_qs(urlsplit(done.headers["location"]).query)["done"] == ["retranscoding_partly"]
    assert (await Video.get(id=ready.id)).status == VideoStatus.PROCESSING
    assert await AuditEntry.filter(action="retranscode").count() == 1

    nothing = await site.client.post(
        "/admin/library/retranscode",
        data={"csrf_token": csrf, "back": "https://elsewhere.example/", "video": [converting]},
    )
    assert nothing.headers["location"] == "/admin/library?done=not_retranscoded"
    forged = await site.client.post("/admin/library/retranscode", data={"video": [str(ready.id)]})
    assert forged.status_code == 403


async def test_only_the_videos_moderators_may_transcode_it_again(site: Site) -> None:
    video = await site.ready_video()
    csrf = await sign_in(site.client, "dealer_editor@example.org")
    done = await site.client.post(
        "/admin/library/retranscode",
        data={"csrf_token": csrf, "back": "/admin/library", "video": [str(video.id)]},
    )
    assert parse_qs(urlsplit(done.headers["location"]).query)["done"] == ["not_retranscoded"]
    for who, status in (("dealer_editor", 404), ("uploader", 403)):
        answer = await site.client.post(
            f"/api/admin/videos/{video.id}/retranscode", headers=site.auth(who)
        )
        assert answer.status_code == status, who
    assert (await Video.get(id=video.id)).status == VideoStatus.READY
    answer = await site.client.post(
        f"/api/admin/videos/{video.id}/retranscode", headers=site.auth("editor")
    )
    assert answer.status_code == 200 and answer.json()["video"]["status"] == "PROCESSING"
    assert await AuditEntry.filter(action="retranscode", actor_email="editor@example.org").exists()
