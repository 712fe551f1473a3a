"""The list's keyset pages (`?after=`), its bounded count, and search without a cap.

The expected lists come from the visibility rule written here on its own (as in
test_visibility_matrix.py), newest first with the id breaking ties, on SQLite and on
PostgreSQL: the keyset merge compares ids as the database orders them.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, bearer

from clipsync import db
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.services import videos

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]
PEOPLE = {
    "admin": (Role.ADMIN, "dealers"),
    "editor": (Role.EDITOR, "staff"),
    "ann": (Role.USER, "staff"),
    "bob": (Role.USER, "staff"),
    "dee": (Role.USER, "dealers"),
}
_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request, start_app, make_settings, migrated_sqlite: Path):
    tables: dict = {"category": CATEGORIES}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"listing_{next(_databases)}")}
    settings = make_settings(**tables)
    if request.param == "postgres":
        await db.migrate(settings)
    else:
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    users, tokens = {}, {}
    for name, (role, category) in PEOPLE.items():
        users[name] = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        tokens[name] = app.ctx.accounts.start_session(users[name]).token
    # 36 videos, three to an instant, so pages end in the middle of a tie.
    start = datetime(2026, 3, 1, tzinfo=UTC)
    statuses = itertools.cycle([VideoStatus.APPROVED, VideoStatus.READY, VideoStatus.FAILED])
    owners = itertools.cycle(["ann", "bob", "dee", "ann"])
    for n in range(36):
        owner = users[next(owners)]
        await Video.create(
            owner=owner,
            title=f"Clip {n}",
            category=owner.category,
            status=next(statuses),
            created_at=start + timedelta(minutes=n // 3),
        )
    return client, users, tokens


def expected(viewer: User, mine: bool, rows: list[Video]) -> list[str]:
    def sees(video: Video) -> bool:
        if mine:
            return video.owner_id == viewer.id
        return (
            viewer.role == Role.ADMIN
            or video.owner_id == viewer.id
            or (viewer.role == Role.EDITOR and video.category == viewer.category)
            or (video.category == viewer.category and video.status == VideoStatus.APPROVED)
        )

    shown = [video for video in rows if sees(video)]
    # The databases order the ids as text (SQLite) or as bytes (PostgreSQL): the same.
    shown.sort(key=lambda video: (video.created_at, str(video.id)), reverse=True)
    return [str(video.id) for video in shown]


async def walk(client: httpx.AsyncClient, token: str, mine: bool, size: int) -> list[str]:
    ids: list[str] = []
    after = ""
    for _ in range(100):
        url = f"/api/videos?after={after}&pageSize={size}" + ("&mine=1" if mine else "")
        response = await client.get(url, headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next"}
        assert len(body["items"]) <= size
        ids += [item["id"] for item in body["items"]]
        if body["next"] is None:
            return ids
        assert len(body["items"]) == size
        after = body["next"]
    raise AssertionError("the cursor never ended")


async def numbered(client: httpx.AsyncClient, token: str, mine: bool, size: int) -> list[str]:
    ids: list[str] = []
    for page in range(1, 100):
        url = f"/api/videos?page={page}&pageSize={size}" + ("&mine=1" if mine else "")
        body = (await client.get(url, headers=bearer(token))).json()
        if not body["items"]:
            return ids
        ids += [item["id"] for item in body["items"]]
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("size", [1, 4, 5])
async def test_keyset_pages_walk_the_visible_list_in_order(world, size: int) -> None:
    client, users, tokens = world
    rows = await Video.all()
    for name in PEOPLE:
        for mine in (False, True):
            want = expected(users[name], mine, rows)
            case = f"{name}, mine={mine}"
            assert await walk(client, tokens[name], mine, size) == want, case
            assert await numbered(client, tokens[name], mine, size) == want, case


async def test_blank_after_is_the_first_page(world) -> None:
    client, _users, tokens = world
    headers = bearer(tokens["admin"])
    first = (await client.get("/api/videos?after=&pageSize=5", headers=headers)).json()
    plain = (await client.get("/api/videos?pageSize=5", headers=headers)).json()
    assert [v["id"] for v in first["items"]] == [v["id"] for v in plain["items"]]
    assert first["next"] and "total" not in first


def cursor(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "after",
    [
        "not-a-cursor!",
        "%%%",
        "a" * 201,
        cursor(["2026-03-01T00:00:00+00:00", "x"]),
        cursor({"t": "2026-03-01T00:00:00+00:00"}),
        cursor({"t": "2026-03-01T00:00:00+00:00", "id": "nope"}),
        cursor({"t": "2026-03-01T00:00:00", "id": "3f0e9b8e-4b0c-4a57-9a52-3c4f0d5e6a7b"}),
        cursor({"t": "yesterday", "id": "3f0e9b8e-4b0c-4a57-9a52-3c4f0d5e6a7b"}),
        cursor({"t": 5, "id": "3f0e9b8e-4b0c-4a57-9a52-3c4f0d5e6a7b"}),
        cursor({"t": "2026-03-01T00:00:00+00:00", "id": "3f0e9b8e-4b0c-4a57-9a52-3c4f0d5e6a7b",
                "x": 1}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)  # fmt: skip
async def test_a_bad_cursor_is_a_clear_400(client: httpx.AsyncClient, after: str) -> None:
    token = (
        await client.post(
            "/api/auth/register", json={"email": "c@example.org", "password": PASSWORD}
        )
    ).json()["token"]
    response = await client.get("/api/videos", params={"after": after}, headers=bearer(token))
    assert response.status_code == 400, response.text
    assert "after" in response.json()["error"]["message"]


async def test_after_goes_with_neither_search_nor_page(client: httpx.AsyncClient) -> None:
    token = (
        await client.post(
            "/api/auth/register", json={"email": "c@example.org", "password": PASSWORD}
        )
    ).json()["token"]
    for extra in ("&q=cats", "&page=2"):
        response = await client.get(f"/api/videos?after={extra}", headers=bearer(token))
        assert response.status_code == 400, response.text


async def test_the_count_stops_at_its_limit(world, monkeypatch) -> None:
    client, users, tokens = world
    headers = bearer(tokens["admin"])
    exact = (await client.get("/api/videos?pageSize=5", headers=headers)).json()
    assert (exact["total"], exact["totalIsLowerBound"]) == (36, False)
    monkeypatch.setattr(videos, "COUNT_LIMIT", 10)
    capped = (await client.get("/api/videos?pageSize=5", headers=headers)).json()
    assert (capped["total"], capped["totalIsLowerBound"]) == (10, True)
    # Pages past the count still answer.
    deep = (await client.get("/api/videos?page=8&pageSize=5", headers=headers)).json()
    assert len(deep["items"]) == 1
    # A viewer of two branches (own uploads, approved ones): exact up to the limit.
    seen = len(expected(users["ann"], False, await Video.all()))
    for limit, answer in ((seen, (seen, False)), (seen - 1, (seen - 1, True))):
        monkeypatch.setattr(videos, "COUNT_LIMIT", limit)
        ann = (await client.get("/api/videos", headers=bearer(tokens["ann"]))).json()
        assert (ann["total"], ann["totalIsLowerBound"]) == answer


async def test_search_finds_visible_matches_behind_many_hidden_ones(
    client: httpx.AsyncClient, app
) -> None:
    """More than a thousand better-ranked matches the viewer may not see (the title
    weighs more than the description) do not hide the ones they may."""
    token = (
        await client.post(
            "/api/auth/register", json={"email": "c@example.org", "password": PASSWORD}
        )
    ).json()["token"]
    viewer = await User.get(email="c@example.org")
    other = await app.ctx.accounts.create_user("o@example.org", PASSWORD)
    hidden = [
        Video(owner_id=other.id, title="Quokka quokka", category=viewer.category,
              status=VideoStatus.READY)
        for _ in range(1005)
    ]  # fmt: skip
    await Video.bulk_create(hidden, batch_size=500)
    for n in range(3):
        await Video.create(
            owner_id=other.id, title=f"Animal {n}", description="a quokka",
            category=viewer.category, status=VideoStatus.APPROVED,
        )  # fmt: skip
    found = (await client.get("/api/videos?q=quokka&pageSize=2", headers=bearer(token))).json()
    assert found["total"] == 3 and len(found["items"]) == 2
    last = await client.get("/api/videos?q=quokka&page=2&pageSize=2", headers=bearer(token))
    assert [v["title"] for v in last.json()["items"]] == ["Animal 0"]
    # A page past the end still says how many there are.
    past = (await client.get("/api/videos?q=quokka&page=9", headers=bearer(token))).json()
    assert (past["total"], past["items"]) == (3, [])


async def test_the_home_page_continues_with_the_cursor(world) -> None:
    client, users, tokens = world
    headers = bearer(tokens["admin"])
    # The home page is the feed, approved videos only: 12 of the 36, so 20 more.
    for n in range(20):
        await Video.create(
            owner=users["ann"], title=f"More {n}", category=users["ann"].category,
            status=VideoStatus.APPROVED,
        )  # fmt: skip
    home = (await client.get("/", headers=headers)).text
    assert "/static/" in home and "js/home.js" in home
    assert 'href="/?page=2"' in home  # the plain links, for readers without JavaScript
    cursor_value = re.search(r'data-next="([^"]+)"', home).group(1)
    after = await client.get(
        f"/api/videos?after={cursor_value}&pageSize=24&scope=feed", headers=headers
    )
    page_two = (
        await client.get("/api/videos?page=2&pageSize=24&scope=feed", headers=headers)
    ).json()
    assert [v["id"] for v in after.json()["items"]] == [v["id"] for v in page_two["items"]]
    assert after.json()["next"] is None
    # The last page and search results have no cursor to go on with.
    assert "data-next" not in (await client.get("/?page=2", headers=headers)).text
    assert "data-next" not in (await client.get("/?q=clip", headers=headers)).text
