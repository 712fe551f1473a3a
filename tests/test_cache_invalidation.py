"""A stale answer is never served after any kind of change, on both cache backends.

Each test primes the cache through the real API (the list with its count, the
detail, the master playlist, the signed-in user behind a token), makes one kind of
change through the API, and checks that the very next answer is fresh. The cache's
TTL is an hour, so only invalidation can make it so. The same changes across two
`clipsync serve` workers are in test_cache_live.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import PASSWORD, bearer, upload_and_register
from clips import make_clip
from services import RedisServer
from test_library import make_site, site_settings, video

from clipsync import cache
from clipsync.models import User, VideoStatus

MASTER = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=426x240\n240p/index.m3u8\n"  # noqa: E501
SRT = b"1\n00:00:00,000 --> 00:00:01,000\nBonjour\n"


@pytest.fixture(params=["memory", "redis"])
async def site(request, start_app, make_settings, migrated_sqlite: Path):
    tables: dict[str, Any] = {"cache": {"backend": request.param, "ttl_seconds": 3600}}
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        tables["queue"] = {"redis_url": server.url}
    app, client, people = await make_site(
        start_app, site_settings(make_settings, migrated_sqlite, **tables)
    )
    assert cache.current().name == request.param
    return app, client, people


async def stored_video(app, owner: User, status=VideoStatus.APPROVED, title="Clip"):
    row = await video(app, owner, status, title=title)

    async def body():
        yield MASTER.encode()

    await app.ctx.backends.storage.put_stream(row.hls_key, body())
    return row


async def listed(client: httpx.AsyncClient, token: str) -> dict[str, dict]:
    """The list (numbered, with its count) and its first keyset page must agree."""
    answer = await client.get("/api/videos?pageSize=100", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["total"] == len(found["items"])
    keyset = await client.get("/api/videos?pageSize=100&after=", headers=bearer(token))
    assert [v["id"] for v in keyset.json()["items"]] == [v["id"] for v in found["items"]]
    return {item["id"]: item for item in found["items"]}


async def detail(client: httpx.AsyncClient, token: str, video_id: Any) -> httpx.Response:
    return await client.get(f"/api/videos/{video_id}", headers=bearer(token))


async def master(client: httpx.AsyncClient, token: str, video_id: Any) -> httpx.Response:
    return await client.get(f"/hls/{video_id}/master.m3u8", headers=bearer(token))


async def sees(client: httpx.AsyncClient, token: str, video_id: Any) -> tuple[bool, int, int]:
    """(in the list, detail status, master playlist status): primes all three."""
    in_list = str(video_id) in await listed(client, token)
    return (
        in_list,
        (await detail(client, token, video_id)).status_code,
        (await master(client, token, video_id)).status_code,
    )


async def sign_in(client: httpx.AsyncClient, email: str) -> str:
    answer = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


async def me(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/api/auth/me", headers=bearer(token))).status_code


# --- the person ----------------------------------------------------------------------------


async def test_a_category_change_ends_the_token_and_shows_the_new_category(site) -> None:
    app, client, people = site
    staff_clip = await stored_video(app, people["uploader"][0])
    dealer_clip = await stored_video(app, people["dealer"][0])
    viewer, token = people["viewer"]
    assert await sees(client, token, staff_clip.id) == (True, 200, 200)
    assert await sees(client, token, dealer_clip.id) == (False, 404, 404)
    changed = await client.patch(
        f"/api/admin/users/{viewer.id}",
        json={"categoryRole": "dealers"},
        headers=bearer(people["admin"][1]),
    )
    assert changed.status_code == 200, changed.text
    assert await me(client, token) == 401
    fresh = await sign_in(client, "viewer@example.org")
    assert await sees(client, fresh, staff_clip.id) == (False, 404, 404)
    assert await sees(client, fresh, dealer_clip.id) == (True, 200, 200)


async def test_a_role_change_ends_the_token_and_shows_what_the_new_role_sees(site) -> None:
    app, client, people = site
    ready = await stored_video(app, people["uploader"][0], VideoStatus.READY)
    viewer, token = people["viewer"]
    assert await sees(client, token, ready.id) == (False, 404, 404)
    changed = await client.patch(
        f"/api/admin/users/{viewer.id}", json={"role": "editor"}, headers=bearer(people["admin"][1])
    )
    assert changed.status_code == 200, changed.text
    assert await me(client, token) == 401
    fresh = await sign_in(client, "viewer@example.org")
    assert await sees(client, fresh, ready.id) == (True, 200, 200)


async def test_a_deactivated_account_is_refused_at_once(site) -> None:
    _app, client, people = site
    viewer, token = people["viewer"]
    assert await me(client, token) == 200
    changed = await client.patch(
        f"/api/admin/users/{viewer.id}", json={"active": False}, headers=bearer(people["admin"][1])
    )
    assert changed.status_code == 200, changed.text
    assert await me(client, token) == 401
    assert (await client.get("/api/videos", headers=bearer(token))).status_code == 401


async def test_a_token_version_bump_ends_every_other_token_at_once(site) -> None:
    app, client, people = site
    viewer, first = people["viewer"]
    second = app.ctx.accounts.start_session(viewer).token
    assert await me(client, first) == 200 and await me(client, second) == 200
    changed = await client.post(
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "another horse battery"},
        headers=bearer(first),
    )
    assert changed.status_code == 200, changed.text
    assert await me(client, second) == 401
    assert await me(client, changed.json()["token"]) == 200


async def test_signing_out_ends_the_token_at_once(site) -> None:
    _app, client, _people = site
    token = await sign_in(client, "viewer@example.org")
    assert await me(client, token) == 200
    assert (await client.post("/api/auth/logout", headers=bearer(token))).status_code in (200, 204)
    assert await me(client, token) == 401


# --- the video -----------------------------------------------------------------------------


async def test_an_approval_shows_the_video_to_its_category_at_once(site) -> None:
    app, client, people = site
    ready = await stored_video(app, people["uploader"][0], VideoStatus.READY)
    token = people["viewer"][1]
    assert await sees(client, token, ready.id) == (False, 404, 404)
    decided = await client.post(
        f"/api/admin/videos/{ready.id}/approve", headers=bearer(people["editor"][1])
    )
    assert decided.status_code == 200, decided.text
    assert await sees(client, token, ready.id) == (True, 200, 200)


async def test_a_rejection_hides_the_video_at_once(site) -> None:
    app, client, people = site
    approved = await stored_video(app, people["uploader"][0])
    token, owner = people["viewer"][1], people["uploader"][1]
    assert await sees(client, token, approved.id) == (True, 200, 200)
    assert (await listed(client, owner))[str(approved.id)]["status"] == "APPROVED"
    decided = await client.post(
        f"/api/admin/videos/{approved.id}/reject",
        json={"reason": "Not for us"},
        headers=bearer(people["editor"][1]),
    )
    assert decided.status_code == 200, decided.text
    assert await sees(client, token, approved.id) == (False, 404, 404)
    assert (await listed(client, owner))[str(approved.id)]["status"] == "REJECTED"
    assert (await master(client, owner, approved.id)).status_code == 404


async def test_an_unpublished_video_leaves_its_category_at_once(site) -> None:
    app, client, people = site
    approved = await stored_video(app, people["uploader"][0])
    token = people["viewer"][1]
    assert await sees(client, token, approved.id) == (True, 200, 200)
    done = await client.post(
        f"/api/admin/videos/{approved.id}/unpublish",
        json={"reason": "Later"},
        headers=bearer(people["admin"][1]),
    )
    assert done.status_code == 200, done.text
    assert await sees(client, token, approved.id) == (False, 404, 404)


async def test_an_edit_shows_in_the_list_and_the_detail_at_once(site) -> None:
    app, client, people = site
    approved = await stored_video(app, people["uploader"][0], title="Before")
    token = people["viewer"][1]
    assert (await listed(client, token))[str(approved.id)]["title"] == "Before"
    assert (await detail(client, token, approved.id)).json()["video"]["title"] == "Before"
    edited = await client.patch(
        f"/api/videos/{approved.id}", json={"title": "After"}, headers=bearer(people["uploader"][1])
    )
    assert edited.status_code == 200, edited.text
    assert (await listed(client, token))[str(approved.id)]["title"] == "After"
    assert (await detail(client, token, approved.id)).json()["video"]["title"] == "After"


async def test_a_moved_video_leaves_one_category_and_joins_the_other_at_once(site) -> None:
    app, client, people = site
    approved = await stored_video(app, people["uploader"][0])
    staff, dealer = people["viewer"][1], people["dealer"][1]
    assert await sees(client, staff, approved.id) == (True, 200, 200)
    assert await sees(client, dealer, approved.id) == (False, 404, 404)
    moved = await client.patch(
        f"/api/admin/videos/{approved.id}",
        json={"categoryRole": "dealers"},
        headers=bearer(people["admin"][1]),
    )
    assert moved.status_code == 200, moved.text
    assert await sees(client, staff, approved.id) == (False, 404, 404)
    assert await sees(client, dealer, approved.id) == (True, 200, 200)


async def test_a_deleted_video_is_gone_at_once(site) -> None:
    app, client, people = site
    approved = await stored_video(app, people["uploader"][0])
    token = people["viewer"][1]
    assert await sees(client, token, approved.id) == (True, 200, 200)
    deleted = await client.delete(
        f"/api/videos/{approved.id}", headers=bearer(people["uploader"][1])
    )
    assert deleted.status_code == 204, deleted.text
    assert await sees(client, token, approved.id) == (False, 404, 404)


async def test_a_new_upload_is_listed_for_its_uploader_and_its_category_at_once(site) -> None:
    _app, client, people = site
    owner, editor = people["uploader"][1], people["editor"][1]
    before = await listed(client, owner), await listed(client, editor)
    registered = await upload_and_register(client, owner, make_clip("landscape"))
    assert registered.status_code == 201, registered.text
    new = registered.json()["video"]["id"]
    assert new not in before[0] and new not in before[1]
    assert new in await listed(client, owner)
    assert new in await listed(client, editor)
    assert new not in await listed(client, people["dealer"][1])


async def test_a_caption_track_added_shows_in_the_master_playlist_at_once(site) -> None:
    app, client, people = site
    approved = await stored_video(app, people["uploader"][0])
    token = people["viewer"][1]
    assert "SUBTITLES" not in (await master(client, token, approved.id)).text
    added = await client.post(
        f"/api/videos/{approved.id}/captions",
        data={"language": "fr"},
        files={"file": ("fr.srt", SRT, "application/x-subrip")},
        headers=bearer(people["uploader"][1]),
    )
    assert added.status_code == 201, added.text
    assert 'URI="captions/fr.m3u8"' in (await master(client, token, approved.id)).text
    gone = await client.delete(
        f"/api/videos/{approved.id}/captions/fr", headers=bearer(people["uploader"][1])
    )
    assert gone.status_code == 204, gone.text
    assert "SUBTITLES" not in (await master(client, token, approved.id)).text


# --- what the cache must never do ----------------------------------------------------------


async def test_one_viewers_answers_never_reach_another(site) -> None:
    """Heads are shared by viewers of the same branch only; an owner's unpublished
    upload, primed in the owner's list, is never in a colleague's."""
    app, client, people = site
    mine = await stored_video(app, people["uploader"][0], VideoStatus.READY)
    theirs = await stored_video(app, people["viewer"][0])
    assert str(mine.id) in await listed(client, people["uploader"][1])
    assert await sees(client, people["viewer"][1], mine.id) == (False, 404, 404)
    assert await sees(client, people["dealer"][1], theirs.id) == (False, 404, 404)
    assert await sees(client, people["admin"][1], mine.id) == (True, 200, 200)
    assert cache.current().counts.hits > 0


def test_no_backend_is_left_unnamed_in_config(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).parents[1] / "config.toml", tmp_path / "config.toml")
    text = (tmp_path / "config.toml").read_text()
    assert "[cache]\n" in text and 'backend = "memory"' in text
