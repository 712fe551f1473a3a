"""Access beyond one category never serves a stale answer, on both cache backends.

As tests/test_cache_invalidation.py does for the rest: each test primes the cache
through the API (the list with its count and its first keyset page, the detail, the
master playlist) as the person concerned, makes one change through the API, and
checks that the very next answers are fresh (the cache's TTL is an hour):

- a grant made, then removed: the video's tag and the grantee's (`user:<id>`);
- a video published to one more category, then taken out of it: the video's tag and
  the lists (`lists:all` holds the heads of the "published to" branches);
- a person put in one more category, then taken out: the person's tag (their cached
  memberships; the heads are keyed by category, shared by everyone in it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from clients import bearer
from services import RedisServer
from test_cache_invalidation import sees, sign_in, stored_video
from test_library import make_site, site_settings

from clipsync import cache
from clipsync.models import VideoGrant

NOTHING = (False, 404, 404)
EVERYTHING = (True, 200, 200)


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


async def test_a_grant_shows_and_hides_the_video_at_once(site) -> None:
    app, client, people = site
    clip = await stored_video(app, people["uploader"][0])
    dealer, token = people["dealer"]
    owner = people["uploader"][1]
    assert await sees(client, token, clip.id) == NOTHING
    made = await client.post(
        f"/api/videos/{clip.id}/grants", json={"userId": dealer.id}, headers=bearer(owner)
    )
    assert made.status_code == 201, made.text
    assert await sees(client, token, clip.id) == EVERYTHING
    grant = made.json()["grant"]["id"]
    removed = await client.delete(f"/api/videos/{clip.id}/grants/{grant}", headers=bearer(owner))
    assert removed.status_code == 204
    assert await sees(client, token, clip.id) == NOTHING
    assert not await VideoGrant.exists()


async def test_a_second_category_of_a_video_shows_and_hides_it_at_once(site) -> None:
    app, client, people = site
    clip = await stored_video(app, people["uploader"][0])
    _, token = people["dealer"]
    admin = people["admin"][1]
    url = f"/api/videos/{clip.id}/categories"
    assert await sees(client, token, clip.id) == NOTHING
    published = await client.put(url, json={"categories": ["dealers"]}, headers=bearer(admin))
    assert published.status_code == 200, published.text
    assert await sees(client, token, clip.id) == EVERYTHING
    taken_back = await client.put(url, json={"categories": []}, headers=bearer(admin))
    assert taken_back.status_code == 200
    assert await sees(client, token, clip.id) == NOTHING


async def test_a_second_category_of_a_person_shows_and_hides_at_once(site) -> None:
    app, client, people = site
    staff_clip = await stored_video(app, people["uploader"][0])
    dealer, token = people["dealer"]
    admin = people["admin"][1]
    assert await sees(client, token, staff_clip.id) == NOTHING
    changed = await client.patch(
        f"/api/admin/users/{dealer.id}",
        json={"categories": ["dealers", "staff"]},
        headers=bearer(admin),
    )
    assert changed.status_code == 200, changed.text
    token = await sign_in(client, "dealer@example.org")
    assert await sees(client, token, staff_clip.id) == EVERYTHING
    changed = await client.patch(
        f"/api/admin/users/{dealer.id}", json={"categories": ["dealers"]}, headers=bearer(admin)
    )
    assert changed.json()["user"]["categories"] == ["dealers"]
    token = await sign_in(client, "dealer@example.org")
    assert await sees(client, token, staff_clip.id) == NOTHING
