"""Several categories: a person may belong to several (the admin API and its JSON), a
video may be published to several (its uploader adds their own categories, a
moderator the ones they manage), and editors moderate every category they are in."""

from __future__ import annotations

from pathlib import Path

import pytest
from clients import PASSWORD, bearer
from sharing_world import make_people, playable, site_settings

from clipsync.models import AuditEntry, UserCategory, VideoCategory, VideoStatus


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    app, client = await start_app(site_settings(make_settings, migrated_sqlite))
    return app, client, await make_people(app)


async def sign_in(client, email: str) -> str:
    answer = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


async def detail(client, token: str, video_id) -> int:
    return (await client.get(f"/api/videos/{video_id}", headers=bearer(token))).status_code


async def test_an_admin_puts_a_person_in_several_categories(site) -> None:
    app, client, people = site
    _, admin = people["admin"]
    dealer, dealer_token = people["dealer"]
    staff_video = await playable(app, people["uploader"][0])
    assert await detail(client, dealer_token, staff_video.id) == 404

    answer = await client.patch(
        f"/api/admin/users/{dealer.id}",
        json={"categories": ["dealers", "staff"]},
        headers=bearer(admin),
    )
    assert answer.status_code == 200, answer.text
    user = answer.json()["user"]
    assert user["categoryRole"] == "dealers" and user["categories"] == ["dealers", "staff"]
    # A change of who someone is ends their sessions, as a category change does.
    assert await detail(client, dealer_token, staff_video.id) == 401
    token = await sign_in(client, "dealer@example.org")
    assert await detail(client, token, staff_video.id) == 200
    listed = await client.get("/api/admin/users?q=dealer@", headers=bearer(admin))
    assert listed.json()["items"][0]["categories"] == ["dealers", "staff"]
    assert await AuditEntry.filter(action="user_update", target_user_id=dealer.id).exists()

    # The primary one moved into a former extra: it is not listed twice.
    moved = await client.patch(
        f"/api/admin/users/{dealer.id}", json={"categoryRole": "staff"}, headers=bearer(admin)
    )
    assert moved.json()["user"]["categories"] == ["staff"]
    assert not await UserCategory.filter(user_id=dealer.id).exists()


@pytest.mark.parametrize(
    ("categories", "words"),
    [("staff", "list of category names"), (["staff", 3], "list of category names"),
     (["nowhere"], "not a category")],
)  # fmt: skip
async def test_bad_categories_for_a_person_are_refused(site, categories, words) -> None:
    _app, client, people = site
    _, admin = people["admin"]
    dealer, _ = people["dealer"]
    answer = await client.patch(
        f"/api/admin/users/{dealer.id}", json={"categories": categories}, headers=bearer(admin)
    )
    assert answer.status_code == 422 and words in answer.json()["error"]["message"]
    assert not await UserCategory.exists()


async def test_an_editor_moderates_every_category_they_are_in(site) -> None:
    app, client, people = site
    _, admin = people["admin"]
    dealer_editor, token = people["dealer_editor"]
    waiting = await playable(app, people["uploader"][0], status=VideoStatus.READY)
    approve = f"/api/admin/videos/{waiting.id}/approve"
    assert (await client.post(approve, headers=bearer(token))).status_code == 404
    await client.patch(
        f"/api/admin/users/{dealer_editor.id}",
        json={"categories": ["dealers", "staff"]},
        headers=bearer(admin),
    )
    token = await sign_in(client, "dealer_editor@example.org")
    assert (await client.post(approve, headers=bearer(token))).status_code == 200


async def test_a_video_is_published_to_several_categories(site) -> None:
    app, client, people = site
    uploader, owner = people["uploader"]
    _, admin = people["admin"]
    _, dealer = people["dealer"]
    _, partner = people["partner"]
    video = await playable(app, uploader)
    url = f"/api/videos/{video.id}/categories"
    choices = (await client.get(url, headers=bearer(owner))).json()
    assert choices["categories"] == ["staff"]
    assert [c["name"] for c in choices["choices"] if c["editable"]] == []  # only in staff

    # The uploader may add only the categories they belong to themselves.
    refused = await client.put(
        url, json={"categories": ["staff", "dealers"]}, headers=bearer(owner)
    )
    assert refused.status_code == 403 and "belong to" in refused.json()["error"]["message"]
    await client.patch(
        f"/api/admin/users/{uploader.id}",
        json={"categories": ["staff", "dealers"]},
        headers=bearer(admin),
    )
    owner = await sign_in(client, "uploader@example.org")
    added = await client.put(url, json={"categories": ["staff", "dealers"]}, headers=bearer(owner))
    assert added.status_code == 200, added.text
    assert added.json()["categories"] == ["staff", "dealers"]
    assert added.json()["video"]["categories"] == ["staff", "dealers"]
    assert await detail(client, dealer, video.id) == 200
    assert await detail(client, partner, video.id) == 404
    watch = await client.get(f"/watch/{video.id}", headers=bearer(dealer))
    assert "/browse/category/dealers" in watch.text
    listed = await client.get("/api/videos?pageSize=100", headers=bearer(dealer))
    assert str(video.id) in {v["id"] for v in listed.json()["items"]}
    assert await AuditEntry.filter(action="video_categories", video_id=video.id).exists()

    # An admin adds any category; the uploader may take any away.
    assert (
        await client.put(url, json={"categories": ["dealers", "partners"]}, headers=bearer(admin))
    ).status_code == 200
    assert await detail(client, partner, video.id) == 200
    assert (
        await client.put(url, json={"categories": []}, headers=bearer(owner))
    ).status_code == 200
    assert not await VideoCategory.exists()
    assert await detail(client, dealer, video.id) == 404
    assert await detail(client, partner, video.id) == 404


async def test_someone_elses_video_and_bad_bodies(site) -> None:
    app, client, people = site
    uploader, owner = people["uploader"]
    video = await playable(app, uploader)
    url = f"/api/videos/{video.id}/categories"
    for name in ("colleague", "dealer", "dealer_editor"):
        answer = await client.put(
            url, json={"categories": ["staff"]}, headers=bearer(people[name][1])
        )
        assert answer.status_code == 404, name
    for body, status, words in (
        ({"categories": "staff"}, 422, "list of category names"),
        ({"categories": ["nowhere"]}, 422, "not a category"),
        ({"categories": ["staff"], "more": 1}, 422, '{"categories": [...]}'),
        ({}, 422, '{"categories": [...]}'),
    ):
        answer = await client.put(url, json=body, headers=bearer(owner))
        assert answer.status_code == status and words in answer.json()["error"]["message"], body
    answer = await client.put(url, content=b"[", headers=bearer(owner))
    assert answer.status_code == 400
    assert not await VideoCategory.exists()
