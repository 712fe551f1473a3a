"""Comments: threads one level deep, the video's visibility rule, authors and moderators.

Issue 17, item 3, through a real app on a real (migrated) SQLite file. The video is
approved in "staff": its uploader, a colleague, the staff editor and the admin see
it; a dealer and the dealers' editor do not, so for them its comments do not exist.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clients import PASSWORD, bearer, error_of

from clipsync import events
from clipsync.models import AuditEntry, Comment, Notification, Role, User, Video, VideoStatus
from clipsync.services import comments as comment_service

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
    video = await Video.create(
        owner=people["uploader"][0], title="Harbour tour", category="staff",
        status=VideoStatus.APPROVED, duration=60.0,
    )  # fmt: skip
    return client, people, video


def as_(people, name: str) -> dict[str, str]:
    return bearer(people[name][1])


async def write(client, people, name: str, video, body: str, parent: int | None = None):
    payload: dict = {"body": body}
    if parent is not None:
        payload["parentId"] = parent
    return await client.post(
        f"/api/videos/{video.id}/comments", json=payload, headers=as_(people, name)
    )


async def posted(client, people, name: str, video, body: str, parent: int | None = None) -> dict:
    answer = await write(client, people, name, video, body, parent)
    assert answer.status_code == 201, answer.text
    return answer.json()["comment"]


async def listing(client, people, name: str, video, query: str = "") -> dict:
    answer = await client.get(f"/api/videos/{video.id}/comments{query}", headers=as_(people, name))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_thread_is_one_level_deep_and_pages_its_top_level_comments(site) -> None:
    client, people, video = site
    first = await posted(client, people, "colleague", video, "First!")
    second = await posted(client, people, "editor", video, "Second.")
    reply = await posted(client, people, "uploader", video, "Thanks", parent=first["id"])
    # A reply to the reply answers the same top-level comment.
    deeper = await posted(client, people, "colleague", video, "You're welcome", parent=reply["id"])
    assert reply["parentId"] == first["id"] and deeper["parentId"] == first["id"]

    newest = await listing(client, people, "colleague", video)
    assert [c["id"] for c in newest["items"]] == [second["id"], first["id"]]
    assert newest["total"] == 2 and newest["order"] == "newest"
    assert [r["id"] for r in newest["items"][1]["replies"]] == [reply["id"], deeper["id"]]
    assert newest["items"][1]["authorName"] == "colleague" and newest["items"][1]["mine"]
    assert not newest["items"][0]["mine"] and not newest["items"][0]["canDelete"]

    oldest = await listing(client, people, "colleague", video, "?order=oldest&pageSize=1")
    assert [c["id"] for c in oldest["items"]] == [first["id"]] and oldest["total"] == 2
    assert len(oldest["items"][0]["replies"]) == 2
    page_two = await listing(client, people, "colleague", video, "?order=oldest&pageSize=1&page=2")
    assert [c["id"] for c in page_two["items"]] == [second["id"]]
    bad = await client.get(
        f"/api/videos/{video.id}/comments?order=sideways", headers=as_(people, "colleague")
    )
    assert bad.status_code == 422


async def test_markdown_is_rendered_and_markup_is_inert(site) -> None:
    client, people, video = site
    body = "**bold** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=y>"
    comment = await posted(client, people, "colleague", video, body)
    assert comment["body"] == body
    assert "<strong>bold</strong>" in comment["html"]
    # Written out as text, never markup: no element, no link to a script.
    for bad in ("<script", 'href="javascript', "<img"):
        assert bad not in comment["html"], comment["html"]
    assert "&lt;script&gt;" in comment["html"]


async def test_who_may_not_see_the_video_finds_no_comments(site) -> None:
    client, people, video = site
    comment = await posted(client, people, "colleague", video, "Hello")
    for name in ("dealer", "dealer_editor"):
        headers = as_(people, name)
        base = f"/api/videos/{video.id}"
        answers = [
            await client.get(f"{base}/comments", headers=headers),
            await client.post(f"{base}/comments", json={"body": "hi"}, headers=headers),
            await client.patch(
                f"/api/comments/{comment['id']}", json={"body": "x"}, headers=headers
            ),
            await client.delete(f"/api/comments/{comment['id']}", headers=headers),
            await client.post(f"/api/comments/{comment['id']}/hide", headers=headers),
            await client.put(f"{base}/comments-enabled", json={"enabled": False}, headers=headers),
        ]
        assert [a.status_code for a in answers] == [404] * 6, name
    assert await Comment.filter(video_id=video.id).count() == 1
    assert (await client.get(f"/api/videos/{video.id}/comments")).status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"body": "   "}, "non-empty"),
        ({}, "non-empty"),
        ({"body": "x" * 5001}, "limited to 5000 characters; this one has 5001"),
        ({"body": "hi\u202eyou"}, "invisible or control characters"),
        ({"body": "hi", "parentId": "1"}, "parentId"),
        ({"body": "hi", "parentId": 999}, "not there"),
    ],
)
async def test_bad_comments_are_refused_clearly(site, body, message) -> None:
    client, people, video = site
    answer = await client.post(
        f"/api/videos/{video.id}/comments", json=body, headers=as_(people, "colleague")
    )
    assert answer.status_code == 422, answer.text
    assert message in error_of(answer)["message"]
    assert await Comment.all().count() == 0


async def test_a_long_comment_within_the_limit_is_kept(site) -> None:
    client, people, video = site
    assert (await write(client, people, "colleague", video, "x" * 5000)).status_code == 201


async def test_a_reply_to_a_comment_on_another_video_is_refused(site) -> None:
    client, people, video = site
    other = await Video.create(
        owner=people["uploader"][0], title="Other", category="staff", status=VideoStatus.APPROVED
    )
    elsewhere = await posted(client, people, "colleague", other, "Elsewhere")
    answer = await write(client, people, "colleague", video, "hi", parent=elsewhere["id"])
    assert answer.status_code == 422 and error_of(answer)["field"] == "parentId"


async def test_authors_edit_and_delete_their_own_and_no_one_elses(site) -> None:
    client, people, video = site
    mine = await posted(client, people, "colleague", video, "Typo hree")
    reply = await posted(client, people, "uploader", video, "Indeed", parent=mine["id"])
    assert mine["editedAt"] is None
    url = f"/api/comments/{mine['id']}"
    edited = await client.patch(url, json={"body": "*here*"}, headers=as_(people, "colleague"))
    assert edited.status_code == 200, edited.text
    assert edited.json()["comment"]["editedAt"] is not None
    assert "<em>here</em>" in edited.json()["comment"]["html"]
    too_long = await client.patch(url, json={"body": "x" * 5001}, headers=as_(people, "colleague"))
    assert too_long.status_code == 422
    for name in ("uploader", "editor"):
        other = await client.patch(url, json={"body": "mine now"}, headers=as_(people, name))
        assert other.status_code == 403, name
    assert (await client.delete(url, headers=as_(people, "uploader"))).status_code == 403
    assert (await client.delete(url, headers=as_(people, "colleague"))).status_code == 204
    # Its replies go with it; the author's own deletion is not a moderation act.
    assert not await Comment.exists(id=reply["id"])
    assert await AuditEntry.filter(action__startswith="comment.").count() == 0


async def test_a_moderator_deletes_any_comment_and_it_is_audited(site) -> None:
    client, people, video = site
    comment = await posted(client, people, "colleague", video, "Rude words")
    answer = await client.delete(f"/api/comments/{comment['id']}", headers=as_(people, "editor"))
    assert answer.status_code == 204
    entry = await AuditEntry.get(action="comment.deleted")
    assert entry.video_id == video.id and entry.actor_email == "editor@example.org"
    assert entry.details["body"] == "Rude words"


async def test_hidden_comments_are_shown_only_to_moderators(site) -> None:
    client, people, video = site
    comment = await posted(client, people, "colleague", video, "Spoiler!")
    await posted(client, people, "uploader", video, "Hush", parent=comment["id"])
    url = f"/api/comments/{comment['id']}"
    refused = await client.post(f"{url}/hide", headers=as_(people, "uploader"))
    assert refused.status_code == 403
    hidden = await client.post(f"{url}/hide", headers=as_(people, "editor"))
    assert hidden.status_code == 200 and hidden.json()["comment"]["hidden"] is True

    for name in ("colleague", "uploader"):
        seen = await listing(client, people, name, video)
        assert seen["items"] == [] and seen["total"] == 0, name
    edit = await client.patch(url, json={"body": "x"}, headers=as_(people, "colleague"))
    assert edit.status_code == 404
    reply = await write(client, people, "uploader", video, "x", parent=comment["id"])
    assert reply.status_code == 422
    moderated = await listing(client, people, "admin", video)
    assert [c["hidden"] for c in moderated["items"]] == [True]

    shown = await client.post(f"{url}/hide", json={"hidden": False}, headers=as_(people, "admin"))
    assert shown.status_code == 200 and shown.json()["comment"]["hidden"] is False
    assert (await listing(client, people, "colleague", video))["total"] == 1
    actions = (
        await AuditEntry.filter(video_id=video.id).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["comment.hidden", "comment.unhidden"]


async def test_the_uploader_or_a_moderator_turns_comments_off(site) -> None:
    client, people, video = site
    url = f"/api/videos/{video.id}/comments-enabled"
    refused = await client.put(url, json={"enabled": False}, headers=as_(people, "colleague"))
    assert refused.status_code == 403
    bad = await client.put(url, json={"enabled": "no"}, headers=as_(people, "uploader"))
    assert bad.status_code == 422
    off = await client.put(url, json={"enabled": False}, headers=as_(people, "uploader"))
    assert off.status_code == 200 and off.json() == {"commentsEnabled": False}
    closed = await write(client, people, "colleague", video, "Anyone?")
    assert closed.status_code == 403 and "turned off" in error_of(closed)["message"]
    assert (await listing(client, people, "colleague", video))["commentsEnabled"] is False
    on = await client.put(url, json={"enabled": True}, headers=as_(people, "editor"))
    assert on.status_code == 200
    assert (await write(client, people, "colleague", video, "Anyone?")).status_code == 201
    actions = (
        await AuditEntry.filter(video_id=video.id).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["comments.disabled", "comments.enabled"]


async def test_comments_are_rate_limited_per_person(site, monkeypatch) -> None:
    client, people, video = site
    monkeypatch.setattr(comment_service, "RATE_LIMIT", 3)
    for n in range(3):
        assert (await write(client, people, "colleague", video, f"#{n}")).status_code == 201
    flood = await write(client, people, "colleague", video, "one more")
    assert flood.status_code == 429, flood.text
    assert 1 <= int(flood.headers["Retry-After"]) <= 60
    assert "at most 3 comments a minute" in error_of(flood)["message"]
    # Someone else is not held back by it.
    assert (await write(client, people, "uploader", video, "me too")).status_code == 201


async def test_a_posted_comment_is_news_on_the_bus(site) -> None:
    client, people, video = site
    async with events.subscribe("comment.") as news:
        comment = await posted(client, people, "colleague", video, "Hello")
        event = await news.get(within=5)
    assert event is not None and event.name == "comment.posted"
    assert event.data == {
        "videoId": str(video.id),
        "commentId": comment["id"],
        "authorId": people["colleague"][0].id,
    }


async def kinds(user: User) -> list[str]:
    return sorted(await Notification.filter(user_id=user.id).values_list("type", flat=True))


async def test_mentions_and_replies_notify_those_who_may_see_the_video(site) -> None:
    client, people, video = site
    await User.filter(id=people["editor"][0].id).update(display_name="Skipper")
    first = await posted(
        client, people, "colleague", video,
        "Hi @Skipper, @uploader and @dealer (who cannot see it), and me @colleague.",
    )  # fmt: skip
    assert await kinds(people["editor"][0]) == ["comment.mention"]
    assert await kinds(people["uploader"][0]) == ["comment.mention"]
    assert await kinds(people["dealer"][0]) == []
    assert await kinds(people["colleague"][0]) == []
    # Answered and named: the reply only.
    await posted(client, people, "uploader", video, "@colleague thanks", parent=first["id"])
    assert await kinds(people["colleague"][0]) == ["comment.reply"]
    note = await Notification.get(user_id=people["colleague"][0].id)
    assert note.url == f"/watch/{video.id}#comment-{first['id'] + 1}"
    assert "uploader replied to your comment" in note.title
    # The email address is no mention of its local part's lookalike.
    await posted(client, people, "colleague", video, "mail admin@example.org")
    assert await kinds(people["admin"][0]) == []
