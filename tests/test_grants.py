"""Grants: a video shared with named people, whatever their category. Its uploader or a
moderator grants it; the person sees it (detail, watch page, playback, "Shared with
me") and is notified; an expired grant, or one for a deactivated account, gives
nothing; removing a grant takes the video away at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clients import bearer
from sharing_world import make_people, play, playable, site_settings

from clipsync.models import AuditEntry, Notification, User, VideoGrant, VideoStatus
from clipsync.services import memberships, videos


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    app, client = await start_app(site_settings(make_settings, migrated_sqlite))
    return app, client, await make_people(app)


async def sees(client, token: str, video_id) -> dict[str, int | bool]:
    """What a person gets of a video: detail, watch page, master playlist, in lists."""
    headers = bearer(token)
    listed = (await client.get("/api/videos?pageSize=100", headers=headers)).json()["items"]
    shared = (await client.get("/api/videos?shared=1", headers=headers)).json()["items"]
    return {
        "detail": (await client.get(f"/api/videos/{video_id}", headers=headers)).status_code,
        "watch": (await client.get(f"/watch/{video_id}", headers=headers)).status_code,
        "master": (await client.get(f"/hls/{video_id}/master.m3u8", headers=headers)).status_code,
        "listed": str(video_id) in {v["id"] for v in listed},
        "shared": str(video_id) in {v["id"] for v in shared},
    }


NOTHING = {"detail": 404, "watch": 404, "master": 404, "listed": False, "shared": False}
EVERYTHING = {"detail": 200, "watch": 200, "master": 200, "listed": True, "shared": True}


async def test_a_grant_shows_the_video_to_a_person_of_another_category(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    partner, partner_token = people["partner"]
    video = await playable(app, uploader)
    assert await sees(client, partner_token, video.id) == NOTHING

    made = await client.post(
        f"/api/videos/{video.id}/grants", json={"email": "Partner@Example.org"},
        headers=bearer(owner_token),
    )  # fmt: skip
    assert made.status_code == 201, made.text
    grant = made.json()["grant"]
    assert grant["userId"] == partner.id and grant["active"] is True and grant["until"] is None
    assert await sees(client, partner_token, video.id) == EVERYTHING
    assert (await play(client, f"/hls/{video.id}", bearer(partner_token)))[:3] == (200, 200, 200)
    # Told so, with a link to it.
    told = await Notification.filter(user_id=partner.id, type="video.shared")
    assert len(told) == 1 and told[0].url == f"/watch/{video.id}"
    assert await AuditEntry.filter(action="video_grant", video_id=video.id).exists()
    shared_page = await client.get("/shared", headers=bearer(partner_token))
    assert shared_page.status_code == 200 and f"/watch/{video.id}" in shared_page.text

    listed = await client.get(f"/api/videos/{video.id}/grants", headers=bearer(owner_token))
    assert [g["email"] for g in listed.json()["items"]] == ["partner@example.org"]
    removed = await client.delete(
        f"/api/videos/{video.id}/grants/{grant['id']}", headers=bearer(owner_token)
    )
    assert removed.status_code == 204
    assert await sees(client, partner_token, video.id) == NOTHING
    assert (
        await client.delete(
            f"/api/videos/{video.id}/grants/{grant['id']}", headers=bearer(owner_token)
        )
    ).status_code == 404


async def test_a_grant_shows_only_a_published_video(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    partner, partner_token = people["partner"]
    video = await playable(app, uploader, status=VideoStatus.READY)
    made = await client.post(
        f"/api/videos/{video.id}/grants", json={"userId": partner.id}, headers=bearer(owner_token)
    )
    assert made.status_code == 201
    assert await sees(client, partner_token, video.id) == NOTHING
    video.status = VideoStatus.APPROVED
    await video.save()
    assert await sees(client, partner_token, video.id) == EVERYTHING


async def test_an_expired_grant_gives_nothing(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    partner, partner_token = people["partner"]
    video = await playable(app, uploader)
    until = datetime.now(UTC) + timedelta(seconds=3)
    made = await client.post(
        f"/api/videos/{video.id}/grants", json={"userId": partner.id, "until": until.isoformat()},
        headers=bearer(owner_token),
    )  # fmt: skip
    assert made.status_code == 201
    assert await sees(client, partner_token, video.id) == EVERYTHING
    # Time passes; nothing announces the end: every cached answer must know it.
    await asyncio.sleep((until - datetime.now(UTC)).total_seconds() + 0.2)
    assert await sees(client, partner_token, video.id) == NOTHING
    listed = await client.get(f"/api/videos/{video.id}/grants", headers=bearer(owner_token))
    assert listed.json()["items"][0]["active"] is False


async def test_a_grant_for_a_deactivated_account_gives_nothing(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    partner, _ = people["partner"]
    dealer, _ = people["dealer"]
    video = await playable(app, uploader)
    made = await client.post(
        f"/api/videos/{video.id}/grants", json={"userId": partner.id}, headers=bearer(owner_token)
    )
    assert made.status_code == 201
    await User.filter(id=partner.id).update(is_active=False)
    person = await User.get(id=partner.id)
    await memberships.attach([person])
    assert not await videos.visible_to(person).filter(id=video.id).exists()
    assert not videos.may_see(person, video)
    listed = await client.get(f"/api/videos/{video.id}/grants", headers=bearer(owner_token))
    assert listed.json()["items"][0]["active"] is False
    # And none is made for an account deactivated already.
    await User.filter(id=dealer.id).update(is_active=False)
    refused = await client.post(
        f"/api/videos/{video.id}/grants", json={"userId": dealer.id}, headers=bearer(owner_token)
    )
    assert refused.status_code == 422 and "deactivated" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (None, 400, "not valid JSON"),
        ({}, 422, "either userId or email"),
        ({"userId": 1, "email": "a@example.org"}, 422, "either userId or email"),
        ({"userId": "7"}, 422, "whole number"),
        ({"userId": 999999}, 422, "no account"),
        ({"email": "nobody@example.org"}, 422, "no account"),
        ({"email": "not an address"}, 422, "valid email"),
        ({"email": "partner@example.org", "until": "tomorrow"}, 422, "date and time"),
        ({"email": "partner@example.org", "until": "2001-01-01T00:00:00Z"}, 422, "future"),
        ({"email": "partner@example.org", "colour": "red"}, 422, "colour"),
        ({"email": "uploader@example.org"}, 422, "uploaded the video"),
    ],
)
async def test_bad_grant_bodies_are_refused_with_a_clear_message(site, body, status, words) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    video = await playable(app, uploader)
    url = f"/api/videos/{video.id}/grants"
    if body is None:
        response = await client.post(url, content=b"{", headers=bearer(owner_token))
    else:
        response = await client.post(url, json=body, headers=bearer(owner_token))
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]
    assert not await VideoGrant.exists()


async def test_only_the_uploader_and_moderators_grant(site) -> None:
    app, client, people = site
    uploader, _ = people["uploader"]
    partner, _ = people["partner"]
    video = await playable(app, uploader)
    body = {"userId": partner.id}
    # Someone else's video: 404, even for those who may watch it.
    for name in ("colleague", "dealer", "dealer_editor"):
        token = people[name][1]
        answer = await client.post(
            f"/api/videos/{video.id}/grants", json=body, headers=bearer(token)
        )
        assert answer.status_code == 404, name
        assert (
            await client.get(f"/api/videos/{video.id}/grants", headers=bearer(token))
        ).status_code == 404
    for name in ("editor", "admin"):
        token = people[name][1]
        answer = await client.post(
            f"/api/videos/{video.id}/grants", json=body, headers=bearer(token)
        )
        assert answer.status_code in (200, 201), name
