"""The uploader manages their videos: editing the title and description, deleting a video
with its files (local disk and S3), also while it is being transcoded; the edit page and
the delete confirmation, as plain forms."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from clients import PASSWORD, bearer, register, upload_and_register
from clips import _BASE, _X264, _tone, _video, make_clip, run

from clipsync import events
from clipsync.context import ClipSyncApp
from clipsync.models import AuditEntry, Rendition, Role, User, Video, VideoStatus, WatchProgress
from clipsync.services.transcoding import JobContext, renew_leases, run_transcode
from clipsync.sessions import CSRF_COOKIE
from clipsync.storage import keys

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]
PEOPLE = [
    ("admin", Role.ADMIN, "staff"),
    ("editor", Role.EDITOR, "staff"),
    ("uploader", Role.USER, "staff"),
    ("viewer", Role.USER, "staff"),
    ("dealer", Role.USER, "dealers"),
]


async def make_site(start_app, settings) -> tuple[ClipSyncApp, httpx.AsyncClient, dict]:
    app, client = await start_app(settings)
    people = {}
    for name, role, category in PEOPLE:
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        people[name] = (user, app.ctx.accounts.start_session(user).token)
    return app, client, people


def site_settings(make_settings, migrated_sqlite: Path, **tables):
    settings = make_settings(category=CATEGORIES, **tables)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    return settings


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    return await make_site(start_app, site_settings(make_settings, migrated_sqlite))


@pytest.fixture
async def reapproving_site(start_app, make_settings, migrated_sqlite: Path):
    settings = site_settings(make_settings, migrated_sqlite, moderation={"reapprove_on_edit": True})
    return await make_site(start_app, settings)


# Every file a transcoded video has: the upload, the HLS tree, poster and sprites.
STORED = (
    "source.mp4",
    "hls/master.m3u8",
    "hls/240p/index.m3u8",
    "hls/240p/seg_00001.m4s",
    "hls/poster.jpg",
    "hls/sprite.jpg",
    "hls/thumbnails.vtt",
)


async def video(
    app: ClipSyncApp,
    owner: User,
    status: VideoStatus = VideoStatus.APPROVED,
    title: str = "Clip",
    description: str = "About it",
) -> Video:
    """A video row with every kind of file stored for it."""
    row = await Video.create(
        owner=owner,
        title=title,
        description=description,
        category=owner.category,
        status=status,
        duration=10.0,
    )

    async def body():
        yield b"bytes"

    storage = app.ctx.backends.storage
    for relative in STORED:
        await storage.put_stream(f"{keys.video_prefix(row.id)}/{relative}", body())
    row.source_key = keys.source_key(row.id, "a.mp4")
    row.hls_key = keys.hls_key(row.id, "master.m3u8")
    row.poster_key = keys.hls_key(row.id, "poster.jpg")
    row.sprite_key = keys.hls_key(row.id, "sprite.jpg")
    row.thumbnails_key = keys.hls_key(row.id, "thumbnails.vtt")
    await row.save()
    await Rendition.create(
        video=row, name="240p", width=426, height=240, bitrate=1, average_bitrate=1,
        frame_rate=25, codecs="avc1", playlist_key=keys.hls_key(row.id, "240p/index.m3u8"),
    )  # fmt: skip
    return row


async def stored(app: ClipSyncApp, video_id) -> list[str]:
    return await app.ctx.backends.storage.list(keys.video_prefix(video_id))


# --- editing ---------------------------------------------------------------------------


async def test_the_uploader_changes_the_title_and_description(site) -> None:
    app, client, people = site
    clip = await video(app, people["uploader"][0])
    response = await client.patch(
        f"/api/videos/{clip.id}",
        json={"title": "  A better title ", "description": "Line one\nline two"},
        headers=bearer(people["uploader"][1]),
    )
    assert response.status_code == 200, response.text
    shown = response.json()["video"]
    assert (shown["title"], shown["description"]) == ("A better title", "Line one\nline two")
    # Approved stays approved by default: the category still sees it, renamed.
    assert shown["status"] == "APPROVED"
    seen = await client.get(f"/api/videos/{clip.id}", headers=bearer(people["viewer"][1]))
    assert seen.json()["video"]["title"] == "A better title"
    entry = await AuditEntry.get(video_id=clip.id)
    assert (entry.action, entry.actor_email) == ("owner_edit", "uploader@example.org")
    assert entry.details["changed"] == ["description", "title"]
    assert entry.details["oldTitle"] == "Clip" and entry.details["backToModeration"] is False

    # One field alone keeps the other.
    response = await client.patch(
        f"/api/videos/{clip.id}", json={"title": "Only this"}, headers=bearer(people["uploader"][1])
    )
    assert response.json()["video"]["description"] == "Line one\nline two"


async def test_an_edit_follows_the_upload_rules(site) -> None:
    app, client, people = site
    clip = await video(app, people["uploader"][0])
    headers = bearer(people["uploader"][1])
    for body, field in [
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "bell\x07"}, "title"),
        ({"description": "y" * 5001}, "description"),
        ({"description": 42}, "description"),
        ({"tags": ["x" * 41]}, "tags"),
        ({"status": "APPROVED"}, "status"),
        ({}, "title"),
    ]:
        response = await client.patch(f"/api/videos/{clip.id}", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"] == field, body
    response = await client.patch(f"/api/videos/{clip.id}", content=b"[1]", headers=headers)
    assert response.status_code == 400
    assert (await Video.get(id=clip.id)).title == "Clip"


async def test_reapprove_on_edit_sends_a_changed_approved_video_back(reapproving_site) -> None:
    app, client, people = reapproving_site
    clip = await video(app, people["uploader"][0])
    headers = bearer(people["uploader"][1])
    async with events.subscribe("video.") as news:
        # The same text again changes nothing, so nothing goes back.
        same = await client.patch(f"/api/videos/{clip.id}", json={"title": "Clip"}, headers=headers)
        assert same.json()["video"]["status"] == "APPROVED"
        changed = await client.patch(
            f"/api/videos/{clip.id}", json={"description": "New words"}, headers=headers
        )
        assert changed.status_code == 200 and changed.json()["video"]["status"] == "READY"
        event = await news.get(within=2)
    assert event is not None and event.name == "video.ready"
    assert event.data["videoId"] == str(clip.id) and event.data["category"] == "staff"
    row = await Video.get(id=clip.id)
    assert row.moderated_at is None and row.moderation_reason is None
    # Hidden from the category until approved again; the moderators find it waiting.
    hidden = await client.get(f"/api/videos/{clip.id}", headers=bearer(people["viewer"][1]))
    assert hidden.status_code == 404
    queue = await client.get("/api/admin/videos/pending", headers=bearer(people["editor"][1]))
    assert [v["id"] for v in queue.json()["items"]] == [str(clip.id)]
    entry = await AuditEntry.get(video_id=clip.id, action="owner_edit")
    assert entry.details["backToModeration"] is True

    # A video not yet approved keeps its status.
    ready = await video(app, people["uploader"][0], VideoStatus.READY)
    response = await client.patch(
        f"/api/videos/{ready.id}", json={"title": "Renamed"}, headers=headers
    )
    assert response.json()["video"]["status"] == "READY"


async def test_someone_elses_video_answers_404_for_edit_and_delete(site) -> None:
    app, client, people = site
    clip = await video(app, people["uploader"][0])
    # Everyone here may see the approved video, even so it is not theirs to change.
    for name in ("viewer", "editor", "admin", "dealer"):
        headers = bearer(people[name][1])
        edit = await client.patch(f"/api/videos/{clip.id}", json={"title": "x"}, headers=headers)
        delete = await client.delete(f"/api/videos/{clip.id}", headers=headers)
        assert (edit.status_code, delete.status_code) == (404, 404), name
        for answer in (edit, delete):
            error = answer.json()["error"]
            assert (error["code"], error["message"]) == ("not_found", "There is no such video.")
        page = await client.get(f"/videos/{clip.id}/edit", headers=headers)
        assert page.status_code == 404, name
    assert (await Video.get(id=clip.id)).title == "Clip"
    assert len(await stored(app, clip.id)) == len(STORED)
    missing = "00000000-0000-4000-8000-000000000000"
    headers = bearer(people["uploader"][1])
    assert (await client.delete(f"/api/videos/{missing}", headers=headers)).status_code == 404
    assert (await client.delete(f"/api/videos/{clip.id}")).status_code == 401


# --- deleting --------------------------------------------------------------------------


async def test_deleting_removes_the_files_the_row_and_keeps_an_audit_entry(site) -> None:
    app, client, people = site
    owner, token = people["uploader"]
    clip = await video(app, owner)
    other = await video(app, owner, title="Stays")
    await WatchProgress.create(user=people["viewer"][0], video=clip, position=3)
    assert len(await stored(app, clip.id)) == len(STORED)

    async with events.subscribe("video.") as news:
        response = await client.delete(f"/api/videos/{clip.id}", headers=bearer(token))
        assert response.status_code == 204, response.text
        event = await news.get(within=2)
    assert event is not None and event.name == "video.deleted"
    assert event.data == {
        "videoId": str(clip.id), "ownerId": owner.id, "category": "staff", "status": "APPROVED",
        "title": "Clip",  # the row is gone: webhooks get the title from the event
    }  # fmt: skip

    assert await stored(app, clip.id) == []
    assert not (app.ctx.backends.storage.root / keys.video_prefix(clip.id)).exists()
    assert not await Video.exists(id=clip.id)
    assert not await Rendition.exists(video_id=clip.id)
    assert not await WatchProgress.exists(video_id=clip.id)
    # The record outlives the row: its title and id are kept as text.
    entry = await AuditEntry.get(action="owner_delete")
    assert (entry.video_id, entry.video_title, entry.category) == (None, "Clip", "staff")
    assert entry.details["videoId"] == str(clip.id) and entry.details["files"] == len(STORED)
    assert entry.actor_email == "uploader@example.org"

    # Nothing of it answers any more; the other video is untouched.
    assert (await client.get(f"/api/videos/{clip.id}", headers=bearer(token))).status_code == 404
    hls = await client.get(f"/hls/{clip.id}/master.m3u8", headers=bearer(token))
    assert hls.status_code == 404
    assert len(await stored(app, other.id)) == len(STORED)
    again = await client.delete(f"/api/videos/{clip.id}", headers=bearer(token))
    assert again.status_code == 404


async def test_deleting_removes_the_objects_from_s3(
    s3_server, make_settings, migrated_sqlite: Path, start_app
) -> None:
    from test_storage_s3 import new_bucket

    bucket = new_bucket()
    settings = site_settings(
        make_settings,
        migrated_sqlite,
        storage={"backend": "s3"},
        plugins={"storage_s3": s3_server.plugin_table(bucket=bucket, prefix="media")},
    )
    app, client, people = await make_site(start_app, settings)
    clip = await video(app, people["uploader"][0], VideoStatus.FAILED)
    other = await video(app, people["uploader"][0])
    objects = app.ctx.backends.storage.client.list_objects(bucket, prefix="media/", recursive=True)
    assert len(list(objects)) == 2 * len(STORED)

    response = await client.delete(f"/api/videos/{clip.id}", headers=bearer(people["uploader"][1]))
    assert response.status_code == 204
    objects = app.ctx.backends.storage.client.list_objects(bucket, prefix="media/", recursive=True)
    names = sorted(o.object_name for o in objects)
    assert len(names) == len(STORED)
    assert all(name.startswith(f"media/{keys.video_prefix(other.id)}/") for name in names)


# --- deleting while a job transcodes it ------------------------------------------------

SMALL_LADDER = {"ladder": [{"height": 144, "bitrate": 150}, {"height": 240, "bitrate": 300}]}


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough (3 minutes) that its transcode is surely still running when deleted."""
    out = tmp_path_factory.mktemp("clips") / "long.mp4"
    run([*_BASE, *_video("640x360", 25, 180), *_tone(180), *_X264, "-shortest", str(out)])
    return out


@pytest.fixture
async def small_site(start_app, make_settings, migrated_sqlite: Path):
    """An app with a small ladder, and a short clip registered (PROCESSING, no job yet)."""
    settings = site_settings(make_settings, migrated_sqlite, transcoder=SMALL_LADDER)
    app, client = await start_app(settings)
    token = (await register(client, "short@example.org"))["token"]
    registered = await upload_and_register(client, token, make_clip("landscape"))
    assert registered.status_code == 201, registered.text
    return app, client, token, registered.json()["video"]["id"]


async def test_deleting_a_video_being_transcoded_stops_the_job_and_leaves_no_files(
    start_app, make_settings, migrated_sqlite: Path, long_clip: Path
) -> None:
    settings = site_settings(make_settings, migrated_sqlite, transcoder=SMALL_LADDER)
    app, client = await start_app(settings)
    token = (await register(client, "long@example.org"))["token"]
    registered = await upload_and_register(client, token, long_clip)
    assert registered.status_code == 201, registered.text
    video_id = registered.json()["video"]["id"]
    ctx = JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends)
    job = asyncio.create_task(run_transcode(ctx, video_id, final_attempt=True))

    scratch = settings.data_dir / "scratch" / video_id
    # ffmpeg is at work once it has written segments into the scratch folder.
    for _ in range(300):
        if job.done() or list(scratch.glob("hls/**/*.m4s")):
            break
        await asyncio.sleep(0.05)
    assert not job.done(), "the transcode ended before it could be deleted"
    ffmpeg = [p for p in Path("/proc").glob("[0-9]*") if _runs_ffmpeg_on(p, video_id)]
    assert ffmpeg, "no ffmpeg process works on the video"

    response = await client.delete(f"/api/videos/{video_id}", headers=bearer(token))
    assert response.status_code == 204
    assert await stored(app, video_id) == []
    # The consumer's next heartbeat finds the row gone and stops the job.
    await renew_leases(ctx)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(job, 30)
    assert video_id not in ctx.running
    assert not scratch.exists()
    assert await stored(app, video_id) == []
    assert not (app.ctx.backends.storage.root / keys.video_prefix(video_id)).exists()
    for process in ffmpeg:
        assert not _runs_ffmpeg_on(process, video_id), "ffmpeg still runs"
    entry = await AuditEntry.get(action="owner_delete")
    assert entry.details["status"] == "PROCESSING"


class DeletingStorage:
    """The app's storage, except that the video is deleted as the job stores its first file.

    So the job, past ffmpeg and before any heartbeat, stores its HLS tree for a row
    that no longer exists: the window between the deletion's sweeps and the job's end.
    """

    def __init__(self, storage: Any, delete: Any) -> None:
        self.storage = storage
        self.delete = delete

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)

    async def _first(self) -> None:
        if self.delete is not None:
            delete, self.delete = self.delete, None
            await delete()

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        await self._first()
        await self.storage.put_file(key, path, content_type)

    async def adopt_file(self, key: str, path: Path) -> None:  # local storage
        await self._first()
        await self.storage.adopt_file(key, path)


async def test_a_job_that_stores_after_the_deletion_leaves_no_files(small_site) -> None:
    app, client, token, video_id = small_site

    async def delete() -> None:
        response = await client.delete(f"/api/videos/{video_id}", headers=bearer(token))
        assert response.status_code == 204

    backends = SimpleNamespace(
        storage=DeletingStorage(app.ctx.backends.storage, delete),
        transcoder=app.ctx.backends.transcoder,
        selections=app.ctx.backends.selections,
    )
    ctx = JobContext(app.ctx.settings, app.ctx.plugins, backends)
    with contextlib.suppress(Exception):
        await run_transcode(ctx, video_id, final_attempt=False)
    assert not await Video.exists(id=video_id)
    assert await stored(app, video_id) == []


def _runs_ffmpeg_on(process: Path, video_id: str) -> bool:
    try:
        command = (process / "cmdline").read_bytes().split(b"\0")
        state = (process / "stat").read_text().split(") ", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return (
        state != "Z"
        and any(video_id.encode() in part for part in command)
        and any(part.endswith(b"ffmpeg") for part in command[:1])
    )


# --- the pages -------------------------------------------------------------------------


async def sign_in(client: httpx.AsyncClient, email: str) -> str:
    """Sign in with the form, as a browser does; returns the CSRF token for forms."""
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = await client.post(
        "/login", data={"csrf_token": token, "email": email, "password": PASSWORD}
    )
    assert done.status_code == 303, done.text
    return client.cookies[CSRF_COOKIE]


async def test_the_edit_page_saves_with_a_plain_form(site) -> None:
    app, client, people = site
    clip = await video(app, people["uploader"][0], title="Old <b>title</b>")
    csrf = await sign_in(client, "uploader@example.org")

    listed = await client.get("/videos")
    assert f'href="/videos/{clip.id}/edit"' in listed.text
    watch = await client.get(f"/watch/{clip.id}")
    assert f'href="/videos/{clip.id}/edit"' in watch.text
    page = await client.get(f"/videos/{clip.id}/edit")
    assert page.status_code == 200
    assert 'value="Old &lt;b&gt;title&lt;/b&gt;"' in page.text
    assert f'href="/videos/{clip.id}/delete"' in page.text

    saved = await client.post(
        f"/videos/{clip.id}/edit",
        data={"csrf_token": csrf, "title": "New title", "description": "New words"},
    )
    assert (
        saved.status_code == 303 and saved.headers["location"] == f"/videos/{clip.id}/edit?saved=1"
    )
    row = await Video.get(id=clip.id)
    assert (row.title, row.description) == ("New title", "New words")
    assert "Your changes are saved." in (await client.get(saved.headers["location"])).text

    # A refused value comes back in the form, as typed, with the reason.
    refused = await client.post(
        f"/videos/{clip.id}/edit",
        data={"csrf_token": csrf, "title": "", "description": "Kept as typed"},
    )
    assert refused.status_code == 422
    assert "Give the video a title." in refused.text and "Kept as typed" in refused.text
    assert (await Video.get(id=clip.id)).title == "New title"

    # Without the form's CSRF token nothing is saved.
    forged = await client.post(f"/videos/{clip.id}/edit", data={"title": "Forged"})
    assert forged.status_code == 403
    assert (await Video.get(id=clip.id)).title == "New title"


async def test_deleting_from_the_page_asks_first(site) -> None:
    app, client, people = site
    clip = await video(app, people["uploader"][0], title="To go")
    csrf = await sign_in(client, "uploader@example.org")

    confirm = await client.get(f"/videos/{clip.id}/delete")
    assert confirm.status_code == 200
    assert "Delete “To go”?" in confirm.text
    assert f'action="/videos/{clip.id}/delete"' in confirm.text
    assert await Video.exists(id=clip.id)  # opening the page deletes nothing

    forged = await client.post(f"/videos/{clip.id}/delete", data={})
    assert forged.status_code == 403 and await Video.exists(id=clip.id)

    done = await client.post(f"/videos/{clip.id}/delete", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/videos?deleted=1"
    assert not await Video.exists(id=clip.id)
    assert await stored(app, clip.id) == []
    assert "The video was deleted." in (await client.get("/videos?deleted=1")).text


async def test_others_get_no_edit_link_and_no_pages(site) -> None:
    app, client, people = site
    clip = await video(app, people["uploader"][0])
    await sign_in(client, "viewer@example.org")
    watch = await client.get(f"/watch/{clip.id}")
    assert watch.status_code == 200 and f"/videos/{clip.id}/edit" not in watch.text
    for path in (f"/videos/{clip.id}/edit", f"/videos/{clip.id}/delete"):
        assert (await client.get(path)).status_code == 404
    csrf = client.cookies[CSRF_COOKIE]
    post = await client.post(f"/videos/{clip.id}/delete", data={"csrf_token": csrf})
    assert post.status_code == 404 and await Video.exists(id=clip.id)
