"""Videos as people see them: who may see which, listing, detail and resume points.

The visibility rule lives here and only here, so the list, the detail, search, the
HLS files and the progress endpoints can never disagree:

- everyone sees their own uploads, whatever their status;
- everyone sees the APPROVED videos of their own category;
- editors also see every video of their category, whatever its status;
- admins see everything.

Beyond one category (issue 14): "their category" is every category the person belongs
to (`memberships.categories_of`), and a video is in its primary category and in every
other one it is published to (`VideoCategory`; approved videos only: moderation stays
with the primary category's editors); a person also sees the approved videos granted
to them (`VideoGrant`, unexpired, while their account is active). Those two are loaded
with the person (`memberships.attach`: the request's actor always); a person never
attached is seen by the rule above alone. A share link is not a person's visibility:
it opens one video through its own entry point (services/share_links.py).

A video someone may not see is answered exactly like one that does not exist.

The rule has two scopes. `ALL` is every video the person may open: the detail, the
API's list and search, the moderation and library pages. `FEED` is what the home feed
shows of those: only the published (APPROVED) ones, so an admin's home is not the
moderation queue with rejected, failed and unfinished uploads in it.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from clipsync.errors import BadRequest, NotFound, ValidationFailed
from clipsync.media.chapters import chapters_json
from clipsync.models import Role, User, Video, VideoStatus, WatchProgress
from clipsync.plugin_filters import has_implementations, run_filter
from clipsync.services import chunk_counts, video_audience, video_reads
from clipsync.services import tags as video_tags
from clipsync.services.memberships import categories_of, memberships_of
from clipsync.services.visibility_queries import (
    GRANTED_TO,
    PUBLISHED_TO,
    branch_filter,
    branches_filter,
    branches_sql,
)
from clipsync.storage import keys

if TYPE_CHECKING:
    from clipsync.plugins import PluginHost

MAX_PAGE_SIZE = 100
# Far beyond any list ClipSync shows, and small enough that the row offset it means
# fits the database's integers (a larger one was a 500).
MAX_PAGE = 1_000_000
# The numbered list counts its videos up to here and then says "more": counting a
# whole large library on every request was most of a list request's cost. Measured
# on 100k videos, a viewer of two branches: 1.3 ms to count to 1,000, 35 ms to 10,000.
COUNT_LIMIT = 1_000
NEWEST_FIRST = 'ORDER BY "created_at" DESC, "id" DESC'
# Far longer than any cursor `encode_cursor` makes.
MAX_CURSOR = 200
# The scopes of the rule (see the module's docstring).
ALL = "all"
FEED = "feed"
SCOPES = (ALL, FEED)
# The keys of a video's JSON that `filter_video_json` cannot change or remove.
CORE_KEYS = ("id", "status", "playable", "hls", "ownerId", "category")


def visibility_branches(user: User, scope: str = ALL) -> list[dict[str, Any]] | None:
    """The rule for `user` as column equalities: a video is visible when it matches
    every column of at least one branch; None when every video is.

    The rule is data so that the ORM filter (`visibility_filter`), the search's SQL
    (`visibility_sql`) and the keyset list (one indexed read per branch, see
    `list_after`) are all made from this one statement of it. `scope=FEED` narrows
    every branch to the APPROVED videos.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown visibility scope {scope!r}")
    approved = {"status": str(VideoStatus.APPROVED)}
    if user.role == Role.ADMIN:
        branches = None
    else:
        # Editors see all of their categories' videos, whatever their status.
        status = {} if user.role == Role.EDITOR else approved
        categories = categories_of(user)
        branches = [{"owner_id": user.id}, *({"category": c} | status for c in categories)]
        loaded = memberships_of(user)
        if loaded is not None:
            branches += [{PUBLISHED_TO: c} | approved for c in categories]
            if loaded.granted and user.is_active:
                branches.append({GRANTED_TO: user.id} | approved)
    if scope == FEED:
        published = {"status": str(VideoStatus.APPROVED)}
        return [published] if branches is None else [branch | published for branch in branches]
    return branches


def scope_of(value: Any) -> str:
    """The `scope` query value (`all` when absent); 400 unless one of `SCOPES`."""
    scope = str(value).strip() if value else ALL
    if scope not in SCOPES:
        raise BadRequest(f"scope is one of {', '.join(SCOPES)}.")
    return scope


def visibility_filter(user: User, scope: str = ALL) -> Q:
    """The rule for `user` as a filter of `Video` queries."""
    return branches_filter(visibility_branches(user, scope))


def visibility_sql(
    user: User, alias: str, placeholder: Callable[[], str], scope: str = ALL
) -> tuple[str, list[Any]]:
    """The rule for `user` as a SQL condition on the videos table named `alias`, for the
    queries the ORM cannot write (search); `placeholder()` gives the next parameter mark
    (see `placeholders`).
    """
    return branches_sql(visibility_branches(user, scope), alias, placeholder)


def branch_sql(
    branch: dict[str, Any], alias: str, placeholder: Callable[[], str]
) -> tuple[str, list[Any]]:
    """One branch of the rule (`visibility_branches`) as SQL on the table `alias`, for
    the lists that read each branch on its own (services/browse.py)."""
    return branches_sql([branch] if branch else None, alias, placeholder)


def visible_to(user: User, scope: str = ALL) -> QuerySet[Video]:
    """Every video `user` may see (in the feed, with `scope=FEED`)."""
    return Video.filter(visibility_filter(user, scope))


def can_moderate(user: User, video: Video) -> bool:
    """Admins moderate every video; editors the videos whose (primary) category is one of
    theirs."""
    return user.role == Role.ADMIN or (
        user.role == Role.EDITOR and video.category in categories_of(user)
    )


def managed_by(user: User) -> QuerySet[Video]:
    """Every video `user` uploaded or may moderate (`can_moderate`), as it is now.

    Whose processing details and watch figures they may read.
    """
    if user.role == Role.ADMIN:
        return Video.all()
    if user.role == Role.EDITOR:
        return Video.filter(Q(owner_id=user.id) | Q(category__in=categories_of(user)))
    return Video.filter(owner_id=user.id)


async def get_visible(user: User, video_id: str | uuid.UUID) -> Video:
    """The video, if `user` may see it; `NotFound` otherwise (no existence leak)."""
    try:
        key = uuid.UUID(str(video_id))
    except ValueError:
        raise NotFound("There is no such video.") from None
    video = await visible_to(user).get_or_none(id=key)
    if video is None:
        raise NotFound("There is no such video.")
    return video


def matches(branches: list[dict[str, Any]] | None, video: Video) -> bool:
    """Whether `video`'s row matches one of `branches` (None or `{}`: every video)."""
    if not branches:
        return True
    return any(
        all(_column_matches(video, column, value) for column, value in branch.items())
        for branch in branches
    )


def _column_matches(video: Video, column: str, value: Any) -> bool:
    # The audience keys read what `video_audience.attach` loaded (nothing: no match).
    if column == PUBLISHED_TO:
        return video_audience.published_to(video, value)
    if column == GRANTED_TO:
        return video_audience.granted_to(video, value)
    return str(getattr(video, column)) == str(value)


def may_see(user: User, video: Video, scope: str = ALL) -> bool:
    """The rule for one row already read: what `visible_to(user)` would say of it."""
    return matches(visibility_branches(user, scope), video)


async def read_visible(user: User, video_id: str | uuid.UUID) -> Video:
    """`get_visible` through the cache, for reading only: the detail, the HLS files.

    The row is shared by everyone (`video:<id>`); whether this viewer may see it is
    decided here, per request, from the viewer's own row. A caller that changes the
    video reads it with `get_visible` instead, never saving a cached row.
    """
    try:
        key = uuid.UUID(str(video_id))
    except ValueError:
        raise NotFound("There is no such video.") from None
    video = await video_reads.video_row(key)
    if video is not None:
        await video_audience.attach([video])
    if video is None or not may_see(user, video):
        raise NotFound("There is no such video.")
    return video


@dataclass(frozen=True)
class Page:
    items: list[Video]
    total: int
    page: int
    page_size: int
    # True when counting stopped at COUNT_LIMIT: there are more than `total`.
    more: bool = False


def page_numbers(page: Any, page_size: Any, default_size: int = 20) -> tuple[int, int]:
    """The `page` and `pageSize` query values; 400 unless whole numbers in range."""
    number = _whole_number(page, 1)
    size = _whole_number(page_size, default_size)
    if number is None or size is None:
        raise BadRequest("page and pageSize must be whole numbers.")
    if not 1 <= number <= MAX_PAGE or not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequest(
            f"page is between 1 and {MAX_PAGE}; pageSize is between 1 and {MAX_PAGE_SIZE}."
        )
    return number, size


def _whole_number(value: Any, default: int) -> int | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return default
    # ASCII digits only: int() also takes "1_000", " +5" and other scripts' digits, and
    # fails with ValueError on more than 4300 of them. Twelve are plenty here.
    if text.isascii() and text.isdigit() and len(text) <= 12:
        return int(text)
    return None


async def list_visible(
    user: User, page: int, page_size: int, mine: bool = False, scope: str = ALL
) -> Page:
    """One numbered page of the list, newest first, for the plain page links.

    The count stops at COUNT_LIMIT, so no request counts a whole large library; the
    keyset list (`list_after`) has no count at all. `mine`: the person's own uploads
    (in `scope`) instead.

    The count and the pages up to the count's limit come from the cached heads of the
    person's branches (`video_reads.heads`); deeper pages ask the database.
    """
    branches = list_branches(user, mine, scope) or [{}]
    newest = video_reads.merged(await branch_heads(branches))
    total = len(newest)
    if page * page_size <= video_reads.HEAD:
        ids = newest[(page - 1) * page_size : page * page_size]
    else:
        sql, params = page_sql(user, page, page_size, mine, scope)
        _, rows = await Video._meta.db.execute_query(sql, params)
        ids = [str(row["id"]) for row in rows]
    # Checked once more against the rule: a head is never trusted to decide.
    items = [video for video in await in_order(ids) if matches(branches, video)]
    return Page(
        items=list(items),
        total=min(total, COUNT_LIMIT),
        page=page,
        page_size=page_size,
        more=total > COUNT_LIMIT,
    )


@dataclass(frozen=True)
class Slice:
    """A keyset page: its items and the cursor of the next one (None at the end)."""

    items: list[Video]
    next: str | None


async def list_after(
    user: User, after: str | None, size: int, mine: bool = False, scope: str = ALL
) -> Slice:
    """The `size` newest videos `user` may see that come after the cursor `after`.

    Each branch of the rule is read on its own from its index, newest first, from the
    cursor on, at most `size + 1` rows; the branches are merged by (created_at, id) and
    a video in two branches (one's own approved upload) is kept once. So a page costs
    the same at the top of a library of ten videos and deep in one of a million.
    """
    position = decode_cursor(after) if after else None
    if position is None and size + 1 <= video_reads.HEAD:
        # The first page, as the numbered list's: from the cached heads.
        branches = list_branches(user, mine, scope) or [{}]
        newest = video_reads.merged(await branch_heads(branches))[: size + 1]
        found = [video for video in await in_order(newest) if matches(branches, video)]
        more = len(newest) > size
        found = found[:size]
        return Slice(items=found, next=encode_cursor(found[-1]) if more and found else None)
    reads = [await query for query in keyset_queries(user, position, size + 1, mine, scope)]
    items: list[Video] = []
    seen: set[uuid.UUID] = set()
    for video in heapq.merge(*reads, key=_position, reverse=True):
        if video.id not in seen:
            seen.add(video.id)
            items.append(video)
    items = items[: size + 1]
    more = len(items) > size
    items = items[:size]
    await Video.fetch_for_list(items, "owner")
    return Slice(items=items, next=encode_cursor(items[-1]) if more else None)


def keyset_queries(
    user: User,
    position: tuple[datetime, uuid.UUID] | None,
    limit: int,
    mine: bool = False,
    scope: str = ALL,
) -> list[QuerySet[Video]]:
    """One query per branch of the rule: its `limit` newest videos after `position`."""
    branches = list_branches(user, mine, scope)
    queries = []
    for branch in branches or [{}]:
        query = Video.filter(branch_filter(branch))
        if position is not None:
            created_at, video_id = position
            # The first term bounds the index range; the second breaks ties on the instant.
            query = query.filter(
                Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=video_id),
                created_at__lte=created_at,
            )
        queries.append(query.order_by("-created_at", "-id").limit(limit))
    return queries


async def branch_heads(branches: list[dict[str, Any]]) -> list[list[video_reads.Position]]:
    """The head of each branch (`video_reads.heads`); a grants' branch's from
    `video_audience.granted_head`, which leaves out the grants that have expired."""
    shared = [branch for branch in branches if GRANTED_TO not in branch]
    found = iter(await video_reads.heads(shared) if shared else [])
    return [
        await video_audience.granted_head(branch, GRANTED_TO) if GRANTED_TO in branch
        else next(found)
        for branch in branches
    ]  # fmt: skip


def list_branches(user: User, mine: bool, scope: str) -> list[dict[str, Any]] | None:
    """The branches a list reads: the rule's, or with `mine` the person's own uploads."""
    if not mine:
        return visibility_branches(user, scope)
    own = {"owner_id": user.id}
    return [own | {"status": str(VideoStatus.APPROVED)}] if scope == FEED else [own]


def page_sql(
    user: User, page: int, page_size: int, mine: bool = False, scope: str = ALL
) -> tuple[str, list[Any]]:
    """The ids of one numbered page (`list_visible`), newest first."""
    mark = placeholders(Video._meta.db.capabilities.dialect)
    newest, params = _newest_ids(user, mine, scope, page * page_size, mark)
    sql = f"SELECT id FROM ({newest}) u {NEWEST_FIRST} LIMIT {mark()} OFFSET {mark()}"
    return sql, [*params, page_size, (page - 1) * page_size]


def count_sql(
    user: User, limit: int, mine: bool = False, scope: str = ALL
) -> tuple[str, list[Any]]:
    """How many videos the list holds, counted no further than `limit`: exact up to it."""
    mark = placeholders(Video._meta.db.capabilities.dialect)
    newest, params = _newest_ids(user, mine, scope, limit, mark)
    return f"SELECT count(*) AS n FROM ({newest}) u", params


def _newest_ids(
    user: User, mine: bool, scope: str, limit: int, mark: Callable[[], str]
) -> tuple[str, list[Any]]:
    """The `limit` newest ids (and times) of each branch of the rule, united.

    Like `list_after`, each branch is read from its index in order and no further than
    needed, and the database merges them: an OR of the branches in one query would
    have it sort, or count, every visible video first.
    """
    branches = list_branches(user, mine, scope)
    reads, params = [], []
    for number, branch in enumerate(branches or [{}]):
        where, values = branches_sql([branch] if branch else None, "v", mark)
        reads.append(
            f'SELECT * FROM (SELECT v."id", v."created_at" FROM videos v WHERE {where} '
            f"{NEWEST_FIRST} LIMIT {mark()}) b{number}"
        )
        params += [*values, limit]
    return " UNION ".join(reads), params


async def in_order(ids: list[str]) -> list[Video]:
    """The videos of `ids`, with their owners, in that order (one deleted meanwhile
    is left out). Rows and owners come through the cache (`video_reads`)."""
    by_id = await video_reads.video_rows(ids)
    await video_audience.attach(list(by_id.values()))  # for `matches`, and `categories`
    return await video_reads.with_owners([by_id[i] for i in ids if i in by_id])


def _position(video: Video) -> tuple[datetime, str]:
    # The databases order ids as their text (SQLite) or bytes (PostgreSQL): the same.
    return video.created_at, str(video.id)


def encode_cursor(video: Video) -> str:
    """The opaque `after` value that continues the list after `video`."""
    data = json.dumps({"t": video.created_at.isoformat(), "id": str(video.id)})
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a cursor names; 400 unless it is one `encode_cursor` makes.

    A cursor is a position, not a permission: an edited one only moves where the list
    starts, and every row is still read through the visibility rule.
    """
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) != {"t", "id"}:
            raise ValueError
        created_at = datetime.fromisoformat(data["t"])
        if created_at.tzinfo is None:
            raise ValueError
        return created_at, uuid.UUID(data["id"])
    except (ValueError, TypeError, binascii.Error):
        raise BadRequest(
            "after is not a cursor from this list; start again from the first page."
        ) from None


def placeholders(dialect: str) -> Callable[[], str]:
    """The next parameter mark of a raw query on `dialect`: ? or $1, $2, …"""
    if dialect != "postgres":
        return lambda: "?"
    numbers = itertools.count(1)
    return lambda: f"${next(numbers)}"


def video_json(video: Video, viewer: User) -> dict[str, Any]:
    """What the API shows of a video; processing details only to its uploader and admins."""
    data: dict[str, Any] = {
        "id": str(video.id),
        "title": video.title,
        "description": video.description,
        "category": video.category,
        "status": str(video.status),
        "duration": video.duration,
        "width": video.width,
        "height": video.height,
        "createdAt": video.created_at.isoformat() if video.created_at else None,
        "ownerId": video.owner_id,
        "playable": video.status in (VideoStatus.READY, VideoStatus.APPROVED),
        "chapters": chapters_json(video.description, video.duration),
        # Every category it is published to, the primary one first (`video_audience`).
        "categories": video_audience.categories_of(video),
    }
    # Read for a whole page at once by `tags.attach` (filtered_json, filtered_list);
    # left out rather than shown empty where nobody read them.
    if hasattr(video, "tag_labels"):
        data["tags"] = list(video.tag_labels)
    # `likes`, `liked`, `commentCount`: set in bulk for a page by `likes.add_counts`.
    data |= getattr(video, "social_counts", {})
    if data["playable"]:
        base = f"/hls/{video.id}"
        data["hls"] = f"{base}/master.m3u8"
        # The chosen poster: automatic, a picked candidate or an uploaded image
        # (services/thumbnails.py), each a file of the HLS tree.
        poster = keys.hls_path(video.id, video.poster_key) if video.poster_key else None
        data["poster"] = f"{base}/{poster}" if poster else None
        data["thumbnails"] = f"{base}/thumbnails.vtt" if video.thumbnails_key else None
    if viewer.id == video.owner_id or can_moderate(viewer, video):
        data |= {
            "moderationReason": video.moderation_reason,
            "moderatedAt": video.moderated_at.isoformat() if video.moderated_at else None,
            "progress": video.progress,
            "error": video.error,
            "encoder": video.encoder,
            # How many chunks its last transcode was cut into (1: one process).
            "chunks": chunk_counts.count(video),
            "originalFilename": video.original_filename,
            "size": video.size,
            "checksum": video.checksum,
            "videoCodec": video.video_codec,
            "audioCodec": video.audio_codec,
            "bitrate": video.bitrate,
        }
    return data


async def filtered_json(plugins: PluginHost, video: Video, viewer: User) -> dict[str, Any]:
    """`video_json` as the plugins' `filter_video_json` hooks leave it.

    The keys of `CORE_KEYS` stay as ClipSync made them (and absent where it left them
    out): players, links and the live pages rest on them.
    """
    await video_tags.attach([video])
    await chunk_counts.attach([video])
    await video_audience.attach([video])
    data = video_json(video, viewer)
    if not has_implementations(plugins, "filter_video_json"):
        return data
    changed = await run_filter(
        plugins, "filter_video_json", "data", data, video=video, viewer=viewer
    )
    for key in CORE_KEYS:
        if key in data:
            changed[key] = data[key]
        else:
            changed.pop(key, None)
    return changed


async def filtered_list(
    plugins: PluginHost, videos: list[Video], viewer: User
) -> list[dict[str, Any]]:
    """`filtered_json` of each of `videos`, in order."""
    await video_tags.attach(videos)  # one query for the page, not one per video
    await chunk_counts.attach(videos)
    await video_audience.attach(videos)
    return [await filtered_json(plugins, video, viewer) for video in videos]


async def progress_of(user: User, video: Video) -> float | None:
    row = await WatchProgress.get_or_none(user_id=user.id, video_id=video.id)
    return row.position if row else None


async def save_progress(user: User, video: Video, position: Any) -> float:
    """Keep where `user` stopped watching `video`, to resume from there."""
    if isinstance(position, bool) or not isinstance(position, int | float):
        raise ValidationFailed("position must be a number of seconds.", field="position")
    limit = video.duration or 0
    if position < 0 or (limit and position > limit + 1):
        raise ValidationFailed(
            f"position must be between 0 and {limit:.0f} seconds.", field="position"
        )
    position = float(min(position, limit) if limit else position)
    await WatchProgress.update_or_create(
        user_id=user.id, video_id=video.id, defaults={"position": position}
    )
    return position
