"""The new branches of the visibility rule read indexes too (see test_listing_plans.py).

The same 20,000 videos, a tenth of them also published to a second category
(`video_categories`) and a few hundred granted to one person (`video_grants`). As in a
real library, what one viewer seeks is a small part of each table: most rows of
`video_categories` are of forty categories none of them belongs to, and most grants are
other people's. (With only the viewers' own rows, a quarter of a 2,000-row table, a
sequential scan is the planner's honest best, and its choice flipped from run to run.) For a
user and an editor who belong to two categories and have grants (their memberships
attached, as every request's actor has), each query the list and search run is
explained: the keyset list's first page and a page after a cursor, a numbered page and
its bounded count, and a search. No query may read the whole videos table, nor the
whole `video_categories` or `video_grants` table: each "published to" branch seeks
its category in `video_categories`, each grants branch the person in `video_grants`.

The search and its bounded count are held to the same on both databases. (On
PostgreSQL a search that ORed every branch in one WHERE beside the text match had the
planner join the matches to a sequential scan of videos once the audience branches
were in that OR; services/search.py now reads one branch at a time.)
"""

from __future__ import annotations

import itertools
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_listing_plans import CATEGORIES, fill, nodes, postgres_problems, sqlite_problems

from clipsync import db
from clipsync.models import Role, User, Video, VideoCategory, VideoGrant
from clipsync.services import search, videos
from clipsync.services.memberships import Memberships

_databases = itertools.count()
AUDIENCE_TABLES = ("video_categories", "video_grants")


@pytest.fixture(params=["sqlite", "postgres"])
async def library(request, make_settings, migrated_sqlite: Path):
    tables: dict[str, Any] = {}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"access_{next(_databases)}")}
    settings = make_settings(**tables)
    if request.param == "postgres":
        await db.migrate(settings)
    else:
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    await db.open_database(settings)
    try:
        await fill()
        await spread()
        if request.param == "postgres":
            await Video._meta.db.execute_script("ANALYZE")
        yield request.param
    finally:
        await db.close_database()


async def spread() -> None:
    """A tenth of the videos in a second category; 300 granted to u3, some expired;
    many more rows of other categories and people (module docstring)."""
    chance = random.Random(14)
    ids = await Video.all().values_list("id", "category")
    extra = [
        VideoCategory(
            video_id=video_id, category=chance.choice([c for c in CATEGORIES if c != own])
        )
        for video_id, own in ids
        if chance.random() < 0.1
    ]
    # Forty categories nobody here belongs to: each video is in one of them.
    extra += [
        VideoCategory(video_id=video_id, category=f"other{number % 40}")
        for number, (video_id, _) in enumerate(chance.sample(ids, 20_000))
    ]
    await VideoCategory.bulk_create(extra, batch_size=2000)
    person = await User.get(email="u3@example.org")
    others = await User.exclude(id=person.id).values_list("id", flat=True)
    now = datetime.now(UTC)
    grants = []
    for number, (video_id, _) in enumerate(chance.sample(ids, 300)):
        until = None if number % 3 else now + timedelta(days=(number % 7) - 3)
        grants.append(VideoGrant(video_id=video_id, user_id=person.id, until=until))
    # Grants of other people, so that the person's are a small part of the table.
    for video_id, _ in chance.sample(ids, 20_000):
        grants.append(VideoGrant(video_id=video_id, user_id=chance.choice(others)))
    await VideoGrant.bulk_create(grants, batch_size=2000, ignore_conflicts=True)


def attached(user: User) -> User:
    user.memberships = Memberships(
        extra=("c1",) if user.category != "c1" else ("c2",), granted=True
    )
    return user


def parameterized(query: Any) -> tuple[str, list[Any]]:
    """A queryset's SQL and parameters (`sql(params_inline=True)` leaves out those of a
    subquery)."""
    query._choose_db_if_not_chosen()
    query._make_query()
    sql, params = query.query.get_parameterized_sql()
    return sql, list(params)


async def access_queries() -> list[tuple[str, str, list[Any], bool]]:
    """(name, sql, params, everything) of every list and search query of two viewers."""
    owner = await User.get(email="u3@example.org")
    middle = await Video.filter(category=owner.category).order_by("-created_at").offset(900)
    position = (middle[0].created_at, middle[0].id)
    queries = []
    for role in (Role.USER, Role.EDITOR):
        viewer = attached(User(id=owner.id, role=role, category=owner.category))
        branches = videos.visibility_branches(viewer)
        assert any(videos.PUBLISHED_TO in b for b in branches)
        assert any(videos.GRANTED_TO in b for b in branches)
        for where, after in (("first page", None), ("after a cursor", position)):
            keyset = videos.keyset_queries(viewer, after, 21)
            for number, (query, branch) in enumerate(zip(keyset, branches, strict=True)):
                name = f"{role} list {where}, branch {number} {sorted(branch)}"
                queries.append((name, *parameterized(query), False))
        queries += [
            (f"{role} page 3", *videos.page_sql(viewer, 3, 24), False),
            (f"{role} count", *videos.count_sql(viewer, videos.COUNT_LIMIT + 1), False),
        ]
        queries += [
            (f"{role} search", *search.search_sql(viewer, ["rareword"], 1, 24), False),
            (f"{role} search count", *search.count_sql(viewer, ["rareword"], 1001), False),
        ]
    return queries


async def audience_sqlite_problems(sql: str, params: list[Any]) -> list[str]:
    _, rows = await Video._meta.db.execute_query("EXPLAIN QUERY PLAN " + sql, params)
    details = [row["detail"] for row in rows]
    whole = re.compile(r'SCAN "?(video_categories|video_grants|vc|g)"?\b')
    return [d for d in details if whole.match(d) and "COVERING INDEX" not in d]


async def audience_postgres_problems(sql: str, params: list[Any]) -> list[str]:
    _, rows = await Video._meta.db.execute_query("EXPLAIN (FORMAT JSON) " + sql, params)
    plan = rows[0]["QUERY PLAN"]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return [
        f"Seq Scan on {node['Relation Name']}"
        for node in nodes(plan[0]["Plan"])
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in AUDIENCE_TABLES
    ]


async def test_the_new_branches_read_indexes(library: str) -> None:
    videos_check = postgres_problems if library == "postgres" else sqlite_problems
    audience_check = (
        audience_postgres_problems if library == "postgres" else audience_sqlite_problems
    )
    failures = {}
    for name, sql, params, everything in await access_queries():
        problems = await videos_check(sql, params, None, everything)
        problems += await audience_check(sql, params)
        if problems:
            failures[name] = problems
    assert not failures, failures
