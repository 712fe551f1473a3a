"""Browsing the library: by category and by tag, sorted newest first, by title or by
views, one keyset page at a time.

Every list here is the visibility rule's (`services.videos.visibility_branches`, in
the caller's scope) narrowed, never a rule of its own: a category narrows each branch
twice, to the videos whose own category it is and to those published to it besides
(`narrowed_branches`); a tag joins each branch to the tag's videos.

Like the home list (`videos.list_after`), each branch is read on its own from its
index, in the sort's order, from the cursor on, at most a page and one rows; the
database merges the branches (a UNION ordered and cut to a page), so ties and
collations are the database's own on both sides of the cursor. What a page costs:

- `newest`: the branch indexes on `created_at, id` (models/videos.py).
- `title`: case-insensitively (`lower(title)`), the branch indexes on
  `lower(title), id` (migration 13).
- with a tag: the tag's videos (`video_tags (tag_id, video_id)`) in each branch,
  sorted: a page costs what the tag holds, not what the library holds.
- `views`: there is no view count in the database to index (the analytics store
  keeps views, `services/view_counts.py`). The most viewed `VIEWS_DEPTH` videos of
  all time are ranked by the analytics (one ranking for everyone, kept in the cache
  for `[cache] ttl_seconds`) and listed first, those the person may see, in that
  order; the rest follow newest first. So a page never costs more than one read of
  `VIEWS_DEPTH` ids, and "most viewed" is exact down to the `VIEWS_DEPTH`th video.

A cursor names the sort and the position of the last video shown (its sort key and
id); one made for another sort, or edited, is refused with a 400. A cursor is a
position, not a permission: every row is still read through the rule.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from tortoise.expressions import Q, Subquery

from clipsync import cache
from clipsync.analytics.events import Period
from clipsync.errors import BadRequest, ValidationFailed
from clipsync.models import User, Video, VideoCategory
from clipsync.services import tags as video_tags
from clipsync.services.videos import (
    ALL,
    MAX_CURSOR,
    Slice,
    branch_sql,
    in_order,
    may_see,
    placeholders,
    visibility_branches,
    visible_to,
)
from clipsync.services.visibility_queries import ALSO_PUBLISHED_TO, PUBLISHED_TO
from clipsync.settings import Settings

log = logging.getLogger(__name__)

SORTS = ("newest", "views", "title")
VIEWS_DEPTH = 1_000
RANKING_KEY = "ranking:views:all-time"
# The list waits this long for the analytics; a slower store lists newest first.
TIMEOUT_SECONDS = 2.0
Branch = dict[str, Any]


@dataclass(frozen=True)
class Browse:
    """What a list is narrowed to and how it is sorted; empty strings narrow nothing."""

    category: str = ""
    tag: str = ""
    sort: str = "newest"

    @property
    def narrowed(self) -> bool:
        return bool(self.category or self.tag or self.sort != "newest")


def browse_of(settings: Settings, category: Any, tag: Any, sort: Any) -> Browse:
    """The `category`, `tag` and `sort` query values, checked (422 for an unknown one)."""
    category = category.strip() if isinstance(category, str) else ""
    if category and category not in {c.name for c in settings.categories}:
        raise ValidationFailed(f"There is no category {category!r}.", field="category")
    tag = tag.strip() if isinstance(tag, str) else ""
    if len(tag) > video_tags.MAX_LENGTH:
        raise ValidationFailed(f"Tags are at most {video_tags.MAX_LENGTH} characters.", field="tag")
    sort = sort.strip() if isinstance(sort, str) and sort.strip() else "newest"
    if sort not in SORTS:
        raise ValidationFailed(f"sort is one of {', '.join(SORTS)}.", field="sort")
    return Browse(category=category, tag=tag, sort=sort)


def narrowed_branches(user: User, scope: str, category: str) -> list[Branch]:
    """The rule's branches for `user`, each narrowed to `category` (when given).

    A video is in a category when it is its own (`Video.category`) or one of the others
    it is published to (`VideoCategory`): so each branch becomes two, one for each,
    less those that cannot hold the category (a branch of another own category).
    """
    branches = visibility_branches(user, scope) or [{}]
    if not category:
        return branches
    narrowed: list[Branch] = []
    for branch in branches:
        if branch.get("category", category) == category:
            narrowed.append(branch | {"category": category})
        if branch.get(PUBLISHED_TO, category) == category:
            narrowed.append(branch | {PUBLISHED_TO: category})
        else:  # already "published to" another category: and to this one
            narrowed.append(branch | {ALSO_PUBLISHED_TO: category})
    # Less the branches another one holds whole (one more read each, for nothing).
    terms = [_terms(branch) for branch in narrowed]
    return [
        branch
        for number, branch in enumerate(narrowed)
        if not any(
            other < terms[number] or (other == terms[number] and earlier < number)
            for earlier, other in enumerate(terms)
        )
    ]


def _terms(branch: Branch) -> frozenset[tuple[str, str]]:
    # What a branch asks, "published to" the same whichever of its two keys says it.
    published = (PUBLISHED_TO, ALSO_PUBLISHED_TO)
    return frozenset((PUBLISHED_TO if k in published else k, str(v)) for k, v in branch.items())


# -- the cursor ------------------------------------------------------------------------


def encode_cursor(sort: str, key: Any, video_id: Any = None, rank: int | None = None) -> str:
    """The `after` value that continues a `sort` list after the key and id given (or,
    within the views ranking, at `rank`)."""
    data: dict[str, Any] = {"s": sort}
    if rank is not None:
        data["r"] = rank
    else:
        data["k"] = key.isoformat() if isinstance(key, datetime) else key
        data["id"] = str(video_id)
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Position:
    key: Any = None
    video_id: uuid.UUID | None = None
    rank: int | None = None


def decode_cursor(sort: str, cursor: str) -> Position:
    """The position a cursor of a `sort` list names; 400 for anything else."""
    try:
        if len(cursor) > 4 * MAX_CURSOR:  # a title is longer than a time
            raise ValueError
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("s") != sort:
            raise ValueError
        if sort == "views" and set(data) == {"s", "r"}:
            rank = data["r"]
            if not isinstance(rank, int) or isinstance(rank, bool) or not 0 < rank <= VIEWS_DEPTH:
                raise ValueError
            return Position(rank=rank)
        if set(data) != {"s", "k", "id"} or not isinstance(data["k"], str):
            raise ValueError
        key: Any = data["k"]
        if sort in ("newest", "views"):
            key = datetime.fromisoformat(key)
            if key.tzinfo is None:
                raise ValueError
        elif len(key) > 4 * 200:
            raise ValueError
        return Position(key=key, video_id=uuid.UUID(data["id"]))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(
            "after is not a cursor from this list; start again from the first page."
        ) from None


# -- the queries -----------------------------------------------------------------------


def _id_param(dialect: str, video_id: Any) -> Any:
    # PostgreSQL's ids are uuid, SQLite's their text.
    return uuid.UUID(str(video_id)) if dialect == "postgres" else str(video_id)


# Per sort: the key, its direction, and how a row after the cursor compares.
ORDERS = {"newest": ("v.created_at", " DESC", "<"), "title": ("lower(v.title)", "", ">")}


def branch_read_sql(
    branch: Branch,
    sort: str,
    position: Position | None,
    limit: int,
    mark: Callable[[], str],
    tag_id: int | None = None,
    exclude: list[str] | None = None,
) -> tuple[str, list[Any]]:
    """One branch of a list: its `limit` first rows (`id`, sort key `k`) from `position`,
    read from the branch's index in the sort's order (see the module docstring)."""
    dialect = Video._meta.db.capabilities.dialect
    key, direction, after = ORDERS[sort]
    where, values = branch_sql(branch, "v", mark)
    joins = ""
    if tag_id is not None:
        joins = " JOIN video_tags vt ON vt.video_id = v.id"
        where += f" AND vt.tag_id = {mark()}"
        values.append(tag_id)
    if position is not None:
        # The last term bounds the index range after the branch's equalities (a row
        # comparison would not, on PostgreSQL); the first two break ties on the key.
        # One mark per use: SQLite's ? are taken in order.
        where += f" AND ({key} {after} {mark()} OR ({key} = {mark()} AND v.id {after} {mark()}))"
        where += f" AND {key} {after}= {mark()}"
        at, video_id = position.key, _id_param(dialect, position.video_id)
        values += [at, at, video_id, at]
    if exclude:
        if dialect == "postgres":
            where += f" AND NOT (v.id = ANY({mark()}::uuid[]))"
            values.append([uuid.UUID(x) for x in exclude])
        else:
            where += f" AND v.id NOT IN ({', '.join(mark() for _ in exclude)})"
            values += list(exclude)
    sql = (
        f"SELECT v.id AS id, {key} AS k FROM videos v{joins} WHERE {where} "
        f"ORDER BY {key}{direction}, v.id{direction} LIMIT {mark()}"
    )
    return sql, [*values, limit]


def page_sql(
    branches: list[Branch],
    sort: str,
    position: Position | None,
    limit: int,
    tag_id: int | None = None,
    exclude: list[str] | None = None,
) -> tuple[str, list[Any]]:
    """One page of a list: each branch read on its own (`branch_read_sql`), then merged
    and cut to `limit` by the database. `sort` is "newest" or "title"; `exclude`: ids
    left out (the views ranking's)."""
    mark = placeholders(Video._meta.db.capabilities.dialect)
    reads, params = [], []
    for number, branch in enumerate(branches):
        sql, values = branch_read_sql(branch, sort, position, limit, mark, tag_id, exclude)
        reads.append(f"SELECT * FROM ({sql}) b{number}")
        params += values
    direction = ORDERS[sort][1]
    sql = f"SELECT id, k FROM ({' UNION '.join(reads)}) u ORDER BY k{direction}, id{direction} "
    return sql + f"LIMIT {mark()}", [*params, limit]


async def _read(
    branches: list[Branch],
    sort: str,
    position: Position | None,
    limit: int,
    tag_id: int | None,
    exclude: list[str] | None = None,
) -> list[tuple[str, Any]]:
    """(id, sort key) of one page, in order."""
    if not branches or limit <= 0:
        return []
    sql, params = page_sql(branches, sort, position, limit, tag_id, exclude)
    _, rows = await Video._meta.db.execute_query(sql, params)
    found = []
    for row in rows:
        key = row["k"]
        if sort != "title" and isinstance(key, str):  # SQLite gives its text
            key = datetime.fromisoformat(key)
        found.append((str(row["id"]), key))
    return found


async def list_browse(
    user: User,
    browse: Browse,
    after: str | None,
    size: int,
    scope: str = ALL,
    analytics: object | None = None,
) -> Slice:
    """The `size` videos of the list `browse` that `user` may see, after the cursor."""
    branches = narrowed_branches(user, scope, browse.category)
    tag_id = None
    if browse.tag:
        tag = await video_tags.tag_named(browse.tag)
        if tag is None:
            return Slice(items=[], next=None)
        tag_id = tag.id
    position = decode_cursor(browse.sort, after) if after else None
    if browse.sort == "views":
        return await _by_views(user, browse, branches, tag_id, position, size, scope, analytics)
    rows = await _read(branches, browse.sort, position, size + 1, tag_id)
    return await _slice(user, scope, browse.sort, rows, size)


async def _slice(
    user: User, scope: str, sort: str, rows: list[tuple[str, Any]], size: int
) -> Slice:
    """The page of `rows` (one more than `size` when there are more)."""
    shown = rows[:size]
    videos = await in_order([video_id for video_id, _ in shown])
    # Checked once more against the rule: a cached row is never trusted to decide.
    items = [video for video in videos if may_see(user, video, scope)]
    more = len(rows) > size and shown
    return Slice(
        items=items, next=encode_cursor(sort, shown[-1][1], shown[-1][0]) if more else None
    )


async def _by_views(
    user: User,
    browse: Browse,
    branches: list[Branch],
    tag_id: int | None,
    position: Position | None,
    size: int,
    scope: str,
    analytics: object | None,
) -> Slice:
    """The most viewed first (the ranking), then the rest newest first."""
    ranking = await ranked_ids(analytics)
    ranked: list[Video] = []
    if position is None or position.rank is not None:
        start = position.rank if position and position.rank else 0
        candidates = ranking[start:]
        allowed = await _ranked_allowed(user, scope, browse.category, tag_id, candidates)
        picked = [(start + n, v) for n, v in enumerate(candidates) if v in allowed]
        videos = await in_order([video_id for _, video_id in picked[:size]])
        ranked = [video for video in videos if may_see(user, video, scope)]
        if len(picked) > size:
            return Slice(items=ranked, next=encode_cursor("views", None, rank=picked[size][0]))
        position = None
    # After the ranking: every other video, newest first.
    rest = size - len(ranked)
    rows = await _read(branches, "newest", position, rest + 1, tag_id, exclude=ranking)
    shown = rows[:rest]
    videos = await in_order([video_id for video_id, _ in shown])
    items = [*ranked, *(video for video in videos if may_see(user, video, scope))]
    if len(rows) <= rest:
        return Slice(items=items, next=None)
    if shown:
        return Slice(items=items, next=encode_cursor("views", shown[-1][1], shown[-1][0]))
    # The ranking filled this page: the next starts the rest.
    return Slice(items=items, next=encode_cursor("views", None, rank=len(ranking)))


async def _ranked_allowed(
    user: User, scope: str, category: str, tag_id: int | None, candidates: list[str]
) -> set[str]:
    """Which of the ranked `candidates` the list holds for `user` (one query)."""
    if not candidates:
        return set()
    query = visible_to(user, scope).filter(id__in=candidates)
    if category:
        extra = VideoCategory.filter(category=category).values("video_id")
        query = query.filter(Q(category=category) | Q(id__in=Subquery(extra)))
    if tag_id is not None:
        query = query.filter(video_tags__tag_id=tag_id)
    return {str(video_id) for video_id in await query.values_list("id", flat=True)}


async def ranked_ids(analytics: object | None) -> list[str]:
    """The `VIEWS_DEPTH` most viewed videos of all time, most viewed first, from the
    cache; [] when the analytics cannot say (quickly)."""
    if analytics is None or getattr(analytics, "popular", None) is None:
        return []
    try:
        return await cache.current().get_or_fill(RANKING_KEY, (), lambda: _rank(analytics))
    except Exception as exc:  # any failure of the store: newest first this time
        log.info("no views ranking this time: %s", exc or type(exc).__name__)
        return []


async def _rank(analytics: Any) -> list[str]:
    oldest = await Video.all().order_by("created_at").limit(1).values_list("created_at", flat=True)
    today = datetime.now(UTC).date()
    first = min(oldest[0].astimezone(UTC).date(), today) if oldest else today
    period = Period(max(first, date(2000, 1, 1)), today)
    top = await asyncio.wait_for(analytics.popular(period, VIEWS_DEPTH), TIMEOUT_SECONDS)
    ids = []
    for entry in top:
        try:
            ids.append(str(uuid.UUID(str(entry.video_id))))
        except ValueError:
            continue
    return ids
