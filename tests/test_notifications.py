"""The in-app inbox: what the uploader is told, and `/api/notifications`.

The notifications are written by the app's own publish handler as the moderation
service publishes its events, through the real API on a real (migrated) SQLite file.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clipsync_notify_inapp
import pluggy
import pytest
from clients import PASSWORD, bearer

from clipsync import PROJECT, hookspecs
from clipsync.events import Event
from clipsync.models import Notification, Role, Video, VideoStatus
from clipsync.services import notification_audience, notifications
from clipsync.sessions import SESSION_COOKIE

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(category=CATEGORIES)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    people = {}
    for name, role in [
        ("admin", Role.ADMIN),
        ("editor", Role.EDITOR),
        ("uploader", Role.USER),
        ("other", Role.USER),
    ]:
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category="staff"
        )
        people[name] = (user, app.ctx.accounts.start_session(user).token)
    return app, client, people


async def ready_video(owner, title: str = "Harbour tour") -> Video:
    return await Video.create(
        owner=owner, title=title, category=owner.category, status=VideoStatus.READY
    )


async def inbox(client, token: str, query: str = "") -> dict:
    answer = await client.get(f"/api/notifications{query}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_an_approval_tells_the_uploader_once_with_a_link_to_the_video(site) -> None:
    _app, client, people = site
    video = await ready_video(people["uploader"][0])
    approved = await client.post(
        f"/api/admin/videos/{video.id}/approve", headers=bearer(people["editor"][1])
    )
    assert approved.status_code == 200, approved.text
    listed = await inbox(client, people["uploader"][1])
    assert (listed["total"], listed["unread"]) == (1, 1)
    [item] = listed["items"]
    assert item["type"] == "video.approved"
    assert item["title"] == "“Harbour tour” was approved"
    assert item["url"] == f"/watch/{video.id}"
    assert item["videoId"] == str(video.id)
    assert item["readAt"] is None and item["createdAt"]
    # The rest of the category hears that a new video is there, not that it was approved.
    [news] = (await inbox(client, people["other"][1]))["items"]
    assert (news["type"], news["title"]) == ("video.published", "New in staff: “Harbour tour”")


async def test_a_rejection_tells_the_uploader_the_reason(site) -> None:
    _app, client, people = site
    video = await ready_video(people["uploader"][0])
    rejected = await client.post(
        f"/api/admin/videos/{video.id}/reject",
        json={"reason": "The sound is missing."},
        headers=bearer(people["editor"][1]),
    )
    assert rejected.status_code == 200, rejected.text
    [item] = (await inbox(client, people["uploader"][1]))["items"]
    assert item["type"] == "video.rejected"
    assert item["body"] == "Reason: The sound is missing."
    assert item["url"] == "/videos"


async def test_listing_pages_newest_first_and_filters_unread(site) -> None:
    _app, client, people = site
    user, token = people["uploader"]
    for number in range(notifications.PAGE_SIZE + 3):
        await Notification.create(user=user, type="video.ready", title=f"n{number}", url="/")
    first = await inbox(client, token)
    assert (first["total"], first["unread"]) == (notifications.PAGE_SIZE + 3, 23)
    assert len(first["items"]) == notifications.PAGE_SIZE
    assert first["items"][0]["title"] == f"n{notifications.PAGE_SIZE + 2}"
    second = await inbox(client, token, "?page=2")
    assert [i["title"] for i in second["items"]] == ["n2", "n1", "n0"]
    read = await client.post(
        f"/api/notifications/{second['items'][0]['id']}/read", headers=bearer(token)
    )
    assert read.status_code == 200 and read.json()["readAt"]
    unread = await inbox(client, token, "?unread=true")
    assert (unread["total"], unread["unread"]) == (22, 22)
    assert "n2" not in [i["title"] for i in unread["items"]]
    bad = await client.get("/api/notifications?unread=maybe", headers=bearer(token))
    assert bad.status_code == 400


async def test_read_all_marks_only_the_callers_notifications(site) -> None:
    _app, client, people = site
    for name in ("uploader", "other"):
        for _ in range(2):
            await Notification.create(user=people[name][0], type="video.ready", title="t")
    answer = await client.post("/api/notifications/read-all", headers=bearer(people["uploader"][1]))
    assert answer.status_code == 200 and answer.json()["marked"] == 2
    assert (await inbox(client, people["uploader"][1]))["unread"] == 0
    assert (await inbox(client, people["other"][1]))["unread"] == 2


async def test_another_persons_notification_is_404_and_stays_unread(site) -> None:
    _app, client, people = site
    theirs = await Notification.create(user=people["other"][0], type="video.ready", title="t")
    answer = await client.post(
        f"/api/notifications/{theirs.id}/read", headers=bearer(people["uploader"][1])
    )
    assert answer.status_code == 404
    assert (await Notification.get(id=theirs.id)).read_at is None
    missing = await client.post(
        "/api/notifications/999999/read", headers=bearer(people["uploader"][1])
    )
    assert missing.status_code == 404


async def test_the_inbox_needs_a_signed_in_person(site) -> None:
    _app, client, _people = site
    assert (await client.get("/api/notifications")).status_code == 401


async def test_pruning_deletes_old_read_items_and_keeps_unread_ones(site) -> None:
    _app, _client, people = site
    user = people["uploader"][0]
    old = datetime.now(UTC) - timedelta(days=40)
    old_read = await Notification.create(user=user, type="video.ready", title="a", read_at=old)
    old_unread = await Notification.create(user=user, type="video.ready", title="b")
    recent_read = await Notification.create(
        user=user, type="video.ready", title="c", read_at=datetime.now(UTC)
    )
    await Notification.filter(id__in=[old_read.id, old_unread.id]).update(created_at=old)
    assert await notifications.prune_read(30) == 1
    left = set(await Notification.all().values_list("id", flat=True))
    assert left == {old_unread.id, recent_read.id}


async def test_the_notifications_page_lists_them_and_every_page_has_the_bell(site) -> None:
    _app, client, people = site
    user, token = people["uploader"]
    await Notification.create(
        user=user, type="video.rejected", title="“<b>x</b>” was rejected", body="Reason: q"
    )
    client.cookies.set(SESSION_COOKIE, token)  # a browser's signed-in session
    page = await client.get("/notifications")
    assert page.status_code == 200, page.text
    assert "“&lt;b&gt;x&lt;/b&gt;” was rejected" in page.text  # escaped, never markup
    assert 'data-role="mark-read"' in page.text
    assert 'id="notification-bell"' in page.text
    assert "js/notifications.js" in page.text
    home = await client.get("/")
    assert 'id="notification-bell"' in home.text


def test_hook_register_notifiers_gives_the_inapp_channel() -> None:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(clipsync_notify_inapp, name="notify_inapp")
    registered = {cls.name: cls for classes in pm.hook.register_notifiers() for cls in classes}
    assert registered == {"inapp": clipsync_notify_inapp.InAppNotifier}


async def test_a_failing_channel_does_not_stop_the_inbox(site, monkeypatch) -> None:
    _app, client, people = site

    class Broken:
        name = "broken"

        async def deliver(self, message: notifications.Message) -> None:
            raise ConnectionError("the channel is down")

    installed = notifications._installed
    monkeypatch.setattr(installed, "notifiers", (Broken(), *installed.notifiers))
    video = await ready_video(people["uploader"][0])
    approved = await client.post(
        f"/api/admin/videos/{video.id}/approve", headers=bearer(people["editor"][1])
    )
    assert approved.status_code == 200, approved.text
    assert (await inbox(client, people["uploader"][1]))["total"] == 1


async def test_a_move_tells_the_uploader_where_the_video_went(site) -> None:
    _app, client, people = site
    video = await ready_video(people["uploader"][0])
    moved = await client.patch(
        f"/api/admin/videos/{video.id}",
        json={"categoryRole": "dealers"},
        headers=bearer(people["admin"][1]),
    )
    assert moved.status_code == 200, moved.text
    [item] = (await inbox(client, people["uploader"][1]))["items"]
    assert (item["type"], item["title"]) == ("video.moved", "“Harbour tour” was moved")
    assert item["body"] == "It moved from staff to dealers."


def test_a_failure_names_the_reason_and_links_to_my_videos() -> None:
    video = Video(id=uuid.uuid4(), owner_id=7, title="", original_filename="a.mov")
    video.error = "ffmpeg: the file has no video stream"
    message = notification_audience.uploader_message(Event("video.failed", {}), video)
    assert message is not None
    assert (message.user_id, message.title, message.url) == (
        7,
        "“a.mov” could not be processed",
        "/videos",
    )
    assert message.body == "Reason: ffmpeg: the file has no video stream"
    assert notification_audience.uploader_message(Event("video.status", {}), video) is None
