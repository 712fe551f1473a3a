"""The category a new video starts in: `POST /api/videos/register {category}` takes any
category the uploader belongs to (their primary one when none is given) and refuses the
others with a message that names theirs, leaving the upload to be registered again."""

from __future__ import annotations

from pathlib import Path

import pytest
from clients import PASSWORD, bearer, upload
from clips import make_clip
from sharing_world import make_people, site_settings

from clipsync.models import Video, VideoStatus


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    app, client = await start_app(site_settings(make_settings, migrated_sqlite))
    return app, client, await make_people(app)


async def in_staff_and_dealers(client, people) -> str:
    """The uploader (staff) also in dealers; their new token (the change ends sessions)."""
    uploader, _ = people["uploader"]
    changed = await client.patch(
        f"/api/admin/users/{uploader.id}",
        json={"categories": ["staff", "dealers"]},
        headers=bearer(people["admin"][1]),
    )
    assert changed.status_code == 200, changed.text
    answer = await client.post(
        "/api/auth/login", json={"email": "uploader@example.org", "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


async def uploaded(client, token: str) -> str:
    sent = await upload(client, token, make_clip("landscape"))
    assert sent.status_code == 201, sent.text
    return sent.json()["videoId"]


async def register(client, token: str, video_id: str, **extra):
    return await client.post(
        "/api/videos/register",
        json={"videoId": video_id, "title": "Forecast", **extra},
        headers=bearer(token),
    )


async def test_an_uploader_in_two_categories_starts_a_video_in_either(site) -> None:
    _app, client, people = site
    token = await in_staff_and_dealers(client, people)

    chosen = await register(client, token, await uploaded(client, token), category="dealers")
    assert chosen.status_code == 201, chosen.text
    assert chosen.json()["video"]["category"] == "dealers"
    assert (await Video.get(id=chosen.json()["video"]["id"])).category == "dealers"

    primary = await register(client, token, await uploaded(client, token))
    assert primary.status_code == 201, primary.text
    assert primary.json()["video"]["category"] == "staff"


@pytest.mark.parametrize("category", ["partners", "nowhere"])
async def test_a_category_the_uploader_is_not_in_is_refused_and_the_upload_kept(
    site, category: str
) -> None:
    _app, client, people = site
    token = await in_staff_and_dealers(client, people)
    video_id = await uploaded(client, token)

    refused = await register(client, token, video_id, category=category)
    assert refused.status_code == 403, refused.text
    message = refused.json()["error"]["message"]
    assert f"You cannot upload to '{category}'" in message, message
    assert "(Staff, Dealers)" in message, message
    # Nothing was lost: the upload waits, and registers in a category of theirs.
    assert (await Video.get(id=video_id)).status == VideoStatus.UPLOADED
    again = await register(client, token, video_id, category="dealers")
    assert again.status_code == 201, again.text


async def test_one_category_and_bad_values(site) -> None:
    _app, client, people = site
    _, token = people["dealer"]
    video_id = await uploaded(client, token)
    assert (await register(client, token, video_id, category="staff")).status_code == 403
    wrong = await register(client, token, video_id, category=["dealers"])
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["error"]["field"] == "category"
    own = await register(client, token, video_id, category="dealers")
    assert own.status_code == 201, own.text
    assert own.json()["video"]["category"] == "dealers"
