"""Browsing by category and tag, sorted newest first, by title or by views, in keyset
pages whose cursor holds the sort key: through the visibility rule only, with tampered
cursors refused; and the browse pages with their links."""

from __future__ import annotations

import base64
import json
from typing import Any

import organise_world
import pytest

from clipsync.models import Video
from clipsync.services import browse

world = organise_world.world  # the fixture


async def walk(client, headers, size: int = 2, **params: Any) -> list[str]:
    """Every title of the list, page by page, following `next`."""
    titles: list[str] = []
    after = ""
    for _ in range(20):
        answer = await client.get(
            "/api/videos", params={"after": after, "pageSize": size, **params}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        titles += [item["title"] for item in body["items"]]
        if not body["next"]:
            return titles
        after = body["next"]
    raise AssertionError("the list never ended")


async def test_each_sort_pages_through_everything_once_in_order(world: dict) -> None:
    client, boss = world["client"], world["headers"]["boss"]
    newest = ["Dealer demo", "zebra crossing", "Harbour draft", "Quarterly numbers",
              "Demo of the harbour"]  # fmt: skip
    assert await walk(client, boss, sort="newest") == newest
    assert await walk(client, boss, sort="title") == sorted(newest, key=str.lower)
    assert await walk(client, boss, size=1, sort="title") == sorted(newest, key=str.lower)
    # No views recorded: most viewed falls back to newest first, every video once.
    assert await walk(client, boss, sort="views") == newest


async def test_a_category_and_a_tag_narrow_the_rule_never_widen_it(world: dict) -> None:
    client, headers = world["client"], world["headers"]
    # Sam (staff) browsing staff: the approved ones; Ann sees her READY draft too.
    assert await walk(client, headers["sam"], category="staff", sort="title") == [
        "Demo of the harbour",
        "Quarterly numbers",
        "zebra crossing",
    ]
    assert "Harbour draft" in await walk(client, headers["ann"], category="staff")
    # Sam browsing the dealers' category sees nothing of it.
    assert await walk(client, headers["sam"], category="dealers") == []
    # A tag: case-insensitively, across categories only as the rule allows.
    assert await walk(client, headers["boss"], tag="DEMO") == ["Dealer demo", "Demo of the harbour"]
    assert await walk(client, headers["sam"], tag="demo") == ["Demo of the harbour"]
    assert await walk(client, headers["sam"], tag="harbour") == ["Demo of the harbour"]
    assert await walk(client, headers["ann"], tag="harbour", sort="title") == [
        "Demo of the harbour",
        "Harbour draft",
    ]
    assert await walk(client, headers["boss"], tag="nothing-has-it") == []
    # The feed scope: published only.
    assert await walk(client, headers["ann"], tag="harbour", scope="feed") == [
        "Demo of the harbour"
    ]


async def test_most_viewed_comes_first_then_the_rest(world: dict, monkeypatch) -> None:
    videos = world["videos"]
    ranking = [str(videos["numbers"].id), str(videos["dealer"].id), str(videos["zebra"].id)]

    async def ranked(_analytics: object) -> list[str]:
        return ranking

    monkeypatch.setattr(browse, "ranked_ids", ranked)
    client, headers = world["client"], world["headers"]
    assert await walk(client, headers["boss"], size=2, sort="views") == [
        "Quarterly numbers",
        "Dealer demo",
        "zebra crossing",
        "Harbour draft",
        "Demo of the harbour",
    ]
    for size in (1, 3, 5, 10):
        assert len(await walk(client, headers["boss"], size=size, sort="views")) == 5
    # Sam never sees the dealers' video, ranked or not.
    assert await walk(client, headers["sam"], size=1, sort="views") == [
        "Quarterly numbers",
        "zebra crossing",
        "Demo of the harbour",
    ]
    assert await walk(client, headers["boss"], sort="views", tag="demo") == [
        "Dealer demo",
        "Demo of the harbour",
    ]


def cursor(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "after",
    [
        "not-a-cursor",
        cursor({"s": "title", "k": "a", "id": "00000000-0000-0000-0000-000000000000"}),
        cursor({"s": "newest", "k": "yesterday", "id": "00000000-0000-0000-0000-000000000000"}),
        cursor({"s": "newest", "k": "2026-01-01T00:00:00", "id": "x"}),
        cursor({"s": "newest", "r": 3}),
        cursor({"s": "newest", "k": "2026-01-01T00:00:00+00:00"}),
        "A" * 2000,
    ],
)
async def test_a_tampered_cursor_is_a_400(world: dict, after: str) -> None:
    answer = await world["client"].get(
        "/api/videos", params={"sort": "newest", "after": after}, headers=world["headers"]["sam"]
    )
    assert answer.status_code == 400, answer.text


async def test_a_cursor_of_another_sort_is_a_400(world: dict) -> None:
    client, sam = world["client"], world["headers"]["sam"]
    first = await client.get(
        "/api/videos",
        params={"after": "", "pageSize": 1, "sort": "newest", "category": "staff"},
        headers=sam,
    )
    newest = first.json()["next"]
    assert newest
    for sort in ("title", "views"):
        answer = await client.get(
            "/api/videos", params={"after": newest, "sort": sort, "category": "staff"}, headers=sam
        )
        assert answer.status_code == 400, (sort, answer.text)


async def test_views_cursors_are_checked_too(world: dict) -> None:
    for bad in ({"s": "views", "r": 0}, {"s": "views", "r": 10**9}, {"s": "views", "r": True}):
        answer = await world["client"].get(
            "/api/videos",
            params={"sort": "views", "after": cursor(bad)},
            headers=world["headers"]["sam"],
        )
        assert answer.status_code == 400, (bad, answer.text)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"sort": "oldest"}, 422),
        ({"category": "nowhere"}, 422),
        ({"tag": "x" * 100}, 422),
        ({"sort": "title", "q": "demo"}, 400),
        ({"sort": "title", "page": "2"}, 400),
        ({"category": "staff", "mine": "1"}, 400),
    ],
)
async def test_bad_browse_values_are_refused(world: dict, params: dict, status: int) -> None:
    answer = await world["client"].get(
        "/api/videos", params=params, headers=world["headers"]["sam"]
    )
    assert answer.status_code == status, answer.text


async def test_the_browse_pages_link_tags_and_categories(world: dict) -> None:
    client, sam = world["client"], world["headers"]["sam"]
    page = await client.get("/tags/demo", headers=sam)
    assert page.status_code == 200
    assert "Demo of the harbour" in page.text and "Dealer demo" not in page.text
    assert 'href="/tags/harbour"' in page.text
    assert 'href="/browse/category/staff"' in page.text
    by_title = await client.get("/browse/category/staff?sort=title", headers=sam)
    assert by_title.status_code == 200
    text = by_title.text
    assert text.index("Demo of the harbour") < text.index("Quarterly numbers")
    assert "Harbour draft" not in text  # not published
    assert (await client.get("/browse/category/nowhere", headers=sam)).status_code == 404
    watch = await client.get(f"/watch/{world['videos']['demo'].id}", headers=sam)
    assert 'href="/tags/demo"' in watch.text and 'href="/browse/category/staff"' in watch.text


async def test_more_pages_without_javascript(world: dict, monkeypatch) -> None:
    from clipsync.web import organise_pages

    monkeypatch.setattr(organise_pages, "PAGE_SIZE", 1)
    client, boss = world["client"], world["headers"]["boss"]
    seen = []
    url = "/browse/category/staff?sort=title"
    for _ in range(10):
        page = await client.get(url, headers=boss)
        assert page.status_code == 200
        seen += [t for t in ("Demo of the harbour", "Quarterly numbers", "zebra crossing")
                 if f">{t}<" in page.text]  # fmt: skip
        if 'rel="next"' not in page.text:
            break
        url = page.text.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert seen == ["Demo of the harbour", "Quarterly numbers", "zebra crossing"]


async def test_title_ties_break_on_id(world: dict) -> None:
    ann = world["users"]["ann"]
    for _ in range(3):
        await Video.create(owner=ann, title="Same", category="staff", status="APPROVED")
    titles = await walk(world["client"], world["headers"]["boss"], size=1, sort="title")
    assert titles.count("Same") == 3 and len(titles) == 8
