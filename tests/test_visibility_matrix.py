"""Who sees and moderates what: every endpoint, as every role, category and status.

The expected answer comes from the rule as the issue states it, written here
independently of the code:

- users see approved videos of their own category plus their own uploads;
- editors additionally everything in their category;
- admins see everything;
- hidden videos answer 404, never 403; only READY and APPROVED videos have files
  to play;
- admins moderate everything, editors their own category, users get 403.

Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from clients import PASSWORD, bearer

from clipsync import db
from clipsync.context import ClipSyncApp
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.storage import keys

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]
# Who is asking: (role, category, whether they uploaded the videos).
VIEWERS = {
    "admin": (Role.ADMIN, "dealers", False),
    "editor_same": (Role.EDITOR, "staff", False),
    "editor_other": (Role.EDITOR, "dealers", False),
    "owner": (Role.USER, "staff", True),
    "user_same": (Role.USER, "staff", False),
    "user_other": (Role.USER, "dealers", False),
}
PLAYABLE = {VideoStatus.READY, VideoStatus.APPROVED}
_databases = itertools.count()


def may_see(viewer: str, status: VideoStatus) -> bool:
    role, category, owns = VIEWERS[viewer]
    same = category == "staff"  # every video below is in staff, uploaded by owner
    return (
        role == Role.ADMIN
        or owns
        or (role == Role.EDITOR and same)
        or (same and status == VideoStatus.APPROVED)
    )


def may_moderate(viewer: str) -> bool:
    role, category, _ = VIEWERS[viewer]
    return role == Role.ADMIN or (role == Role.EDITOR and category == "staff")


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request, start_app, make_settings, migrated_sqlite: Path):
    tables: dict = {"category": CATEGORIES}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"matrix_{next(_databases)}")}
    settings = make_settings(**tables)
    if request.param == "postgres":
        await db.migrate(settings)
    else:
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    tokens, users = {}, {}
    for name, (role, category, _) in VIEWERS.items():
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        users[name] = user
        tokens[name] = app.ctx.accounts.start_session(user).token
    videos = {status: await stored(app, users["owner"], status) for status in VideoStatus}
    return app, client, tokens, videos


async def stored(app: ClipSyncApp, owner: User, status: VideoStatus) -> Video:
    video = await Video.create(
        owner=owner,
        title=f"Matrixclip {status.lower()}",
        category="staff",
        status=status,
        duration=30.0,
    )

    async def body(data: bytes):
        yield data

    storage = app.ctx.backends.storage
    video.source_key = keys.source_key(video.id, "a.mp4")
    await storage.put_stream(video.source_key, body(b"source"))
    await storage.put_stream(keys.hls_key(video.id, "master.m3u8"), body(b"#EXTM3U\n"))
    await storage.put_stream(keys.hls_key(video.id, "poster.jpg"), body(b"\xff\xd8"))
    video.poster_key = keys.hls_key(video.id, "poster.jpg")
    await video.save()
    return video


@pytest.mark.parametrize("viewer", list(VIEWERS))
async def test_every_endpoint_follows_the_rule(world, viewer: str) -> None:
    _app, client, tokens, videos = world
    headers = bearer(tokens[viewer])
    listed = {
        v["id"]
        for v in (await client.get("/api/videos?pageSize=100", headers=headers)).json()["items"]
    }
    found = {
        v["id"]
        for v in (await client.get("/api/videos?q=matrixclip", headers=headers)).json()["items"]
    }
    home = (await client.get("/", headers=headers)).text
    for status, video in videos.items():
        sees = may_see(viewer, status)
        case = f"{viewer} / {status}"
        assert (str(video.id) in listed) == sees, f"list: {case}"
        assert (str(video.id) in found) == sees, f"search: {case}"
        # The home page is the feed: of what one may see, only the approved videos.
        in_feed = sees and status == VideoStatus.APPROVED
        assert (f"/watch/{video.id}" in home) == in_feed, f"home page: {case}"
        detail = await client.get(f"/api/videos/{video.id}", headers=headers)
        assert detail.status_code == (200 if sees else 404), f"detail: {case}"
        watch = await client.get(f"/watch/{video.id}", headers=headers)
        assert watch.status_code == (200 if sees else 404), f"watch page: {case}"
        playable = sees and status in PLAYABLE
        for path in ("master.m3u8", "poster.jpg"):
            response = await client.get(f"/hls/{video.id}/{path}", headers=headers)
            assert response.status_code == (200 if playable else 404), f"{path}: {case}"
        progress = await client.put(
            f"/api/videos/{video.id}/progress", json={"position": 1}, headers=headers
        )
        assert progress.status_code == (200 if sees else 404), f"progress: {case}"


@pytest.mark.parametrize("viewer", list(VIEWERS))
async def test_every_moderation_action_follows_the_rule(world, viewer: str) -> None:
    _app, client, tokens, videos = world
    headers = bearer(tokens[viewer])
    pending = await client.get("/api/admin/videos/pending", headers=headers)
    audit = await client.get("/api/admin/audit", headers=headers)
    if not may_moderate(viewer):
        role = VIEWERS[viewer][0]
        assert pending.status_code == audit.status_code == (403 if role == Role.USER else 200)
    for status, video in videos.items():
        case = f"{viewer} / {status}"
        approve = await client.post(f"/api/admin/videos/{video.id}/approve", headers=headers)
        if VIEWERS[viewer][0] == Role.USER:
            expected = 403
        elif not may_moderate(viewer):
            expected = 404  # an editor of another category: hidden, or not theirs to moderate
        else:
            expected = 200 if status == VideoStatus.READY else 409
        assert approve.status_code == expected, f"approve: {case}"
        if expected == 409:
            assert approve.json()["error"]["status"] == str(status)
    if may_moderate(viewer):
        queue = {v["id"] for v in pending.json()["items"]}
        assert queue == {
            str(videos[s].id)
            for s in (VideoStatus.UPLOADED, VideoStatus.PROCESSING, VideoStatus.READY)
        }
    else:
        if pending.status_code == 200:
            assert pending.json()["items"] == []


@pytest.mark.parametrize("viewer", ["admin", "editor_same", "editor_other", "user_same"])
async def test_reject_follows_the_rule(world, viewer: str) -> None:
    _app, client, tokens, videos = world
    video = videos[VideoStatus.READY]
    response = await client.post(
        f"/api/admin/videos/{video.id}/reject",
        json={"reason": "No"},
        headers=bearer(tokens[viewer]),
    )
    expected = {"admin": 200, "editor_same": 200, "editor_other": 404, "user_same": 403}[viewer]
    assert response.status_code == expected
