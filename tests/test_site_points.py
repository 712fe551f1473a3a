"""Points around the site, in-process on SQLite: the home feed and what it says it
shows, and the analytics pages' category labels.

The feed is the visibility rule's FEED scope: of the videos a person may see, only the
APPROVED ones, so an admin's home is not the moderation queue; the moderation and
library views (and the API's default list) still show every status.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clients import PASSWORD, bearer

from clipsync.models import Role, User, Video, VideoStatus
from clipsync.services import videos

CATEGORIES = [
    {"name": "staff", "label": "Staff room", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealer network", "self_select": True},
]
# (role, category) of each person; `owner` uploaded every video below, in staff.
PEOPLE = {
    "admin": (Role.ADMIN, "dealers"),
    "editor": (Role.EDITOR, "staff"),
    "owner": (Role.USER, "staff"),
    "colleague": (Role.USER, "staff"),
    "outsider": (Role.USER, "dealers"),
}


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(category=CATEGORIES)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    users, tokens = {}, {}
    for name, (role, category) in PEOPLE.items():
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        users[name] = user
        tokens[name] = app.ctx.accounts.start_session(user).token
    clips = {
        status: await Video.create(
            owner=users["owner"],
            title=f"Feedclip {status.lower()}",
            category="staff",
            status=status,
            duration=30.0,
        )
        for status in VideoStatus
    }
    return app, client, users, tokens, clips


def in_feed(viewer: str, status: VideoStatus) -> bool:
    """Written from the rule as the issue states it, not from the code."""
    role, category = PEOPLE[viewer]
    may_see = role == Role.ADMIN or viewer == "owner" or category == "staff"
    return may_see and status == VideoStatus.APPROVED


@pytest.mark.parametrize("viewer", list(PEOPLE))
async def test_the_home_feed_shows_only_approved_videos_the_person_may_see(
    site, viewer: str
) -> None:
    _app, client, _users, tokens, clips = site
    headers = bearer(tokens[viewer])
    home = (await client.get("/", headers=headers)).text
    searched = (await client.get("/?q=feedclip", headers=headers)).text
    scrolled = (await client.get("/api/videos?after=&scope=feed", headers=headers)).json()
    paged = (await client.get("/api/videos?scope=feed&pageSize=100", headers=headers)).json()
    found = (await client.get("/api/videos?q=feedclip&scope=feed", headers=headers)).json()
    for status, video in clips.items():
        case = f"{viewer} / {status}"
        expected = in_feed(viewer, status)
        assert (f"/watch/{video.id}" in home) == expected, f"home: {case}"
        assert (f"/watch/{video.id}" in searched) == expected, f"home search: {case}"
        for name, answer in (("after", scrolled), ("page", paged), ("search", found)):
            listed = {v["id"] for v in answer["items"]}
            assert (str(video.id) in listed) == expected, f"api {name}: {case}"


async def test_the_admins_feed_leaves_out_rejected_failed_and_unfinished_videos_but_not_the_library(
    site,
) -> None:
    _app, client, _users, tokens, clips = site
    headers = bearer(tokens["admin"])
    home = (await client.get("/", headers=headers)).text
    assert f"/watch/{clips[VideoStatus.APPROVED].id}" in home
    for status in (VideoStatus.REJECTED, VideoStatus.FAILED, VideoStatus.PROCESSING):
        assert f"/watch/{clips[status].id}" not in home, status
    # Everything the admin may open is still listed where every status belongs.
    everything = (await client.get("/api/videos?pageSize=100", headers=headers)).json()
    assert {v["id"] for v in everything["items"]} == {str(v.id) for v in clips.values()}
    library = (await client.get("/api/admin/videos?pageSize=100", headers=headers)).json()
    assert {v["id"] for v in library["items"]} >= {str(v.id) for v in clips.values()}
    assert (
        await client.get(f"/watch/{clips[VideoStatus.REJECTED].id}", headers=headers)
    ).is_success


async def test_the_home_page_says_what_its_feed_shows(site) -> None:
    _app, client, _users, tokens, _clips = site
    admin = (await client.get("/", headers=bearer(tokens["admin"]))).text
    assert 'data-scope="all-categories"' in admin and "All categories" in admin
    colleague = (await client.get("/", headers=bearer(tokens["colleague"]))).text
    assert 'data-scope="category"' in colleague and "All categories" not in colleague
    # The category's label, never its name.
    assert "<strong>Staff room</strong>" in colleague
    outsider = (await client.get("/", headers=bearer(tokens["outsider"]))).text
    assert "<strong>Dealer network</strong>" in outsider


async def test_an_unknown_list_scope_is_refused(site) -> None:
    _app, client, _users, tokens, _clips = site
    answer = await client.get("/api/videos?scope=everything", headers=bearer(tokens["owner"]))
    assert answer.status_code == 400
    assert "scope" in answer.json()["error"]["message"]


def test_the_feed_is_one_scope_of_the_one_rule() -> None:
    user = User(id=7, role=Role.USER, category="staff")
    approved = str(VideoStatus.APPROVED)
    assert videos.visibility_branches(user, videos.FEED) == [
        {"owner_id": 7, "status": approved},
        {"category": "staff", "status": approved},
    ]
    admin = User(id=1, role=Role.ADMIN, category="staff")
    assert videos.visibility_branches(admin) is None
    assert videos.visibility_branches(admin, videos.FEED) == [{"status": approved}]
    with pytest.raises(ValueError):
        videos.visibility_branches(user, "everything")


async def test_the_analytics_overview_names_categories_by_their_labels(site) -> None:
    app, client, _users, tokens, clips = site
    video = clips[VideoStatus.APPROVED]
    events = [
        {"type": "PLAY", "videoId": str(video.id), "sessionId": "s-1", "position": 0},
        {"type": "PROGRESS", "videoId": str(video.id), "sessionId": "s-1", "position": 4,
         "played": 4},
    ]  # fmt: skip
    sent = await client.post("/api/analytics/event", json=events, headers=bearer(tokens["admin"]))
    assert sent.status_code == 200, sent.text
    await app.ctx.backends.analytics.flush()
    page = (await client.get("/analytics", headers=bearer(tokens["admin"]))).text
    row = page.split('data-category="staff"', 1)[1].split("</tr>", 1)[0]
    assert "Staff room" in row
    assert '<td class="figures-name">staff</td>' not in page
