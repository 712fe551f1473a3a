"""The list and search queries read indexes, never the whole videos table.

20,000 videos in five categories (enough that PostgreSQL's planner, after ANALYZE,
prefers an index wherever one serves), then each query the list and search run is
explained: for every viewer role, the keyset list's first page and a page after a
cursor, an uploader's own videos, a numbered page and its bounded count, and a search.
SQLite's `EXPLAIN QUERY PLAN` must not `SCAN` the videos table (only an admin's
queries, which filter nothing, may scan an index in order), and the keyset queries
must come out of their index in order (no temporary B-tree for the ORDER BY).
PostgreSQL's `EXPLAIN (FORMAT JSON)` must have no `Seq Scan` on videos, no index scan
of videos without an index condition unless for an admin, and again no `Sort` for the
keyset queries. SQLite is explained without ANALYZE, as an
install's database is.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clipsync import db
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.services import search, videos

ROWS = 20_000
CATEGORIES = [f"c{n}" for n in range(5)]
_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
async def library(request, make_settings, migrated_sqlite: Path):
    tables: dict[str, Any] = {}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"plans_{next(_databases)}")}
    settings = make_settings(**tables)
    if request.param == "postgres":
        await db.migrate(settings)
    else:
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    await db.open_database(settings)
    try:
        await fill()
        if request.param == "postgres":
            await Video._meta.db.execute_script("ANALYZE")
        yield request.param
    finally:
        await db.close_database()


async def fill() -> None:
    await User.bulk_create(
        [
            User(email=f"u{n}@example.org", password_hash="-", category=CATEGORIES[n % 5])
            for n in range(40)
        ]
    )
    owners = await User.all()
    chance = random.Random(15)
    statuses = [VideoStatus.APPROVED] * 6 + [
        VideoStatus.READY, VideoStatus.PROCESSING, VideoStatus.FAILED, VideoStatus.REJECTED
    ]  # fmt: skip
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(ROWS):
        owner = chance.choice(owners)
        rows.append(
            Video(
                owner_id=owner.id,
                title=f"Clip {n}" + (" rareword" if n % 100 == 0 else ""),
                category=owner.category,
                status=chance.choice(statuses),
                # Two videos per second: the cursor's tie on created_at is exercised.
                created_at=start + timedelta(seconds=n // 2),
            )
        )
    await Video.bulk_create(rows, batch_size=2000)


def viewers(owner: User) -> Iterator[tuple[str, User]]:
    yield "user", owner
    yield "editor", User(id=owner.id, role=Role.EDITOR, category=owner.category)
    yield "admin", User(id=owner.id, role=Role.ADMIN, category=owner.category)


async def list_queries() -> list[tuple[str, str, list[Any], list[str] | None, bool]]:
    """(name, sql, params, ordered, everything): `ordered` is None, or the columns of the
    keyset query's branch, each of which its index must seek on before it reads rows in
    order; `everything` says the query filters nothing (an admin's)."""
    owner = await User.get(email="u3@example.org")
    middle = await Video.filter(category=owner.category).order_by("-created_at").offset(900)
    position = (middle[0].created_at, middle[0].id)
    queries = []
    for role, viewer in viewers(owner):
        for where, after in (("first page", None), ("after a cursor", position)):
            for mine in (False, True):
                keyset = videos.keyset_queries(viewer, after, 21, mine=mine)
                branches = [{"owner_id": viewer.id}] if mine else videos.visibility_branches(viewer)
                for number, (query, branch) in enumerate(
                    zip(keyset, branches or [{}], strict=True)
                ):
                    name = f"{role} {'own' if mine else 'list'} {where}, branch {number}"
                    sql = query.sql(params_inline=True)
                    queries.append((name, sql, [], sorted(branch), not branch))
        everything = role == "admin"
        queries += [
            (f"{role} page 3", *videos.page_sql(viewer, 3, 24), None, everything),
            (f"{role} count", *videos.count_sql(viewer, videos.COUNT_LIMIT + 1), None, everything),
            (f"{role} search", *search.search_sql(viewer, ["rareword"], 1, 24), None, False),
        ]
    return queries


async def sqlite_problems(
    sql: str, params: list[Any], ordered: list[str] | None, everything: bool
) -> list[str]:
    _, rows = await Video._meta.db.execute_query("EXPLAIN QUERY PLAN " + sql, params)
    details = [row["detail"] for row in rows]
    problems = [
        d
        for d in details
        if re.match(r'SCAN ("?videos"?|v)\b', d) and not (everything and "INDEX" in d)
    ]
    if ordered is not None:
        problems += [d for d in details if "TEMP B-TREE" in d]
        seek = " ".join(d for d in details if d.startswith("SEARCH"))
        problems += [f"no seek on {column}" for column in ordered if f"{column}=?" not in seek]
    return problems


async def postgres_problems(
    sql: str, params: list[Any], ordered: list[str] | None, everything: bool
) -> list[str]:
    _, rows = await Video._meta.db.execute_query("EXPLAIN (FORMAT JSON) " + sql, params)
    plan = rows[0]["QUERY PLAN"]
    if isinstance(plan, str):
        plan = json.loads(plan)
    problems = []
    for node in nodes(plan[0]["Plan"]):
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "videos":
            problems.append("Seq Scan on videos")
        scan = node["Node Type"] in ("Index Scan", "Index Only Scan")
        whole = scan and "Index Cond" not in node and node.get("Relation Name") == "videos"
        if whole and not everything:
            problems.append(f"whole index {node['Index Name']} read")
        if ordered is not None and node["Node Type"] in ("Sort", "Incremental Sort"):
            problems.append(node["Node Type"])
    if ordered is not None:
        seek = " ".join(node.get("Index Cond", "") for node in nodes(plan[0]["Plan"]))
        problems += [
            f"no seek on {column}" for column in ordered if not re.search(rf"\b{column}\b", seek)
        ]
    return problems


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


async def test_list_and_search_queries_read_indexes(library: str) -> None:
    check = postgres_problems if library == "postgres" else sqlite_problems
    failures = {}
    for name, sql, params, ordered, everything in await list_queries():
        problems = await check(sql, params, ordered, everything)
        if problems:
            failures[name] = problems
    assert not failures, failures
