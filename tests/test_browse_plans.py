"""The browse, tag and suggestion queries read indexes, never the whole videos table.

The library of `test_listing_plans` (20,000 videos in five categories, ANALYZEd on
PostgreSQL), with one video in fifty tagged. For every viewer role, each branch query
of a browsed list (newest first and by title; a category; a page after a cursor) must
seek on its branch's columns and come out of its index in order (no sort), except an
uploader's own branch narrowed to a category, which may sort what it reads of one
person's uploads (never a scan of the table); the merged
page, the tag's lists (which sort the tag's own videos, never the library's), the
views list's rest (without the ranked ids) and the tag suggestions must not scan
the videos table.
"""

from __future__ import annotations

from typing import Any

import test_listing_plans
from test_listing_plans import postgres_problems, sqlite_problems, viewers

from clipsync.models import Tag, User, Video, VideoTag
from clipsync.services import browse, search, tags
from clipsync.services.browse import Position
from clipsync.services.videos import placeholders
from clipsync.services.visibility_queries import ALSO_PUBLISHED_TO, PUBLISHED_TO

library = test_listing_plans.library  # the fixture


async def tag_some() -> Tag:
    tag = await Tag.create(name="rareword", label="Rareword")
    await Tag.create(name="rarely", label="Rarely")
    ids = await Video.all().order_by("created_at").values_list("id", flat=True)
    await VideoTag.bulk_create([VideoTag(video_id=v, tag_id=tag.id) for v in ids[::50]])
    return tag


async def browse_queries(tag: Tag) -> list[tuple[str, str, list[Any], list[str] | None, bool]]:
    """(name, sql, params, ordered, everything) as in `test_listing_plans.list_queries`."""
    owner = await User.get(email="u3@example.org")
    middle = await Video.filter(category=owner.category).order_by("-created_at").offset(900)
    positions = {
        "newest": Position(key=middle[0].created_at, video_id=middle[0].id),
        "title": Position(key=middle[0].title.lower(), video_id=middle[0].id),
    }
    dialect = Video._meta.db.capabilities.dialect
    queries = []
    for role, viewer in viewers(owner):
        everything = role == "admin"
        for category in ("", owner.category):
            branches = browse.narrowed_branches(viewer, "all", category)
            for sort, position in positions.items():
                for where, after in (("first page", None), ("after a cursor", position)):
                    label = f"{role} {sort} {category or 'all'} {where}"
                    for number, branch in enumerate(branches):
                        sql, params = browse.branch_read_sql(
                            branch, sort, after, 25, placeholders(dialect)
                        )
                        # The uploader's own branch narrowed to a category reads the
                        # uploader's index in order and filters: one person's uploads.
                        # So does a "published to" branch: it looks up what the
                        # category's other publications hold (`video_categories`).
                        audience = PUBLISHED_TO in branch or ALSO_PUBLISHED_TO in branch
                        own = "owner_id" in branch and category
                        seek = None if own or audience else sorted(branch)
                        queries.append((f"{label}, branch {number}", sql, params, seek, not branch))
                    sql, params = browse.page_sql(branches, sort, after, 25)
                    queries.append((f"{label}, merged", sql, params, None, everything))
                    sql, params = browse.page_sql(branches, sort, after, 25, tag_id=tag.id)
                    queries.append((f"{label}, tagged", sql, params, None, everything))
            ranked = [str(v) for v in await Video.all().limit(200).values_list("id", flat=True)]
            sql, params = browse.page_sql(branches, "newest", None, 25, exclude=ranked)
            queries.append(
                (f"{role} views rest {category or 'all'}", sql, params, None, everything)
            )
        sql, params = tags.suggest_sql(viewer, "rare", 10)
        queries.append((f"{role} tag suggestions", sql, params, None, False))
        sql, params = search.search_sql(viewer, ["rarewords"], 1, 24)
        queries.append((f"{role} stemmed search", sql, params, None, False))
    return queries


async def test_browse_tag_and_suggestion_queries_read_indexes(library: str) -> None:
    tag = await tag_some()
    if library == "postgres":
        await Video._meta.db.execute_script("ANALYZE")
    check = postgres_problems if library == "postgres" else sqlite_problems
    failures = {}
    for name, sql, params, ordered, everything in await browse_queries(tag):
        problems = await check(sql, params, ordered, everything)
        if problems:
            failures[name] = problems
    assert not failures, failures
