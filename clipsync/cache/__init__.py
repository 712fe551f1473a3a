"""The cache: check → miss → database → fill, and exact invalidation by the event bus.

Each process opens one (`start`, with the app or the job runtime): in memory by
default, in Redis when `[cache] backend = "redis"`, or off. Services ask it
(`current().get_or_fill(key, tags, read)`); handlers never do. What is cached, and
which tags it carries:

- the user behind a token: `identity:<user>:<token id>:<session>`, tagged
  `user:<id>` (services/accounts.py);
- a video's row `video:<shape>:<id>`, tagged `video:<id>`, and its owner's row
  `user:<shape>:<id>`, tagged `user:<id>` (services/video_reads.py);
- the newest ids of one branch of the visibility rule, for list pages and their
  counts: `head:<branch>`, tagged `lists:…` (services/video_reads.py);
- a rendered master playlist: `master:<id>`, tagged `video:<id>`
  (services/master_playlist.py);
- a video's like and comment counts: `counts:<id>`, tagged `likes:<id>` and
  `comments:<id>` (services/likes.py; services/comments.py says when they change);
  its tags: `tags:<id>`, tagged the same (services/tags.py); the chunk count of its
  last transcode: `chunks:<id>`, tagged `video:<id>`, never while it is PROCESSING
  (services/chunk_counts.py). What is one person's (liked by me, a resume point) is
  not cached.

Values are JSON values and come back read-only (mappings and tuples,
clipsync/cache/values.py): the memory backend hands every hit of an entry the same
object, so no request can change what another reads.

Invalidation follows the domain events services publish after their change commits
(`tags_of`): `account.*` → `user:<id>`; `video.*` → `video:<id>`, and unless it is
only a job's progress, the lists that may hold the video (`lists:all`,
`lists:category:<c>` of its category and of the one it left, `lists:owner:<id>`).
Rows saved through the ORM where no event says so (a display name, a caption track,
an upload's row as it is made) publish `cache.stale` with their tags (`watch_rows`).

Every process hears every event: the process that publishes invalidates its cache
before the event goes out (`events.on_publish`), so its own next answer is fresh; the
others drop their entries when their bus reader hears it (`events.on_delivery`). With
Redis the publisher's invalidation is already seen by every process; with memory
each other process is fresh once the news arrives (Redis pub/sub: milliseconds; the
SQLite log: within its half-second poll).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from clipsync import events
from clipsync.cache.stores import Cache, Lookup, MemoryCache, Stamp
from clipsync.settings import Settings

__all__ = ["Cache", "Lookup", "Stamp", "current", "start", "stop", "tags_of"]
log = logging.getLogger(__name__)
# Events that change what is cached: a video, an account, a row saved without one.
PREFIXES = ("video.", "account.", "cache.")
STALE = "cache.stale"

_cache: Cache = Cache()


def current() -> Cache:
    """This process's cache (off until `start`)."""
    return _cache


def open_cache(settings: Settings) -> Cache:
    """The backend `[cache] backend` names."""
    choice = settings.cache.backend
    if choice == "redis":
        from clipsync.cache.redis_store import RedisCache

        return RedisCache(settings.queue.redis_url.reveal(), settings.cache.ttl_seconds)
    if choice == "memory":
        return MemoryCache(settings.cache.memory_entries, settings.cache.ttl_seconds)
    return Cache()


async def start(settings: Settings) -> Cache:
    """Open this process's cache and have the event bus keep it fresh (once per process)."""
    global _cache
    await _cache.close()
    _cache = open_cache(settings)
    events.on_publish(PREFIXES, _published)
    events.on_delivery(PREFIXES, _heard)
    watch_rows()
    log.info("cache started (%s)", _cache.name)
    return _cache


async def stop() -> None:
    global _cache
    cache, _cache = _cache, Cache()
    await cache.close()


# -- invalidation -------------------------------------------------------------------------


def video_tag(video_id: Any) -> str:
    return f"video:{video_id}"


def user_tag(user_id: Any) -> str:
    return f"user:{user_id}"


def list_tags(owner_id: Any, *categories: Any) -> list[str]:
    """The tags of every list a video of `owner_id` in `categories` may be in."""
    tags = ["lists:all"]
    if owner_id is not None:
        tags.append(f"lists:owner:{owner_id}")
    tags += [f"lists:category:{c}" for c in dict.fromkeys(categories) if c is not None]
    return tags


def tags_of(event: events.Event) -> list[str]:
    """What an event makes stale (see the module docstring)."""
    data = event.data
    if event.name == STALE:
        return [str(tag) for tag in data.get("tags") or []]
    if event.name.startswith("account.") and data.get("userId") is not None:
        return [user_tag(data["userId"])]
    if event.name.startswith("video.") and data.get("videoId"):
        tags = [video_tag(data["videoId"])]
        if "progress" not in data:
            tags += list_tags(data.get("ownerId"), data.get("category"), data.get("oldCategory"))
        return tags
    return []


# Events this process published and has not heard back yet: it invalidated for them
# already, so hearing them again from the bus changes nothing here (and does not
# make entries filled since then stale for nothing).
_echoes: Counter[str] = Counter()
MAX_ECHOES = 10_000


async def _published(event: events.Event) -> None:
    tags = tags_of(event)
    if tags:
        await _cache.invalidate(tags)
        if len(_echoes) > MAX_ECHOES:
            _echoes.clear()  # a transport that lost news: hearing one twice is harmless
        _echoes[event.encode()] += 1


def _heard(event: events.Event) -> None:
    tags = tags_of(event)
    if not tags:
        return
    payload = event.encode()
    if _echoes[payload] > 0:
        _echoes[payload] -= 1
        if not _echoes[payload]:
            del _echoes[payload]
        return
    _cache.heard(tags)


async def stale(tags: Sequence[str]) -> None:
    """Say that `tags` changed, to this process's cache and every other one."""
    await events.publish(STALE, tags=list(tags))


def watch_rows() -> None:
    """Publish `cache.stale` when a user, video or caption row is saved or deleted
    through the ORM: the writes no domain event announces (a display name, a caption
    track, an upload's row as it is made, an abandoned upload deleted).

    A save inside a transaction is announced before it commits; the services that
    write in transactions publish their domain event after the commit as well, which
    makes the entries filled in between stale again.
    """
    from tortoise.signals import post_delete, post_save

    from clipsync.models import Caption, User, Video

    post_save(User)(_user_saved)
    post_delete(User)(_user_deleted)
    post_save(Video)(_video_saved)
    post_delete(Video)(_video_deleted)
    post_save(Caption)(_caption_changed)
    post_delete(Caption)(_caption_deleted)


async def _user_saved(_sender: Any, user: Any, *_args: Any) -> None:
    await stale([user_tag(user.id)])


async def _user_deleted(_sender: Any, user: Any, *_args: Any) -> None:
    await stale([user_tag(user.id)])


async def _video_saved(_sender: Any, video: Any, *_args: Any) -> None:
    await _video_changed(video)


async def _video_deleted(_sender: Any, video: Any, *_args: Any) -> None:
    await _video_changed(video)


async def _video_changed(video: Any) -> None:
    # A saved row may have joined or left lists (made, status, category): those of
    # its category now; the services that move one say by their event which it left.
    await stale([video_tag(video.id), *list_tags(video.owner_id, video.category)])


async def _caption_changed(_sender: Any, caption: Any, *_args: Any) -> None:
    await stale([video_tag(caption.video_id)])


async def _caption_deleted(_sender: Any, caption: Any, *_args: Any) -> None:
    await stale([video_tag(caption.video_id)])
