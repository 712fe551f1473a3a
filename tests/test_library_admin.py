"""The moderators' library: every video they may moderate, in any status, filtered and
sorted; unpublishing and deleting one, through the API, the bulk actions and the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clients import bearer
from test_library import PEOPLE, make_site, sign_in, site_settings, stored, video

from clipsync import events
from clipsync.models import AuditEntry, Role, Video, VideoStatus
from clipsync.services.library import moderated_by
from clipsync.services.videos import can_moderate
from clipsync.sessions import CSRF_COOKIE

EVERY_STATUS = list(VideoStatus)


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    return await make_site(start_app, site_settings(make_settings, migrated_sqlite))


async def library(client, token: str, **query) -> dict:
    response = await client.get("/api/admin/videos", params=query, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def titles(found: dict) -> list[str]:
    return [item["title"] for item in found["items"]]


async def test_moderated_by_agrees_with_can_moderate_video_by_video(site) -> None:
    app, _, people = site
    for owner in ("uploader", "dealer", "editor"):
        for status in EVERY_STATUS:
            await video(app, people[owner][0], status, title=f"{owner} {status}")
    everything = await Video.all()
    for name, _, _ in PEOPLE:
        user = people[name][0]
        listed = {v.id for v in await moderated_by(user)}
        assert listed == {v.id for v in everything if can_moderate(user, v)}, name


async def test_each_moderator_lists_what_they_moderate_in_any_status(site) -> None:
    app, client, people = site
    for owner in ("uploader", "dealer"):
        for status in EVERY_STATUS:
            await video(app, people[owner][0], status, title=f"{owner} {status}")
    everything = await library(client, people["admin"][1], pageSize=100)
    assert everything["total"] == 12
    assert everything["items"][0]["uploaderEmail"] in ("uploader@example.org", "dealer@example.org")
    staff = await library(client, people["editor"][1], pageSize=100)
    assert sorted(titles(staff)) == sorted(f"uploader {s}" for s in EVERY_STATUS)
    # Editors never reach another category, even by asking for it.
    assert (await library(client, people["editor"][1], category="dealers"))["total"] == 0
    for name in ("uploader", "viewer"):
        response = await client.get("/api/admin/videos", headers=bearer(people[name][1]))
        assert response.status_code == 403
    assert (await client.get("/api/admin/videos")).status_code == 401


async def test_filters_sort_and_pages(site) -> None:
    app, client, people = site
    uploader, dealer = people["uploader"][0], people["dealer"][0]
    now = datetime.now(UTC)
    for age, owner, status, title in [
        (3, uploader, VideoStatus.APPROVED, "Banana demo"),
        (2, uploader, VideoStatus.READY, "apple talk"),
        (1, dealer, VideoStatus.APPROVED, "Cherry Demo"),
        (0, dealer, VideoStatus.FAILED, "date"),
    ]:
        row = await video(app, owner, status, title=title)
        await Video.filter(id=row.id).update(created_at=now - timedelta(days=age))
    token = people["admin"][1]
    assert titles(await library(client, token)) == [
        "date",
        "Cherry Demo",
        "apple talk",
        "Banana demo",
    ]
    assert titles(await library(client, token, sort="oldest"))[0] == "Banana demo"
    assert titles(await library(client, token, sort="title")) == [
        "apple talk",
        "Banana demo",
        "Cherry Demo",
        "date",
    ]
    assert titles(await library(client, token, status="APPROVED", sort="oldest")) == [
        "Banana demo",
        "Cherry Demo",
    ]
    assert titles(await library(client, token, category="dealers")) == ["date", "Cherry Demo"]
    assert titles(await library(client, token, uploader="DEALER@")) == ["date", "Cherry Demo"]
    assert titles(await library(client, token, uploader=str(uploader.id))) == [
        "apple talk",
        "Banana demo",
    ]
    assert titles(await library(client, token, q="demo", sort="oldest")) == [
        "Banana demo",
        "Cherry Demo",
    ]
    first = await library(client, token, pageSize=3)
    second = await library(client, token, pageSize=3, page=2)
    assert (first["total"], len(first["items"]), titles(second)) == (4, 3, ["Banana demo"])

    for query, field in [
        ({"status": "GONE"}, "status"),
        ({"sort": "views"}, "sort"),
        ({"q": "x" * 201}, "q"),
    ]:
        response = await client.get("/api/admin/videos", params=query, headers=bearer(token))
        assert response.status_code == 422 and response.json()["error"]["field"] == field
    response = await client.get("/api/admin/videos?page=0", headers=bearer(token))
    assert response.status_code == 400


async def test_unpublish_hides_an_approved_video_again(site) -> None:
    app, client, people = site
    clip = await video(app, people["uploader"][0], VideoStatus.APPROVED)
    await Video.filter(id=clip.id).update(moderated_at=datetime.now(UTC))
    viewer = bearer(people["viewer"][1])
    assert (await client.get(f"/api/videos/{clip.id}", headers=viewer)).status_code == 200
    changes = []

    class Observer:
        from clipsync import hookimpl

        @hookimpl
        def video_status_changed(self, video, old, new):
            changes.append((str(video.id), old, new))

    app.ctx.plugins.pm.register(Observer(), name="observer")
    try:
        async with events.subscribe("video.") as news:
            response = await client.post(
                f"/api/admin/videos/{clip.id}/unpublish",
                json={"reason": "Wrong audience"},
                headers=bearer(people["editor"][1]),
            )
            event = await news.get(within=2)
    finally:
        app.ctx.plugins.pm.unregister(name="observer")
    assert response.status_code == 200, response.text
    assert response.json()["video"]["status"] == "READY"
    assert event is not None and event.name == "video.unpublished"
    assert event.data["status"] == "READY" and event.data["videoId"] == str(clip.id)
    assert changes == [(str(clip.id), "APPROVED", "READY")]
    row = await Video.get(id=clip.id)
    assert row.status == VideoStatus.READY and row.moderated_at is None
    assert (await client.get(f"/api/videos/{clip.id}", headers=viewer)).status_code == 404
    entry = await AuditEntry.get(video_id=clip.id)
    assert (entry.action, entry.actor_email, entry.reason) == (
        "unpublish",
        "editor@example.org",
        "Wrong audience",
    )
    # It waits in the queue for a decision again.
    queue = await client.get("/api/admin/videos/pending", headers=bearer(people["editor"][1]))
    assert [v["id"] for v in queue.json()["items"]] == [str(clip.id)]

    # Only an approved video can be unpublished; nobody else's moderator may.
    again = await client.post(
        f"/api/admin/videos/{clip.id}/unpublish", headers=bearer(people["editor"][1])
    )
    assert again.status_code == 409
    other = await video(app, people["dealer"][0], VideoStatus.APPROVED)
    refused = await client.post(
        f"/api/admin/videos/{other.id}/unpublish", headers=bearer(people["editor"][1])
    )
    assert refused.status_code == 404
    refused = await client.post(
        f"/api/admin/videos/{other.id}/unpublish", headers=bearer(people["dealer"][1])
    )
    assert refused.status_code == 403
    assert (await Video.get(id=other.id)).status == VideoStatus.APPROVED


async def test_a_moderator_deletes_a_video_in_any_status(site) -> None:
    app, client, people = site
    for status in (VideoStatus.REJECTED, VideoStatus.APPROVED, VideoStatus.FAILED):
        clip = await video(app, people["uploader"][0], status)
        response = await client.request(
            "DELETE",
            f"/api/admin/videos/{clip.id}",
            json={"reason": "Duplicate"},
            headers=bearer(people["editor"][1]),
        )
        assert response.status_code == 204, response.text
        assert not await Video.exists(id=clip.id) and await stored(app, clip.id) == []
        entry = await AuditEntry.filter(action="moderator_delete").first()
        assert (entry.actor_email, entry.reason, entry.category) == (
            "editor@example.org",
            "Duplicate",
            "staff",
        )
        assert entry.details["videoId"] == str(clip.id)
        assert entry.details["ownerId"] == people["uploader"][0].id
        await entry.delete()
    other = await video(app, people["dealer"][0])
    for name, status in [("editor", 404), ("viewer", 403), ("dealer", 403)]:
        response = await client.delete(
            f"/api/admin/videos/{other.id}", headers=bearer(people[name][1])
        )
        assert response.status_code == status, name
    assert len(await stored(app, other.id)) > 0
    response = await client.delete(
        f"/api/admin/videos/{other.id}", headers=bearer(people["admin"][1])
    )
    assert response.status_code == 204 and not await Video.exists(id=other.id)


async def test_bulk_unpublish_and_delete(site) -> None:
    app, client, people = site
    approved = [await video(app, people["uploader"][0]) for _ in range(2)]
    ready = await video(app, people["uploader"][0], VideoStatus.READY)
    foreign = await video(app, people["dealer"][0])
    editor = bearer(people["editor"][1])
    ids = [str(v.id) for v in (*approved, ready, foreign)]
    response = await client.post(
        "/api/admin/videos/bulk", json={"action": "unpublish", "videoIds": ids}, headers=editor
    )
    results = response.json()["results"]
    assert [(r["ok"], r.get("httpStatus")) for r in results] == [
        (True, None),
        (True, None),
        (False, 409),
        (False, 404),
    ]
    assert {v.status for v in await Video.filter(id__in=ids[:3])} == {VideoStatus.READY}

    response = await client.post(
        "/api/admin/videos/bulk", json={"action": "delete", "videoIds": ids}, headers=editor
    )
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, True, True, False]
    assert results[0]["status"] == "DELETED"
    assert [str(v.id) for v in await Video.all()] == [str(foreign.id)]
    response = await client.post(
        "/api/admin/videos/bulk", json={"action": "erase", "videoIds": ids}, headers=editor
    )
    assert response.status_code == 422


# --- the page --------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.EDITOR, Role.ADMIN])
async def test_the_library_page_lists_filters_and_unpublishes(site, role) -> None:
    app, client, people = site
    name = "editor" if role == Role.EDITOR else "admin"
    clip = await video(app, people["uploader"][0], VideoStatus.APPROVED, title="On show")
    await video(app, people["uploader"][0], VideoStatus.FAILED, title="Broken")
    await video(app, people["dealer"][0], VideoStatus.APPROVED, title="Dealer clip")
    csrf = await sign_in(client, f"{name}@example.org")

    page = await client.get("/admin/library")
    assert page.status_code == 200
    assert 'href="/admin/library" aria-current="page"' in page.text
    assert "On show" in page.text and "Broken" in page.text
    assert ("Dealer clip" in page.text) is (role == Role.ADMIN)
    filtered = await client.get("/admin/library?status=FAILED")
    assert "Broken" in filtered.text and "On show" not in filtered.text
    wrong = await client.get("/admin/library?sort=views")
    assert wrong.status_code == 422 and "sort is one of" in wrong.text

    back = "/admin/library?status=APPROVED&page=1"
    done = await client.post(
        f"/admin/library/{clip.id}/unpublish", data={"csrf_token": csrf, "back": back}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/library?status=APPROVED&page=1&done=unpublished"
    assert (await Video.get(id=clip.id)).status == VideoStatus.READY
    shown = await client.get(done.headers["location"])
    assert "The video was unpublished" in shown.text
    # A second try says so; a `back` elsewhere is ignored.
    again = await client.post(
        f"/admin/library/{clip.id}/unpublish",
        data={"csrf_token": csrf, "back": "https://evil.example/"},
    )
    assert again.headers["location"] == "/admin/library?done=unchanged"
    forged = await client.post(f"/admin/library/{clip.id}/unpublish", data={"back": back})
    assert forged.status_code == 403


async def test_the_library_page_deletes_after_a_confirmation(site) -> None:
    app, client, people = site
    clip = await video(app, people["uploader"][0], VideoStatus.REJECTED, title="Old one")
    csrf = await sign_in(client, "editor@example.org")
    page = await client.get("/admin/library?q=old")
    link = re.search(r'href="(/admin/library/[^"]+/delete\?[^"]+)"', page.text).group(1)
    confirm = await client.get(link.replace("&amp;", "&"))
    assert confirm.status_code == 200 and "Delete “Old one”?" in confirm.text
    assert await Video.exists(id=clip.id)
    action = re.search(r'<form method="post" action="([^"]+)"', confirm.text).group(1)
    done = await client.post(
        action.replace("&amp;", "&"), data={"csrf_token": csrf, "reason": "Too old"}
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith("/admin/library?q=old")
    assert done.headers["location"].endswith("done=deleted")
    assert not await Video.exists(id=clip.id) and await stored(app, clip.id) == []
    entry = await AuditEntry.get(action="moderator_delete")
    assert entry.reason == "Too old"

    client.cookies.clear()
    await sign_in(client, "viewer@example.org")
    assert (await client.get("/admin/library")).status_code == 403
    kept = await video(app, people["uploader"][0])
    token = client.cookies[CSRF_COOKIE]
    refused = await client.post(f"/admin/library/{kept.id}/delete", data={"csrf_token": token})
    assert refused.status_code == 403 and await Video.exists(id=kept.id)


async def test_an_editor_cannot_reach_another_categorys_video_from_the_page(site) -> None:
    app, client, people = site
    foreign = await video(app, people["dealer"][0])
    csrf = await sign_in(client, "editor@example.org")
    assert (await client.get(f"/admin/library/{foreign.id}/delete")).status_code == 404
    post = await client.post(f"/admin/library/{foreign.id}/delete", data={"csrf_token": csrf})
    assert post.status_code == 404 and await Video.exists(id=foreign.id)
