"""Playlists: the owner's CRUD and order; who may open one (private, the owner's
category, anyone signed in; everyone else 404); each video shown only to those the
visibility rule lets see it; the pages, and the watch page going on to the next."""

from __future__ import annotations

import organise_world
import pytest
from test_library import sign_in

from clipsync.models import PlaylistItem, Video, VideoStatus

world = organise_world.world  # the fixture


async def make(world: dict, who: str = "ann", **body) -> int:
    made = await world["client"].post(
        "/api/playlists", json={"title": "Harbour week", **body}, headers=world["headers"][who]
    )
    assert made.status_code == 201, made.text
    return made.json()["playlist"]["id"]


async def add(world: dict, playlist: int, *keys: str, who: str = "ann") -> None:
    for key in keys:
        added = await world["client"].post(
            f"/api/playlists/{playlist}/items",
            json={"videoId": str(world["videos"][key].id)},
            headers=world["headers"][who],
        )
        assert added.status_code == 201, added.text


async def titles(world: dict, playlist: int, who: str) -> list[str] | int:
    answer = await world["client"].get(f"/api/playlists/{playlist}", headers=world["headers"][who])
    if answer.status_code != 200:
        return answer.status_code
    body = answer.json()
    assert body["playlist"]["videoCount"] == len(body["items"])
    return [item["title"] for item in body["items"]]


async def test_the_owner_makes_fills_orders_and_deletes_a_playlist(world: dict) -> None:
    client, ann = world["client"], world["headers"]["ann"]
    playlist = await make(world, description="Things to watch")
    await add(world, playlist, "demo", "numbers", "draft")
    assert await titles(world, playlist, "ann") == [
        "Demo of the harbour",
        "Quarterly numbers",
        "Harbour draft",
    ]
    again = await client.post(
        f"/api/playlists/{playlist}/items",
        json={"videoId": str(world["videos"]["demo"].id)},
        headers=ann,
    )
    assert again.status_code == 409
    ids = [str(world["videos"][k].id) for k in ("draft", "demo", "numbers")]
    ordered = await client.put(
        f"/api/playlists/{playlist}/order", json={"videoIds": ids}, headers=ann
    )
    assert ordered.status_code == 200, ordered.text
    assert [v["title"] for v in ordered.json()["items"]] == [
        "Harbour draft",
        "Demo of the harbour",
        "Quarterly numbers",
    ]
    # Naming only some: those first, the others after as they were.
    partial = await client.put(
        f"/api/playlists/{playlist}/order", json={"videoIds": [ids[2]]}, headers=ann
    )
    assert [v["title"] for v in partial.json()["items"]] == [
        "Quarterly numbers",
        "Harbour draft",
        "Demo of the harbour",
    ]
    removed = await client.delete(f"/api/playlists/{playlist}/items/{ids[0]}", headers=ann)
    assert removed.status_code == 204
    assert await titles(world, playlist, "ann") == ["Quarterly numbers", "Demo of the harbour"]
    renamed = await client.patch(
        f"/api/playlists/{playlist}",
        json={"title": "Renamed", "audience": "signed_in"},
        headers=ann,
    )
    assert renamed.json()["playlist"]["title"] == "Renamed"
    mine = await client.get("/api/playlists", headers=ann)
    assert [(p["title"], p["videoCount"]) for p in mine.json()["items"]] == [("Renamed", 2)]
    assert (await client.delete(f"/api/playlists/{playlist}", headers=ann)).status_code == 204
    assert await titles(world, playlist, "ann") == 404
    assert await PlaylistItem.filter(playlist_id=playlist).count() == 0


async def test_who_may_open_a_playlist(world: dict) -> None:
    client, ann = world["client"], world["headers"]["ann"]
    playlist = await make(world)
    await add(world, playlist, "demo")
    # Private: the owner alone; not even an admin.
    assert await titles(world, playlist, "sam") == 404
    assert await titles(world, playlist, "boss") == 404
    # The owner's category: Sam (staff) yes, Dee (dealers) no.
    await client.patch(f"/api/playlists/{playlist}", json={"audience": "category"}, headers=ann)
    assert await titles(world, playlist, "sam") == ["Demo of the harbour"]
    assert await titles(world, playlist, "dee") == 404
    # Anyone signed in opens it, but sees only the videos they may see.
    await client.patch(f"/api/playlists/{playlist}", json={"audience": "signed_in"}, headers=ann)
    assert await titles(world, playlist, "dee") == []
    page = await client.get(f"/playlists/{playlist}", headers=world["headers"]["dee"])
    assert page.status_code == 200
    assert "0 videos you can watch (1 more you cannot)" in page.text
    assert "Demo of the harbour" not in page.text
    # Nobody signed in: never.
    assert (await client.get(f"/api/playlists/{playlist}")).status_code == 401


async def test_hidden_videos_are_skipped_for_each_viewer(world: dict) -> None:
    client = world["client"]
    playlist = await make(world, audience="signed_in")
    await add(world, playlist, "demo", "draft", "numbers")
    assert await titles(world, playlist, "ann") == [
        "Demo of the harbour",
        "Harbour draft",
        "Quarterly numbers",
    ]
    # Sam does not see Ann's READY draft; Ed (staff editor) does.
    assert await titles(world, playlist, "sam") == ["Demo of the harbour", "Quarterly numbers"]
    assert await titles(world, playlist, "ed") == [
        "Demo of the harbour",
        "Harbour draft",
        "Quarterly numbers",
    ]
    # Unpublished later: gone for Sam at once.
    await Video.filter(id=world["videos"]["numbers"].id).update(status=VideoStatus.READY)
    assert await titles(world, playlist, "sam") == ["Demo of the harbour"]
    page = await client.get(f"/playlists/{playlist}", headers=world["headers"]["sam"])
    assert "1 video you can watch (2 more you cannot)" in page.text


async def test_only_the_owner_changes_it_and_only_with_videos_they_see(world: dict) -> None:
    client, sam = world["client"], world["headers"]["sam"]
    playlist = await make(world, audience="signed_in")
    await add(world, playlist, "demo")
    video = str(world["videos"]["demo"].id)
    for method, path, body in [
        ("PATCH", "", {"title": "Mine now"}),
        ("DELETE", "", None),
        ("POST", "/items", {"videoId": video}),
        ("DELETE", f"/items/{video}", None),
        ("PUT", "/order", {"videoIds": [video]}),
    ]:
        answer = await client.request(
            method, f"/api/playlists/{playlist}{path}", json=body, headers=sam
        )
        assert answer.status_code == 404, (method, path, answer.text)
    # Ann cannot add a video she may not see (the dealers').
    refused = await client.post(
        f"/api/playlists/{playlist}/items",
        json={"videoId": str(world["videos"]["dealer"].id)},
        headers=world["headers"]["ann"],
    )
    assert refused.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": "  "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "audience": "everyone"}, "audience"),
        ({"title": "ok", "owner": 3}, "owner"),
        ({"title": "ok", "description": 5}, "description"),
    ],
)
async def test_bad_playlists_are_refused(world: dict, body: dict, field: str) -> None:
    answer = await world["client"].post(
        "/api/playlists", json=body, headers=world["headers"]["ann"]
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field


async def test_bad_orders_and_ids(world: dict) -> None:
    client, ann = world["client"], world["headers"]["ann"]
    playlist = await make(world)
    await add(world, playlist, "demo", "numbers")
    demo = str(world["videos"]["demo"].id)
    for ids in ([demo, demo], [str(world["videos"]["zebra"].id)], "x", [1]):
        answer = await client.put(
            f"/api/playlists/{playlist}/order", json={"videoIds": ids}, headers=ann
        )
        assert answer.status_code == 422, (ids, answer.text)
    assert (await client.get("/api/playlists/99999999999", headers=ann)).status_code == 404
    assert (
        await client.delete(f"/api/playlists/{playlist}/items/nope", headers=ann)
    ).status_code == 404


async def test_the_pages_and_playing_on(world: dict) -> None:
    client, ann = world["client"], world["headers"]["ann"]
    csrf = await sign_in(client, "ann@example.org")
    refused = await client.post("/playlists", data={"csrf_token": csrf, "title": ""})
    assert refused.status_code == 422 and "Give the playlist a title" in refused.text
    made = await client.post(
        "/playlists", data={"csrf_token": csrf, "title": "From the form", "audience": "private"}
    )
    assert made.status_code == 303, made.text
    client.cookies.clear()
    playlist = int(made.headers["location"].rsplit("/", 1)[1])
    await add(world, playlist, "demo", "numbers")
    listing = await client.get("/playlists", headers=ann)
    assert "From the form" in listing.text and "2 videos" in listing.text
    page = await client.get(f"/playlists/{playlist}", headers=ann)
    assert "2 videos you can watch" in page.text
    first, second = world["videos"]["demo"].id, world["videos"]["numbers"].id
    assert f'href="/watch/{first}?playlist={playlist}"' in page.text
    watch = await client.get(f"/watch/{first}?playlist={playlist}", headers=ann)
    assert f'data-next-id="{second}"' in watch.text
    assert "1 of 2" in watch.text
    last = await client.get(f"/watch/{second}?playlist={playlist}", headers=ann)
    assert "data-next-id" not in last.text and "This is the last video." in last.text
    # Someone who may not open it: the watch page simply plays the video alone.
    other = await client.get(f"/watch/{first}?playlist={playlist}", headers=world["headers"]["sam"])
    assert other.status_code == 200 and "playlist-playing" not in other.text
