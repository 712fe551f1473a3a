"""Who hears what, and each person's choices: the rules of issue 13, item 3 and 5.

Through a real app on a real (migrated) SQLite file: the events are published as the
services publish them, and the in-app inbox shows what each person was told.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clients import PASSWORD, bearer

from clipsync import events
from clipsync.models import Notification, Role, SiteAlert, Video, VideoStatus
from clipsync.services import site_alerts
from clipsync.services.notification_types import INVITE, TYPES
from clipsync.sessions import SESSION_COOKIE

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(category=CATEGORIES, disk={"alert_free_percent": 0})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    people = {}
    for name, role, category in [
        ("admin", Role.ADMIN, "dealers"),
        ("editor", Role.EDITOR, "staff"),
        ("dealer_editor", Role.EDITOR, "dealers"),
        ("uploader", Role.USER, "staff"),
        ("colleague", Role.USER, "staff"),
        ("dealer", Role.USER, "dealers"),
    ]:
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        people[name] = (user, app.ctx.accounts.start_session(user).token)
    return app, client, people


async def types_of(user) -> list[str]:
    return sorted(await Notification.filter(user_id=user.id).values_list("type", flat=True))


async def everyone(people) -> dict[str, list[str]]:
    return {name: await types_of(user) for name, (user, _) in people.items()}


async def staff_video(people, status=VideoStatus.READY) -> Video:
    return await Video.create(
        owner=people["uploader"][0], title="Harbour tour", category="staff", status=status
    )


async def test_a_ready_video_awaits_its_category_editors_and_the_admins(site) -> None:
    _app, _client, people = site
    video = await staff_video(people)
    await events.publish_video("video.ready", video)
    assert await everyone(people) == {
        "admin": ["video.awaiting"],
        "editor": ["video.awaiting"],
        "dealer_editor": [],
        "uploader": ["video.ready"],
        "colleague": [],
        "dealer": [],
    }
    awaiting = await Notification.get(user_id=people["editor"][0].id)
    assert awaiting.title == "“Harbour tour” awaits a decision"
    assert awaiting.url == "/admin"


async def test_an_approval_tells_the_category_but_not_the_others(site) -> None:
    _app, client, people = site
    video = await staff_video(people)
    answer = await client.post(
        f"/api/admin/videos/{video.id}/approve", headers=bearer(people["editor"][1])
    )
    assert answer.status_code == 200, answer.text
    told = await everyone(people)
    assert told["uploader"] == ["video.approved"]
    assert told["colleague"] == ["video.published"]
    # The editor who approved belongs to the category too.
    assert told["editor"] == ["video.published"]
    assert told["dealer"] == told["dealer_editor"] == told["admin"] == []


async def test_a_failure_for_good_tells_the_admins(site) -> None:
    _app, _client, people = site
    video = await staff_video(people, VideoStatus.FAILED)
    video.error = "ffmpeg: the file has no video stream"
    await video.save()
    await events.publish_video("video.failed", video)
    told = await everyone(people)
    assert told["uploader"] == ["video.failed"]
    assert told["admin"] == ["admin.transcode_failed"]
    alert = await Notification.get(user_id=people["admin"][0].id)
    assert alert.body == "Every attempt failed. Reason: ffmpeg: the file has no video stream"


async def test_preferences_show_defaults_and_change_only_what_is_sent(site) -> None:
    _app, client, people = site
    user_token = bearer(people["colleague"][1])
    shown = (await client.get("/api/notifications/preferences", headers=user_token)).json()
    assert shown["video.published"] == {"inapp": True, "email": False}
    assert shown["video.ready"] == {"inapp": True, "email": True}
    assert shown["account.new_sign_in"] == {"inapp": True, "email": True}
    # Moderation and admin types are not offered to a plain member.
    assert "video.awaiting" not in shown and "admin.storage_low" not in shown

    changed = await client.put(
        "/api/notifications/preferences",
        json={"video.published": {"inapp": False, "email": True}},
        headers=user_token,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["video.published"] == {"inapp": False, "email": True}
    assert changed.json()["video.ready"] == {"inapp": True, "email": True}

    video = await staff_video(people)
    await client.post(f"/api/admin/videos/{video.id}/approve", headers=bearer(people["editor"][1]))
    assert await types_of(people["colleague"][0]) == []  # turned off in-app
    assert await types_of(people["editor"][0]) == ["video.published"]  # others unaffected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"account.new_sign_in": {"email": False}}, "security notification"),
        ({"video.nope": {"inapp": False}}, "Unknown notification type"),
        ({"video.awaiting": {"inapp": False}}, "Unknown notification type"),
        ({"video.ready": {"sms": False}}, "the channels are inapp and email"),
        ({"video.ready": {"inapp": "no"}}, "true or false"),
        ({"video.ready": {"inapp": False}, "video.failed": {"email": 0}}, "true or false"),
        ([], "JSON object"),
        ({}, "Send"),
    ],
)
async def test_bad_preferences_are_refused_whole(site, body, message) -> None:
    _app, client, people = site
    token = bearer(people["colleague"][1])
    before = (await client.get("/api/notifications/preferences", headers=token)).json()
    answer = await client.put("/api/notifications/preferences", json=body, headers=token)
    assert answer.status_code in (400, 422), answer.text
    assert message in answer.json()["error"]["message"]
    assert (await client.get("/api/notifications/preferences", headers=token)).json() == before


async def test_preferences_need_a_session(site) -> None:
    _app, client, _people = site
    assert (await client.get("/api/notifications/preferences")).status_code == 401
    answer = await client.put("/api/notifications/preferences", json={})
    assert answer.status_code == 401


async def test_the_preferences_page_saves_the_ticked_boxes(site) -> None:
    _app, client, people = site
    client.cookies.set(SESSION_COOKIE, people["colleague"][1])
    page = await client.get("/notifications/preferences")
    assert page.status_code == 200, page.text
    assert 'name="video.published:email"' in page.text
    assert re.search(r'name="account.new_sign_in:inapp"[^>]*checked disabled', page.text)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    ticked = {"video.ready:inapp": "on", "video.published:email": "on", "csrf_token": token}
    saved = await client.post("/notifications/preferences", data=ticked)
    assert saved.status_code == 303, saved.text
    shown = (await client.get("/api/notifications/preferences")).json()
    assert shown["video.ready"] == {"inapp": True, "email": False}
    assert shown["video.published"] == {"inapp": False, "email": True}
    assert shown["account.password_changed"] == {"inapp": True, "email": True}
    again = await client.get("/notifications/preferences?saved=1")
    assert "Your choices are saved." in again.text


async def test_a_sign_in_from_a_new_device_tells_the_owner(site) -> None:
    _app, client, people = site

    async def sign_in(agent: str) -> None:
        answer = await client.post(
            "/api/auth/login",
            json={"email": "colleague@example.org", "password": PASSWORD},
            headers={"User-Agent": agent},
        )
        assert answer.status_code == 200, answer.text

    await sign_in(FIREFOX)  # the first device an account uses is not news
    await sign_in(FIREFOX)
    assert await types_of(people["colleague"][0]) == []
    await sign_in(CHROME)
    [item] = await Notification.filter(user_id=people["colleague"][0].id)
    assert item.type == "account.new_sign_in"
    assert "Chrome 131 on Linux from 203.0.113.7" in item.body
    await sign_in(CHROME)
    await sign_in(FIREFOX)
    assert await types_of(people["colleague"][0]) == ["account.new_sign_in"]


async def test_a_role_or_category_change_tells_the_person(site) -> None:
    _app, client, people = site
    answer = await client.patch(
        f"/api/admin/users/{people['colleague'][0].id}",
        json={"role": "editor", "categoryRole": "dealers"},
        headers=bearer(people["admin"][1]),
    )
    assert answer.status_code == 200, answer.text
    [item] = await Notification.filter(user_id=people["colleague"][0].id)
    assert item.type == "account.access_changed"
    assert "your role is now editor" in item.body
    assert "your category is now dealers" in item.body


async def test_a_nearly_full_disk_tells_the_admins_once_a_day(site) -> None:
    app, _client, people = site
    settings = app.ctx.settings
    storage = app.ctx.backends.storage
    assert site_alerts.storage_problem(settings, storage) is None  # 0 turns it off
    full = type(settings.disk)(reserve_mb=settings.disk.reserve_mb, alert_free_percent=100)
    nearly_full = type(settings)(**{**settings.__dict__, "disk": full})
    assert "is free on the disk of the data directory" in site_alerts.storage_problem(
        nearly_full, storage
    )
    assert await site_alerts.check_storage(nearly_full, storage) is True
    assert await site_alerts.check_storage(nearly_full, storage) is False
    told = await everyone(people)
    assert told["admin"] == ["admin.storage_low"]
    assert all(not kinds for name, kinds in told.items() if name != "admin")
    # A day later it may be said again.
    alert = await SiteAlert.get(name="storage_low")
    alert.last_sent_at = alert.last_sent_at.replace(year=alert.last_sent_at.year - 1)
    await alert.save()
    assert await site_alerts.check_storage(nearly_full, storage) is True


async def test_an_invite_by_email_needs_email_set_up(site) -> None:
    _app, client, people = site
    answer = await client.post(
        "/api/admin/invites",
        json={"email": "new@example.org"},
        headers=bearer(people["admin"][1]),
    )
    assert answer.status_code == 409, answer.text
    assert "Email is not set up" in answer.json()["error"]["message"]
    listed = await client.get("/api/admin/invites", headers=bearer(people["admin"][1]))
    assert listed.json()["items"] == []


async def test_a_whole_category_is_told_in_one_batch(site) -> None:
    app, client, people = site
    members = [
        await app.ctx.accounts.create_user(f"member{n}@example.org", PASSWORD, category="staff")
        for n in range(120)
    ]
    quiet = members[0]
    await client.put(
        "/api/notifications/preferences",
        json={"video.published": {"inapp": False}},
        headers=bearer(app.ctx.accounts.start_session(quiet).token),
    )
    news = []
    async with events.subscribe("notification.") as subscription:
        video = await staff_video(people)
        answer = await client.post(
            f"/api/admin/videos/{video.id}/approve", headers=bearer(people["editor"][1])
        )
        assert answer.status_code == 200, answer.text
        while (event := await subscription.get(within=0.5)) is not None:
            news.append(event)
    told = set(await Notification.filter(type="video.published").values_list("user_id", flat=True))
    assert told == {m.id for m in members[1:]} | {people["colleague"][0].id, people["editor"][0].id}
    # The uploader's approval and the category's news: one insert and one event, not
    # one per person.
    [event] = news
    assert sorted(event.data["userIds"]) == sorted(told | {people["uploader"][0].id})


async def test_a_failed_backup_tells_the_admins(site) -> None:
    _app, _client, people = site
    await events.publish("admin.backup_failed", detail="the target folder is read-only")
    told = await everyone(people)
    assert told["admin"] == ["admin.backup_failed"]
    assert all(not kinds for name, kinds in told.items() if name != "admin")
    item = await Notification.get(user_id=people["admin"][0].id)
    assert (item.title, item.body) == (
        "The scheduled backup failed",
        "the target folder is read-only",
    )


def test_every_type_has_its_mail_in_the_default_theme() -> None:
    emails = Path(__file__).parent.parent / "themes" / "default" / "templates" / "emails"
    for name in [*TYPES, INVITE, "account.password_reset"]:
        for suffix in ("txt", "html"):
            assert (emails / f"{name}.{suffix}").is_file(), f"emails/{name}.{suffix}"
