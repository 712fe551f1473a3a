"""Who sees and moderates what: every endpoint, as every role, category and status.

The expected answer comes from the rule as the issue states it, written here
independently of the code:

- users see approved videos of their own category plus their own uploads;
- editors additionally everything in their category;
- admins see everything;
- hidden videos answer 404, never 403; only READY and APPROVED videos have files
  to play;
- admins moderate everything, editors their own category, users get 403.

Beyond one category (issue 14, the second half): several categories on both sides,
grants (active and expired) and share links (live, revoked, expired).

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
# While it transcodes, a video plays for its uploader and its moderators (watch while it
# transcodes, services/early_playback.py).
PLAYABLE_EARLY = PLAYABLE | {VideoStatus.PROCESSING}
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
        playable = sees and status in PLAYABLE_EARLY
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


# --- beyond one category: several categories, grants, share links ---------------------
#
# The rule again, as issue 14 states it: a person sees the approved videos of every
# category they belong to (the primary one and the others), a video is in its own
# category and every other one it is published to; editors see and moderate every
# video whose own category is one of theirs; an unexpired grant shows an approved
# video to its person whatever their category; a share link opens its approved video
# for whoever holds it, through its own entry point, until revoked or expired.

WIDE_CATEGORIES = [*CATEGORIES, {"name": "partners", "label": "Partners", "self_select": True}]
# (role, primary category, other categories, grants: None, "active" or "expired").
WIDE_VIEWERS = {
    "dealer": (Role.USER, "dealers", [], None),
    "dealer_multi": (Role.USER, "dealers", ["staff"], None),
    "editor_dealers": (Role.EDITOR, "dealers", [], None),
    "editor_multi": (Role.EDITOR, "dealers", ["staff"], None),
    "grantee": (Role.USER, "partners", [], "active"),
    "grantee_expired": (Role.USER, "partners", [], "expired"),
    "partner": (Role.USER, "partners", [], None),
}
# Every video is in staff, uploaded by its owner; the "wide" ones are also published
# to dealers, and the "narrow" ones are granted (to the grantees) and linked.
KINDS = {"narrow": ["staff"], "wide": ["staff", "dealers"]}


def wide_may_see(viewer: str, kind: str, status: VideoStatus) -> bool:
    role, primary, extra, grants = WIDE_VIEWERS[viewer]
    mine = {primary, *extra}
    if role == Role.EDITOR and "staff" in mine:
        return True
    approved = status == VideoStatus.APPROVED
    granted = grants == "active" and kind == "narrow"
    return approved and (bool(mine & set(KINDS[kind])) or granted)


def wide_may_moderate(viewer: str) -> bool:
    role, primary, extra, _ = WIDE_VIEWERS[viewer]
    return role == Role.EDITOR and "staff" in {primary, *extra}


@pytest.fixture(params=["sqlite", "postgres"])
async def wide_world(request, start_app, make_settings, migrated_sqlite: Path):
    from datetime import UTC, datetime, timedelta

    from clipsync.models import ShareLink, UserCategory, VideoCategory, VideoGrant
    from clipsync.services.share_links import hash_token

    tables: dict = {"category": WIDE_CATEGORIES}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"wide_{next(_databases)}")}
    settings = make_settings(**tables)
    if request.param == "postgres":
        await db.migrate(settings)
    else:
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    # An administrator exists (else every page asks to set the site up); not a viewer here.
    await app.ctx.accounts.create_user(
        "boss@example.org", PASSWORD, role=Role.ADMIN, category="staff"
    )
    owner = await app.ctx.accounts.create_user("owner@example.org", PASSWORD, category="staff")
    videos = {
        (kind, status): await stored(app, owner, status) for kind in KINDS for status in VideoStatus
    }
    for (kind, _status), video in videos.items():
        for category in KINDS[kind][1:]:
            await VideoCategory.create(video=video, category=category)
    now = datetime.now(UTC)
    tokens = {}
    for name, (role, primary, extra, grants) in WIDE_VIEWERS.items():
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=primary
        )
        for category in extra:
            await UserCategory.create(user=user, category=category)
        if grants:
            until = now + timedelta(days=1) if grants == "active" else now - timedelta(hours=1)
            for status in VideoStatus:
                await VideoGrant.create(video=videos["narrow", status], user=user, until=until)
        tokens[name] = app.ctx.accounts.start_session(user).token
    # One link per narrow video, and a revoked and an expired one to the approved video.
    links = {}
    for status in VideoStatus:
        links[status] = f"matrix-link-{status.lower()}-{'x' * 30}"
        await ShareLink.create(
            video=videos["narrow", status], token_hash=hash_token(links[status]),
            created_by=owner, expires_at=now + timedelta(days=1),
        )  # fmt: skip
    approved = videos["narrow", VideoStatus.APPROVED]
    for state, changes in (
        ("revoked", {"expires_at": now + timedelta(days=1), "revoked_at": now}),
        ("expired", {"expires_at": now - timedelta(seconds=1)}),
    ):
        links[state] = f"matrix-link-{state}-{'x' * 30}"
        await ShareLink.create(
            video=approved, token_hash=hash_token(links[state]), created_by=owner, **changes
        )
    return app, client, tokens, videos, links


@pytest.mark.parametrize("viewer", list(WIDE_VIEWERS))
async def test_access_beyond_one_category_follows_the_rule(wide_world, viewer: str) -> None:
    _app, client, tokens, videos, _links = wide_world
    headers = bearer(tokens[viewer])
    listed = {
        v["id"]
        for v in (await client.get("/api/videos?pageSize=100", headers=headers)).json()["items"]
    }
    keyset = {
        v["id"]
        for v in (await client.get("/api/videos?pageSize=100&after=", headers=headers)).json()[
            "items"
        ]
    }
    found = {
        v["id"]
        for v in (await client.get("/api/videos?q=matrixclip", headers=headers)).json()["items"]
    }
    shared = {
        v["id"] for v in (await client.get("/api/videos?shared=1", headers=headers)).json()["items"]
    }
    home = (await client.get("/", headers=headers)).text
    # The count, and browsing the category the wide videos are also published to.
    total = (await client.get("/api/videos?pageSize=1", headers=headers)).json()["total"]
    assert total == sum(wide_may_see(viewer, *key) for key in videos), "count"
    browsed = {
        v["id"]
        for v in (
            await client.get("/api/videos?pageSize=100&after=&category=dealers", headers=headers)
        ).json()["items"]
    }
    for (kind, status), video in videos.items():
        sees = wide_may_see(viewer, kind, status)
        case = f"{viewer} / {kind} / {status}"
        assert (str(video.id) in browsed) == (sees and kind == "wide"), f"browse: {case}"
        assert (str(video.id) in listed) == sees, f"list: {case}"
        assert (str(video.id) in keyset) == sees, f"keyset list: {case}"
        assert (str(video.id) in found) == sees, f"search: {case}"
        in_feed = sees and status == VideoStatus.APPROVED
        assert (f"/watch/{video.id}" in home) == in_feed, f"home page: {case}"
        granted = WIDE_VIEWERS[viewer][3] == "active" and kind == "narrow"
        assert (str(video.id) in shared) == (granted and status == VideoStatus.APPROVED), case
        detail = await client.get(f"/api/videos/{video.id}", headers=headers)
        assert detail.status_code == (200 if sees else 404), f"detail: {case}"
        watch = await client.get(f"/watch/{video.id}", headers=headers)
        assert watch.status_code == (200 if sees else 404), f"watch page: {case}"
        playable = sees and status in PLAYABLE_EARLY
        for path in ("master.m3u8", "poster.jpg"):
            response = await client.get(f"/hls/{video.id}/{path}", headers=headers)
            assert response.status_code == (200 if playable else 404), f"{path}: {case}"
        progress = await client.put(
            f"/api/videos/{video.id}/progress", json={"position": 1}, headers=headers
        )
        assert progress.status_code == (200 if sees else 404), f"progress: {case}"
        approve = await client.post(f"/api/admin/videos/{video.id}/approve", headers=headers)
        if WIDE_VIEWERS[viewer][0] == Role.USER:
            assert approve.status_code == 403, f"approve: {case}"
        elif not wide_may_moderate(viewer):
            assert approve.status_code == 404, f"approve: {case}"


@pytest.mark.parametrize("viewer", ["partner", "dealer", "grantee_expired"])
async def test_a_share_link_opens_its_approved_video_until_revoked_or_expired(
    wide_world, viewer: str
) -> None:
    _app, client, tokens, videos, links = wide_world
    headers = bearer(tokens[viewer])
    for status in VideoStatus:
        video = videos["narrow", status]
        case = f"{viewer} / link / {status}"
        opens = status == VideoStatus.APPROVED
        answer = await client.get(f"/api/share/{links[status]}", headers=headers)
        assert answer.status_code == (200 if opens else 404), case
        page = await client.get(f"/s/{links[status]}", headers=headers)
        assert page.status_code == (200 if opens else 404), f"page: {case}"
        base = f"/hls/{video.id}/share/{links[status]}"
        for path in ("master.m3u8", "poster.jpg"):
            response = await client.get(f"{base}/{path}", headers=headers)
            assert response.status_code == (200 if opens else 404), f"{path}: {case}"
        # A link is no person's visibility: the video stays hidden elsewhere.
        if not wide_may_see(viewer, "narrow", status):
            detail = await client.get(f"/api/videos/{video.id}", headers=headers)
            assert detail.status_code == 404, f"detail: {case}"
    approved = videos["narrow", VideoStatus.APPROVED]
    for state in ("revoked", "expired"):
        assert (await client.get(f"/api/share/{links[state]}", headers=headers)).status_code == 404
        assert (await client.get(f"/s/{links[state]}", headers=headers)).status_code == 404
        hls = await client.get(
            f"/hls/{approved.id}/share/{links[state]}/master.m3u8", headers=headers
        )
        assert hls.status_code == 404, state
    # A link to one video opens no other.
    other = videos["wide", VideoStatus.APPROVED]
    wrong = await client.get(
        f"/hls/{other.id}/share/{links[VideoStatus.APPROVED]}/master.m3u8", headers=headers
    )
    assert wrong.status_code == 404
