"""A grant whose `until` has passed gives nothing on any path: the lists and their
counts, search, the video's API and page, comments and likes, the HLS playlists, the
person's own playlists and "Shared with me", and browsing; and the video's grants list
says it has expired. Whatever offset the `until` was given in: the database compares
stored times, and SQLite compares them as text.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from clients import bearer
from sharing_world import make_people, playable, site_settings


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    app, client = await start_app(site_settings(make_settings, migrated_sqlite))
    return app, client, await make_people(app)


async def reach(client, token: str, video_id) -> dict[str, object]:
    """Every path by which a person may come to a video."""
    headers = bearer(token)
    video = str(video_id)

    async def ids(url: str) -> set[str]:
        answer = await client.get(url, headers=headers)
        assert answer.status_code == 200, (url, answer.text)
        return {item["id"] for item in answer.json()["items"]}

    async def status(url: str) -> int:
        return (await client.get(url, headers=headers)).status_code

    numbered = (await client.get("/api/videos?pageSize=100", headers=headers)).json()
    return {
        "list": video in {item["id"] for item in numbered["items"]},
        "count": numbered["total"],
        "keyset": video in await ids("/api/videos?pageSize=100&after="),
        "search": video in await ids("/api/videos?q=Renewed"),
        "shared": video in await ids("/api/videos?shared=1"),
        "browse": video in await ids("/api/videos?after=&category=staff"),
        "detail": await status(f"/api/videos/{video}"),
        "watch": await status(f"/watch/{video}"),
        "comments": await status(f"/api/videos/{video}/comments"),
        "master": await status(f"/hls/{video}/master.m3u8"),
    }


GIVES = {
    "list": True, "count": 1, "keyset": True, "search": True, "shared": True, "browse": True,
    "detail": 200, "watch": 200, "comments": 200, "master": 200,
}  # fmt: skip
NOTHING = {
    "list": False, "count": 0, "keyset": False, "search": False, "shared": False,
    "browse": False, "detail": 404, "watch": 404, "comments": 404, "master": 404,
}  # fmt: skip


@pytest.mark.parametrize("offset_hours", [0, 5, -5])
async def test_an_expired_grant_gives_nothing_anywhere(site, offset_hours: int) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    partner, partner_token = people["partner"]
    video = await playable(app, uploader, title="Renewed clip")
    grants = f"/api/videos/{video.id}/grants"
    owner = bearer(owner_token)
    # Granted with no end, then renewed with one: the second grant changes the row.
    assert (
        await client.post(grants, json={"userId": partner.id}, headers=owner)
    ).status_code == 201
    zone = timezone(timedelta(hours=offset_hours))
    until = (datetime.now(UTC) + timedelta(seconds=3)).astimezone(zone)
    renewed = await client.post(
        grants, json={"userId": partner.id, "until": until.isoformat()}, headers=owner
    )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["grant"]["state"] == "active"
    # The person puts it in a playlist of their own while they may.
    made = await client.post(
        "/api/playlists", json={"title": "Later"}, headers=bearer(partner_token)
    )
    playlist = made.json()["playlist"]["id"]
    added = await client.post(
        f"/api/playlists/{playlist}/items", json={"videoId": str(video.id)},
        headers=bearer(partner_token),
    )  # fmt: skip
    assert added.status_code == 201, added.text
    assert await reach(client, partner_token, video.id) == GIVES

    await asyncio.sleep((until - datetime.now(UTC)).total_seconds() + 0.3)
    assert await reach(client, partner_token, video.id) == NOTHING
    opened = await client.get(f"/api/playlists/{playlist}", headers=bearer(partner_token))
    assert opened.status_code == 200 and opened.json()["items"] == []
    liked = await client.put(f"/api/videos/{video.id}/like", headers=bearer(partner_token))
    assert liked.status_code == 404
    # Its uploader still sees who it was shared with, and that it has ended.
    listed = (await client.get(grants, headers=owner)).json()["items"]
    assert [(g["userId"], g["state"], g["active"]) for g in listed] == [
        (partner.id, "expired", False)
    ]
