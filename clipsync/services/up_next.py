"""Up next: the videos offered after the one being watched.

Worked out ahead, for every viewer alike, by a periodic job (`refresh_if_due`, one
job consumer of the whole install per `[recommendations] refresh_minutes`):

1. **co_watched**: the videos most people who watched this one also watched
   (`clipsync.analytics.recommendations`, over `co_watch_days`);
2. **same_uploader**: the uploader's other videos, newest first;

and kept in the `UpNext` table, at most `CANDIDATES` of each kind per video. Only
published videos (APPROVED) are offered or given a list.

Read per request (`up_next`): the video's stored candidates, kept only where the
visibility rule (`services.videos.visible_to`, the feed's scope) lets this person see
them, topped up with the newest videos they may see when fewer than the list's size
remain; a video the job has not reached yet gets its uploader's other videos first.
Then every plugin's `filter_up_next` may reorder, remove or add; what a plugin adds
goes through the visibility rule too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from clipsync.models import UpNext, User, Video, VideoStatus
from clipsync.plugin_filters import has_implementations, run_filter
from clipsync.plugins import PluginHost
from clipsync.services import likes, site_alerts
from clipsync.services.videos import FEED, filtered_list, visible_to
from clipsync.settings import Settings

log = logging.getLogger(__name__)

CO_WATCHED = "co_watched"
SAME_UPLOADER = "same_uploader"
NEWEST = "newest"
# Candidates of each kind kept per video: more than a list shows, since each viewer
# may see only some of them.
CANDIDATES = 24
# The claim (see `site_alerts.claim`) that lets one consumer of the install refresh.
CLAIM = "up_next"
# Videos whose stored lists are compared and rewritten per transaction.
BATCH = 500


@dataclass(frozen=True)
class UpNextItem:
    """One video of an Up next list, and why it is offered (a plugin may say its own)."""

    video: Video
    reason: str


# --- the periodic job ----------------------------------------------------------------


async def refresh_if_due(settings: Settings, analytics: object) -> bool:
    """Refresh every list when a period has passed and this process claims it."""
    every = timedelta(minutes=settings.recommendations.refresh_minutes)
    # A little early, so that a consumer's next minute-tick after the period is not
    # a minute late every time.
    if not await site_alerts.claim(CLAIM, every=every - timedelta(seconds=30)):
        return False
    await refresh(settings, analytics)
    return True


async def refresh(settings: Settings, analytics: object) -> int:
    """Work out every published video's candidates again; return how many lists changed.

    When the analytics do not answer (`AnalyticsUnavailable`), it raises before
    writing anything: the stored lists stay as they were until the next period.
    """
    options = settings.recommendations
    since = datetime.now(UTC).date() - timedelta(days=options.co_watch_days - 1)
    co_watched = getattr(analytics, "co_watched", None)
    pairs = []
    if co_watched is not None:
        pairs = await co_watched(since, options.co_watch_min_seconds, CANDIDATES)
    published = await (
        Video.filter(status=VideoStatus.APPROVED)
        .order_by("-created_at", "-id")
        .values_list("id", "owner_id")
    )
    lists = candidates(published, ((p.video_id, p.other_id, p.viewers) for p in pairs))
    changed = 0
    ids = list(lists)
    for start in range(0, len(ids), BATCH):
        changed += await _store({key: lists[key] for key in ids[start : start + BATCH]})
    # Lists of videos no longer published (deleted ones go with their rows).
    await UpNext.filter(
        video_id__in=Subquery(Video.exclude(status=VideoStatus.APPROVED).values("id"))
    ).delete()
    log.info("Up next worked out for %d videos (%d changed)", len(ids), changed)
    return changed


Candidate = tuple[uuid.UUID, str, float]


def candidates(
    published: list[tuple[uuid.UUID, int]], pairs: Iterable[tuple[str, str, int]]
) -> dict[uuid.UUID, list[Candidate]]:
    """Each published video's candidates, best first: co-watched, then same uploader.

    `published` is (id, owner) newest first; `pairs` (video, other, viewers) as the
    analytics give them, best first per video. Pairs naming anything but two
    published videos are left out.
    """
    known = {str(video_id): video_id for video_id, _ in published}
    by_owner: dict[int, list[uuid.UUID]] = {}
    for video_id, owner_id in published:
        by_owner.setdefault(owner_id, []).append(video_id)
    lists: dict[uuid.UUID, list[Candidate]] = {video_id: [] for video_id, _ in published}
    for video, other, viewers in pairs:
        key, candidate = known.get(str(video)), known.get(str(other))
        if key is None or candidate is None or candidate == key:
            continue
        if len(lists[key]) < CANDIDATES:
            lists[key].append((candidate, CO_WATCHED, float(viewers)))
    for video_id, owner_id in published:
        chosen = {candidate for candidate, _, _ in lists[video_id]} | {video_id}
        same = [other for other in by_owner[owner_id] if other not in chosen]
        lists[video_id] += [(other, SAME_UPLOADER, 0.0) for other in same[:CANDIDATES]]
    return lists


async def _store(lists: dict[uuid.UUID, list[Candidate]]) -> int:
    """Rewrite the stored lists that differ from `lists`; return how many did."""
    stored: dict[uuid.UUID, list[Candidate]] = {key: [] for key in lists}
    rows = (
        await UpNext.filter(video_id__in=list(lists))
        .order_by("video_id", "rank")
        .values_list("video_id", "candidate_id", "reason", "score")
    )
    for video_id, candidate_id, reason, score in rows:
        stored[_uuid(video_id)].append((_uuid(candidate_id), reason, score))
    changed = [key for key, wanted in lists.items() if stored[key] != wanted]
    if not changed:
        return 0
    async with in_transaction():
        await UpNext.filter(video_id__in=changed).delete()
        await UpNext.bulk_create(
            [
                UpNext(video_id=key, candidate_id=candidate, rank=rank, reason=reason, score=score)
                for key in changed
                for rank, (candidate, reason, score) in enumerate(lists[key])
            ],
            batch_size=1000,
        )
    return len(changed)


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# --- per request ------------------------------------------------------------------------


async def up_next(plugins: PluginHost, user: User, video: Video, size: int) -> list[UpNextItem]:
    """What `user` is offered after `video` (which they may see), at most `size`."""
    rows = (
        await UpNext.filter(video_id=video.id)
        .order_by("rank")
        .values_list("candidate_id", "reason")
    )
    reasons = {_uuid(candidate): reason for candidate, reason in rows}
    seen = await _visible(user, list(reasons))
    items = [UpNextItem(seen[key], reasons[key]) for key in reasons if key in seen]
    if not rows:  # not worked out yet: a new video
        same = await (
            visible_to(user, FEED)
            .filter(owner_id=video.owner_id)
            .exclude(id=video.id)
            .order_by("-created_at", "-id")
            .limit(size)
        )
        items += [UpNextItem(other, SAME_UPLOADER) for other in same]
    items = items[:size]
    if len(items) < size:
        items += [UpNextItem(other, NEWEST) for other in await _newest(user, video, items, size)]
    if has_implementations(plugins, "filter_up_next"):
        items = await _filtered(plugins, user, video, items)
    return items[:size]


async def _visible(user: User, ids: list[uuid.UUID]) -> dict[uuid.UUID, Video]:
    """The videos of `ids` that `user` may see in the feed, by id."""
    if not ids:
        return {}
    found = await visible_to(user, FEED).filter(id__in=ids)
    return {_uuid(found_video.id): found_video for found_video in found}


async def _newest(user: User, video: Video, items: list[UpNextItem], size: int) -> list[Video]:
    taken = [video.id, *(item.video.id for item in items)]
    return await (
        visible_to(user, FEED)
        .exclude(id__in=taken)
        .order_by("-created_at", "-id")
        .limit(size - len(items))
    )


async def _filtered(
    plugins: PluginHost, user: User, video: Video, items: list[UpNextItem]
) -> list[UpNextItem]:
    """The plugins' `filter_up_next`; what they add must be visible to `user` too."""
    changed = await run_filter(plugins, "filter_up_next", "videos", items, user=user, video=video)
    offered = {item.video.id for item in items}
    added = [
        item.video.id
        for item in changed
        if isinstance(item, UpNextItem) and item.video.id not in offered
    ]
    allowed = set(await _visible(user, added)) if added else set()
    kept: list[UpNextItem] = []
    ids: set[uuid.UUID] = set()
    for item in changed:
        if not isinstance(item, UpNextItem):
            log.error("filter_up_next: %r is not an UpNextItem; left out", item)
            continue
        key = _uuid(item.video.id)
        if key in ids or key == video.id or (key not in offered and key not in allowed):
            continue
        ids.add(key)
        kept.append(item)
    return kept


async def items_json(
    plugins: PluginHost, items: list[UpNextItem], viewer: User
) -> list[dict[str, Any]]:
    """Each item as the video's JSON in lists, with its `reason`."""
    listed = await likes.add_counts([item.video for item in items], viewer)
    shown = await filtered_list(plugins, listed, viewer)
    return [data | {"reason": item.reason} for data, item in zip(shown, items, strict=True)]
