"""Share links: made by a video's uploader or moderators, opened by whoever holds them
(signed in, or anyone with `[sharing] allow_public_links`), logged on every use, and
dead at once when revoked or expired: the page, the API, the playlists and every
segment answer 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clients import bearer
from sharing_world import make_people, play, playable, site_settings

from clipsync.models import AuditEntry, ShareLink, ShareLinkUse, VideoStatus
from clipsync.services import share_links
from clipsync.sessions import CSRF_COOKIE, SESSION_COOKIE


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    app, client = await start_app(site_settings(make_settings, migrated_sqlite))
    return app, client, await make_people(app)


@pytest.fixture
async def public_site(start_app, make_settings, migrated_sqlite: Path):
    settings = site_settings(make_settings, migrated_sqlite, sharing={"allow_public_links": True})
    app, client = await start_app(settings)
    return app, client, await make_people(app)


async def make_link(client, token: str, video_id, **body) -> dict:
    response = await client.post(
        f"/api/videos/{video_id}/links",
        json={"expiresInHours": 24} | body,
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_link_opens_the_video_for_someone_of_another_category(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    _, partner = people["partner"]
    video = await playable(app, uploader)
    assert (await client.get(f"/api/videos/{video.id}", headers=bearer(partner))).status_code == 404

    made = await make_link(client, owner_token, video.id)
    token = made["token"]
    assert len(token) >= 43 and made["url"].endswith(f"/s/{token}")
    row = await ShareLink.get(id=made["id"])
    assert row.token_hash == share_links.hash_token(token) and token not in row.token_hash

    opened = await client.get(f"/api/share/{token}", headers=bearer(partner))
    assert opened.status_code == 200, opened.text
    shared = opened.json()["video"]
    assert shared["hls"] == f"/hls/{video.id}/share/{token}/master.m3u8"
    assert shared["poster"] == f"/hls/{video.id}/share/{token}/poster.jpg"
    assert "originalFilename" not in shared  # what anyone who may watch sees
    page = await client.get(f"/s/{token}", headers=bearer(partner))
    assert page.status_code == 200 and f"/hls/{video.id}/share/{token}/master.m3u8" in page.text

    base = f"/hls/{video.id}/share/{token}"
    assert (await play(client, base, bearer(partner)))[:3] == (200, 200, 200)
    # The link opens this video only, and is no way into the normal path.
    assert (await play(client, f"/hls/{video.id}", bearer(partner)))[:3] == (404, 404, 404)
    other = await playable(app, uploader, title="Other")
    assert (
        await client.get(f"/hls/{other.id}/share/{token}/master.m3u8", headers=bearer(partner))
    ).status_code == 404

    # Every opening of the page or the API is a logged use; playback is not.
    row = await ShareLink.get(id=made["id"])
    assert row.uses == 2 and row.last_used_at is not None
    uses = await ShareLinkUse.filter(link_id=row.id)
    assert len(uses) == 2 and {u.user_id for u in uses} == {people["partner"][0].id}
    assert uses[0].address == "203.0.113.7"
    assert await AuditEntry.filter(action="share_link_create", video_id=video.id).exists()


async def test_revoking_kills_the_page_the_playlists_and_every_segment_at_once(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    _, partner = people["partner"]
    video = await playable(app, uploader)
    made = await make_link(client, owner_token, video.id)
    token = made["token"]
    base = f"/hls/{video.id}/share/{token}"
    master, media, segment, segment_url = await play(client, base, bearer(partner))
    assert (master, media, segment) == (200, 200, 200)
    assert "sig=" in segment_url  # a signed URL: sent on its signature alone, until now

    revoked = await client.delete(
        f"/api/videos/{video.id}/links/{made['id']}", headers=bearer(owner_token)
    )
    assert revoked.status_code == 204
    assert (await client.get(segment_url)).status_code == 404  # the next segment fails
    assert (await play(client, base, bearer(partner)))[:2] == (404, 404)
    assert (await client.get(f"/api/share/{token}", headers=bearer(partner))).status_code == 404
    assert (await client.get(f"/s/{token}", headers=bearer(partner))).status_code == 404
    listed = await client.get(f"/api/videos/{video.id}/links", headers=bearer(owner_token))
    assert [link["state"] for link in listed.json()["items"]] == ["revoked"]
    assert await AuditEntry.filter(action="share_link_revoke", video_id=video.id).exists()


async def test_an_expired_link_is_dead_everywhere(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    _, partner = people["partner"]
    video = await playable(app, uploader)
    made = await make_link(client, owner_token, video.id)
    token = made["token"]
    base = f"/hls/{video.id}/share/{token}"
    *_, segment_url = await play(client, base, bearer(partner))
    await ShareLink.filter(id=made["id"]).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert (await client.get(segment_url)).status_code == 404
    assert (await play(client, base, bearer(partner)))[:2] == (404, 404)
    assert (await client.get(f"/api/share/{token}", headers=bearer(partner))).status_code == 404
    assert (await client.get(f"/s/{token}", headers=bearer(partner))).status_code == 404


async def test_a_link_stops_when_its_video_is_unpublished(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    _, partner = people["partner"]
    video = await playable(app, uploader)
    token = (await make_link(client, owner_token, video.id))["token"]
    await video.filter(id=video.id).update(status=VideoStatus.READY)
    assert (await client.get(f"/api/share/{token}", headers=bearer(partner))).status_code == 404


async def test_signed_out_visitors_sign_in_first(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    video = await playable(app, uploader)
    token = (await make_link(client, owner_token, video.id))["token"]
    page = await client.get(f"/s/{token}")
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    assert (await client.get(f"/api/share/{token}")).status_code == 401
    assert (await client.get(f"/hls/{video.id}/share/{token}/master.m3u8")).status_code == 401


async def test_anyone_opens_a_link_when_links_are_public(public_site) -> None:
    app, client, people = public_site
    uploader, owner_token = people["uploader"]
    video = await playable(app, uploader)
    token = (await make_link(client, owner_token, video.id))["token"]
    assert (await client.get(f"/s/{token}")).status_code == 200
    assert (await client.get(f"/api/share/{token}")).status_code == 200
    assert (await play(client, f"/hls/{video.id}/share/{token}"))[:3] == (200, 200, 200)
    assert (await ShareLinkUse.get(link__video_id=video.id).first()).user_id is None


async def test_a_password_link_asks_for_it_and_holds_back_guesses(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    _, partner = people["partner"]
    video = await playable(app, uploader)
    made = await make_link(client, owner_token, video.id, password="open sesame")
    token = made["token"]
    assert made["hasPassword"] is True
    answer = await client.get(f"/api/share/{token}", headers=bearer(partner))
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "password_required"
    wrong = await client.get(
        f"/api/share/{token}", headers=bearer(partner) | {"X-Share-Password": "nope"}
    )
    assert wrong.status_code == 422
    right = await client.get(
        f"/api/share/{token}", headers=bearer(partner) | {"X-Share-Password": "open sesame"}
    )
    assert right.status_code == 200
    # The HLS files need the proof too.
    assert (
        await client.get(f"/hls/{video.id}/share/{token}/master.m3u8", headers=bearer(partner))
    ).status_code == 404

    # The page: a form, then the cookie of this link.
    client.cookies.set(SESSION_COOKIE, partner)
    page = await client.get(f"/s/{token}")
    assert page.status_code == 200 and 'id="share-password-form"' in page.text
    csrf = client.cookies.get(CSRF_COOKIE)
    sent = await client.post(f"/s/{token}", data={"password": "open sesame", "csrf_token": csrf})
    assert sent.status_code == 303, sent.text
    proof = sent.cookies.get(f"clipsync_share_{made['id']}")
    assert proof and "open sesame" not in proof
    page = await client.get(f"/s/{token}")
    assert page.status_code == 200 and 'id="player"' in page.text
    assert (await play(client, f"/hls/{video.id}/share/{token}"))[:3] == (200, 200, 200)

    # Ten wrong guesses from one address, then a wait (the right password too).
    client.cookies.delete(f"clipsync_share_{made['id']}")
    for _ in range(9):
        await client.get(f"/api/share/{token}", headers={"X-Share-Password": "guess"})
    held = await client.get(f"/api/share/{token}", headers={"X-Share-Password": "open sesame"})
    assert held.status_code == 429 and int(held.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (None, 400, "not valid JSON"),
        ({}, 422, "expiresInHours"),
        ({"expiresInHours": 0}, 422, "from 1 to"),
        ({"expiresInHours": "24"}, 422, "whole number"),
        ({"expiresInHours": True}, 422, "whole number"),
        ({"expiresInHours": 24, "password": "abc"}, 422, "password"),
        ({"expiresInHours": 24, "colour": "red"}, 422, "colour"),
    ],
)
async def test_bad_link_bodies_are_refused_with_a_clear_message(site, body, status, words) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    video = await playable(app, uploader)
    if body is None:
        response = await client.post(
            f"/api/videos/{video.id}/links", content=b"not json", headers=bearer(owner_token)
        )
    else:
        response = await client.post(
            f"/api/videos/{video.id}/links", json=body, headers=bearer(owner_token)
        )
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]
    assert not await ShareLink.exists()


async def test_only_the_uploader_and_moderators_manage_links(site) -> None:
    app, client, people = site
    uploader, owner_token = people["uploader"]
    video = await playable(app, uploader)
    made = await make_link(client, owner_token, video.id)
    for name in ("colleague", "dealer", "dealer_editor", "partner"):
        token = people[name][1]
        assert (
            await client.post(
                f"/api/videos/{video.id}/links", json={"expiresInHours": 1}, headers=bearer(token)
            )
        ).status_code == 404
        assert (
            await client.get(f"/api/videos/{video.id}/links", headers=bearer(token))
        ).status_code == 404
        assert (
            await client.delete(f"/api/videos/{video.id}/links/{made['id']}", headers=bearer(token))
        ).status_code == 404
    for name in ("editor", "admin"):
        token = people[name][1]
        assert (
            await client.get(f"/api/videos/{video.id}/links", headers=bearer(token))
        ).status_code == 200
    assert (
        await client.delete(f"/api/videos/{video.id}/links/999", headers=bearer(owner_token))
    ).status_code == 404
    pending = await playable(app, uploader, status=VideoStatus.READY)
    refused = await client.post(
        f"/api/videos/{pending.id}/links", json={"expiresInHours": 1}, headers=bearer(owner_token)
    )
    assert refused.status_code == 409 and "approved" in refused.json()["error"]["message"]


async def test_unknown_tokens_are_404(site) -> None:
    _app, client, people = site
    _, partner = people["partner"]
    for token in ("x", "a" * 43, "a" * 500):
        assert (await client.get(f"/api/share/{token}", headers=bearer(partner))).status_code == 404
        assert (await client.get(f"/s/{token}", headers=bearer(partner))).status_code == 404
