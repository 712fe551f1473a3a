"""Search stems ("demos" finds "Demo"), searches tags and the uploader's name, keeps its
index in step with every write (titles, tags, display names, deletions), and still
applies the visibility rule inside the query: on SQLite (FTS5 porter) and PostgreSQL
(`[search] language`, english by default)."""

from __future__ import annotations

import organise_world
import pytest

from clipsync.models import User, Video
from clipsync.services import search, tags
from clipsync.services.videos import FEED

world = organise_world.world  # the fixture


async def titles(client, headers, query: str, scope: str = "") -> list[str]:
    params = {"q": query, "pageSize": 50} | ({"scope": scope} if scope else {})
    answer = await client.get("/api/videos", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return sorted(item["title"] for item in answer.json()["items"])


async def test_a_plural_finds_the_singular_and_a_verb_its_forms(world: dict) -> None:
    client, boss = world["client"], world["headers"]["boss"]
    assert await titles(client, boss, "demos") == ["Dealer demo", "Demo of the harbour"]
    assert await titles(client, boss, "harbours") == ["Demo of the harbour", "Harbour draft"]
    await Video.filter(id=world["videos"]["zebra"].id).update(title="Crossing roads safely")
    assert await titles(client, boss, "crossings") == ["Crossing roads safely"]
    assert await titles(client, boss, "cross") == ["Crossing roads safely"]


async def test_tags_and_the_uploaders_name_are_searched(world: dict) -> None:
    client, boss = world["client"], world["headers"]["boss"]
    assert await titles(client, boss, "finance") == ["Quarterly numbers"]
    # Dan has no display name: the part of his email before the "@" is his name.
    assert await titles(client, boss, "dan") == ["Dealer demo"]
    dan = world["users"]["dan"]
    dan.display_name = "Danielle Okafor"
    await dan.save()
    assert await titles(client, boss, "okafor") == ["Dealer demo"]
    assert await titles(client, boss, "dan") == ["Dealer demo"]  # "Danielle", a prefix


async def test_the_index_follows_every_write(world: dict) -> None:
    client, boss, ann = world["client"], world["headers"]["boss"], world["headers"]["ann"]
    numbers = world["videos"]["numbers"]
    edited = await client.patch(
        f"/api/videos/{numbers.id}",
        json={"title": "Lighthouse tour", "tags": ["Beacons"]},
        headers=ann,
    )
    assert edited.status_code == 200, edited.text
    assert await titles(client, boss, "lighthouses") == ["Lighthouse tour"]
    assert await titles(client, boss, "beacon") == ["Lighthouse tour"]
    assert await titles(client, boss, "quarterly") == []
    assert await titles(client, boss, "finance") == []  # the tag was taken off
    # A relabelled tag, and a deleted video.
    await tags.Tag.filter(name="beacons").update(label="Signals")
    assert await titles(client, boss, "signal") == ["Lighthouse tour"]
    deleted = await client.delete(f"/api/videos/{numbers.id}", headers=ann)
    assert deleted.status_code == 204
    assert await titles(client, boss, "lighthouse") == []


async def test_the_rule_applies_inside_the_search(world: dict) -> None:
    client, headers = world["client"], world["headers"]
    # Sam (staff) finds the staff demo, not the dealers' one, nor Ann's READY draft.
    assert await titles(client, headers["sam"], "demos") == ["Demo of the harbour"]
    assert await titles(client, headers["sam"], "harbour") == ["Demo of the harbour"]
    # Dee (dealers) finds only the dealers' demo; Ann her own draft too.
    assert await titles(client, headers["dee"], "demo") == ["Dealer demo"]
    assert await titles(client, headers["ann"], "harbour") == [
        "Demo of the harbour",
        "Harbour draft",
    ]
    # The feed: published only, even for Ann.
    assert await titles(client, headers["ann"], "harbour", "feed") == ["Demo of the harbour"]


async def test_counts_pages_and_odd_words(world: dict) -> None:
    boss = world["users"]["boss"]
    page = await search.search_visible(boss, "demo", 1, 1)
    assert page.total == 2 and len(page.items) == 1
    beyond = await search.search_visible(boss, "demo", 5, 1)
    assert beyond.total == 2 and beyond.items == []
    # Operators and stop words are plain words, never a syntax error.
    for odd in ['"', "a OR b", "NEAR(x y)", "the", "!:*&|", "don't", "demo*"]:
        await search.search_visible(boss, odd, 1, 10, FEED)


async def test_the_language_is_checked_and_changes_the_stemmer(world: dict) -> None:
    if world["database"] != "postgres":
        await search.use_language("french")  # nothing to do: porter is English only
        return
    boss = world["users"]["boss"]
    with pytest.raises(Exception, match="not a text search configuration"):
        await search.use_language("klingon")
    await search.use_language("simple")  # no stemming at all
    assert [v.title for v in (await search.search_visible(boss, "demos", 1, 10)).items] == []
    await search.use_language("english")
    found = (await search.search_visible(boss, "demos", 1, 10)).items
    assert sorted(v.title for v in found) == ["Dealer demo", "Demo of the harbour"]


async def test_a_new_video_is_found_at_once(world: dict) -> None:
    ann: User = world["users"]["ann"]
    await Video.create(owner=ann, title="Running drills", category="staff", status="APPROVED")
    found = await search.search_visible(world["users"]["boss"], "runs", 1, 10)
    assert [v.title for v in found.items] == ["Running drills"]
