"""Browsing a category lists every video the person may see that is published to it:
its own category or one of the others it is published to (`VideoCategory`), through
each branch of the rule (own uploads, own categories, "published to", grants), in
every sort; and the browsed list agrees with the plain list, keyset and numbered, and
its count. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clients import PASSWORD, bearer

from clipsync import cache, db
from clipsync.models import Role, UserCategory, Video, VideoCategory, VideoGrant, VideoStatus
from clipsync.services import browse

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
    {"name": "partners", "label": "Partners", "self_select": True},
]
_databases = itertools.count()
APPROVED = VideoStatus.APPROVED
# title: (own category, other categories, status, uploaded by the viewer, granted to them)
VIDEOS = {
    "staff own": ("staff", [], APPROVED, False, False),
    "partners, also staff": ("partners", ["staff"], APPROVED, False, False),
    "dealers, also staff": ("dealers", ["staff"], APPROVED, False, False),
    "dealers, also partners and staff": ("dealers", ["partners", "staff"], APPROVED, False, False),
    "partners, also dealers and staff": ("partners", ["dealers", "staff"], APPROVED, False, False),
    "mine in partners, also staff": ("partners", ["staff"], VideoStatus.READY, True, False),
    "granted, partners, also staff": ("partners", ["staff"], APPROVED, False, True),
    "expired grant, also staff": ("partners", ["staff"], APPROVED, False, "expired"),
    "partners, not published to staff": ("partners", [], APPROVED, False, False),
    "dealers, not published to staff": ("dealers", ["partners"], APPROVED, False, False),
    "partners, also staff, unpublished": ("partners", ["staff"], VideoStatus.READY, False, False),
}
# The viewer is a user of dealers (primary) who also belongs to nothing else, so that a
# video published to staff is seen only through "published to dealers", a grant or an
# upload of one's own: browsing staff needs the narrowing of each of those branches.
SEEN_IN_STAFF = {
    "dealers, also staff",
    "dealers, also partners and staff",
    "partners, also dealers and staff",
    "mine in partners, also staff",
    "granted, partners, also staff",
}


@pytest.fixture(params=["sqlite", "postgres"])
async def site(request, start_app, make_settings, migrated_sqlite: Path):
    tables: dict[str, Any] = {"category": CATEGORIES}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"browse_extra_{next(_databases)}")}
    settings = make_settings(**tables)
    if request.param == "postgres":
        await db.migrate(settings)
    else:
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    accounts = app.ctx.accounts
    await accounts.create_user("boss@example.org", PASSWORD, role=Role.ADMIN, category="staff")
    uploader = await accounts.create_user("up@example.org", PASSWORD, category="partners")
    viewer = await accounts.create_user("dee@example.org", PASSWORD, category="dealers")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    for number, (title, (own, extra, status, mine, granted)) in enumerate(VIDEOS.items()):
        video = await Video.create(
            owner=viewer if mine else uploader, title=title, category=own, status=status,
            created_at=start + timedelta(minutes=number),
        )  # fmt: skip
        for category in extra:
            await VideoCategory.create(video=video, category=category)
        if granted:
            until = now - timedelta(hours=1) if granted == "expired" else None
            await VideoGrant.create(video=video, user=viewer, until=until)
    return client, bearer(accounts.start_session(viewer).token), viewer


async def walk(client, headers, **params: Any) -> list[str]:
    titles: list[str] = []
    after = ""
    for _ in range(30):
        body = (
            await client.get(
                "/api/videos", params={"after": after, "pageSize": 2, **params}, headers=headers
            )
        ).json()
        titles += [item["title"] for item in body["items"]]
        if not body["next"]:
            return titles
        after = body["next"]
    raise AssertionError("the list never ended")


async def test_browsing_a_category_lists_the_videos_published_to_it_as_another(site) -> None:
    client, headers, _ = site
    newest = await walk(client, headers, category="staff")
    assert set(newest) == SEEN_IN_STAFF
    assert len(newest) == len(SEEN_IN_STAFF)  # each once
    assert await walk(client, headers, category="staff", sort="title") == sorted(
        SEEN_IN_STAFF, key=str.lower
    )
    assert set(await walk(client, headers, category="staff", sort="views")) == SEEN_IN_STAFF
    assert await walk(client, headers, category="staff", scope="feed") == [
        title for title in newest if VIDEOS[title][2] == APPROVED
    ]


async def test_the_browsed_category_agrees_with_the_plain_lists_and_count(site) -> None:
    client, headers, _ = site
    numbered = (await client.get("/api/videos?pageSize=100", headers=headers)).json()
    keyset = (await client.get("/api/videos?pageSize=100&after=", headers=headers)).json()
    assert numbered["total"] == len(numbered["items"]) == len(keyset["items"])
    for category in ("staff", "dealers", "partners"):
        expected = [v["title"] for v in numbered["items"] if category in v["categories"]]
        assert expected == [v["title"] for v in keyset["items"] if category in v["categories"]]
        assert await walk(client, headers, category=category) == expected, category


async def test_a_person_of_several_categories_browses_each(site) -> None:
    client, headers, viewer = site
    await UserCategory.create(user=viewer, category="partners")
    # Their memberships are cached (a change through the API publishes an event): the
    # row is written straight here, so the cached ones are dropped by hand.
    await cache.stale([cache.user_tag(viewer.id)])
    staff = set(await walk(client, headers, category="staff"))
    assert staff == {title for title, v in VIDEOS.items() if "staff" in v[1] and _sees(v)}


def _sees(video: tuple) -> bool:
    # A dealer who also belongs to partners: approved videos of either category,
    # published to either, their own uploads, and unexpired grants.
    own, extra, status, mine, granted = video
    mine_categories = {"dealers", "partners"}
    published = {own, *extra} & mine_categories
    return mine or (status == APPROVED and (bool(published) or granted is True))


async def test_the_most_viewed_of_a_category_include_those_published_to_it(
    site, monkeypatch
) -> None:
    client, headers, _ = site
    ranking = [str(v) for v in await Video.all().order_by("title").values_list("id", flat=True)]

    async def ranked(_analytics: object) -> list[str]:
        return ranking

    monkeypatch.setattr(browse, "ranked_ids", ranked)
    # Every video is ranked: the list is the ranking, narrowed to what the person sees.
    assert await walk(client, headers, category="staff", sort="views") == sorted(SEEN_IN_STAFF)
