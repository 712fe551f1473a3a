"""The cache's one interface, and its embedded backends: in memory, and off.

A cache entry is a JSON value under a key, with tags naming what it was read from
(`video:<id>`, `user:<id>`, `lists:category:<name>`…). Invalidating a tag makes
every entry that carries it unreachable, in every backend the same way:

- each tag has a generation; an entry is stored with the generations its tags had
  *before* the read that made it (its stamp), and it is served only while they
  still have them. So a fill that read the database before a change and stores its
  answer after the change's invalidation stores something never served: no race
  between a slow read and a write can put a stale answer back.
- the memory backend also drops the entries of an invalidated tag at once, so
  they take no room; Redis leaves them to expire (`ttl_seconds`).

Values are JSON values and come out read-only, the same on every backend, hit or
miss (clipsync/cache/values.py): the memory backend keeps each entry decoded once and
hands every request that same frozen object, so a hit decodes nothing, and no request
can change what another reads.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clipsync.cache.values import settle

Tags = tuple[str, ...]
# What a tag's generations were when a read began: opaque to callers.
Stamp = tuple[Any, ...]


@dataclass
class Lookup:
    """One key's answer: `hit` and its `value` (read-only, see clipsync/cache/values.py),
    and the `stamp` to store a fill with."""

    hit: bool
    value: Any
    stamp: Stamp


@dataclass
class Counts:
    """Hits and misses of this process's cache since it started (the bench reads them)."""

    hits: int = 0
    misses: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)

    def count(self, key: str, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        kind = self.by_kind.setdefault(key.split(":", 1)[0], [0, 0])
        kind[0 if hit else 1] += 1


class Cache:
    """get / set / delete by key, invalidate by tag; and the fill paths built on them."""

    name = "off"
    enabled = False

    def __init__(self) -> None:
        self.counts = Counts()

    # -- what a backend provides ----------------------------------------------------------

    async def lookup(self, items: Sequence[tuple[str, Tags]]) -> list[Lookup]:
        """Each (key, tags)'s entry if its tags are unchanged since it was stored."""
        return [Lookup(False, None, ()) for _ in items]

    async def store(self, items: Sequence[tuple[str, Tags, Stamp, Any]]) -> None:
        """Keep each (key, tags, stamp, value), unless a tag changed since `stamp`.
        Each value is settled already (`values.settle`): read-only, kept as it is."""

    async def delete(self, key: str) -> None:
        """Forget one key."""

    async def invalidate(self, tags: Sequence[str]) -> None:
        """Make every entry carrying one of `tags` unreachable, for every process that
        shares this backend."""

    def heard(self, tags: Sequence[str]) -> None:
        """The event bus brought news that `tags` changed (called in its reader, so it
        must not wait): drop this process's entries of them."""

    async def close(self) -> None:
        """Release connections."""

    # -- the interface built on them ----------------------------------------------------

    async def get(self, key: str, tags: Sequence[str] = ()) -> Lookup:
        [found] = await self.lookup([(key, tuple(tags))])
        return found

    async def set(
        self, key: str, value: Any, tags: Sequence[str] = (), stamp: Stamp | None = None
    ) -> None:
        """Store `value`; pass the `stamp` of the `get` that missed so that a change
        made meanwhile wins (without one, the value is taken as current)."""
        value = settle(value)
        if stamp is None:
            stamp = (await self.get(key, tags)).stamp
        await self.store([(key, tuple(tags), stamp, value)])

    async def get_or_fill(
        self, key: str, tags: Sequence[str], fill: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Check the cache; on a miss read with `fill()` and keep what it gives. The
        value comes back read-only either way (clipsync/cache/values.py)."""
        [value] = await self.get_many_or_fill([key], lambda _: tags, _one(fill))
        return value

    async def get_many_or_fill(
        self,
        keys: Sequence[str],
        tags_of: Callable[[str], Sequence[str]],
        fill: Callable[[list[str]], Awaitable[dict[str, Any]]],
    ) -> list[Any]:
        """The value of each key: the hits from the cache, the misses from one
        `fill(missing keys)` call (a dict; a key it leaves out is None and not kept).
        A filled value comes back as a hit would give it: settled, read-only."""
        items = [(key, tuple(tags_of(key))) for key in keys]
        found = await self.lookup(items)
        for (key, _), answer in zip(items, found, strict=True):
            self.counts.count(key, answer.hit)
        missing = [i for i, answer in enumerate(found) if not answer.hit]
        if not missing:
            return [answer.value for answer in found]
        filled = await fill([keys[i] for i in missing])
        keep = []
        values = [answer.value for answer in found]
        for i in missing:
            key, tags = items[i]
            if key in filled:
                values[i] = settle(filled[key])
                keep.append((key, tags, found[i].stamp, values[i]))
        if self.enabled and keep:
            await self.store(keep)
        return values


def _one(
    fill: Callable[[], Awaitable[Any]],
) -> Callable[[list[str]], Awaitable[dict[str, Any]]]:
    async def many(keys: list[str]) -> dict[str, Any]:
        return {keys[0]: await fill()}

    return many


@dataclass
class _Entry:
    expires: float
    stamp: Stamp
    tags: Tags
    value: Any  # settled: read-only, handed to every hit as it is


class MemoryCache(Cache):
    """One per process: a bounded LRU of decoded, read-only values with a TTL.

    Generations come from one counter that only grows, so a tag's generation never
    repeats. The table of generations is bounded too: past `4 * max_entries` tags it
    starts again under a new epoch (part of every stamp), which empties the cache once.
    """

    name = "memory"
    enabled = True

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        super().__init__()
        self.max_entries = max_entries
        self.ttl = ttl_seconds
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self._generations: dict[str, int] = {}
        self._counter = itertools.count(1)
        self._epoch = 0
        # The job consumer's threads and the bus may call from another thread.
        self._lock = threading.Lock()

    def _stamp(self, tags: Tags) -> Stamp:
        return (self._epoch, *(self._generations.get(tag, 0) for tag in tags))

    async def lookup(self, items: Sequence[tuple[str, Tags]]) -> list[Lookup]:
        now = time.monotonic()
        answers = []
        with self._lock:
            for key, tags in items:
                stamp = self._stamp(tags)
                entry = self._entries.get(key)
                if entry is not None and (entry.expires <= now or entry.stamp != stamp):
                    self._forget(key)
                    entry = None
                if entry is None:
                    answers.append(Lookup(False, None, stamp))
                    continue
                self._entries.move_to_end(key)
                answers.append(Lookup(True, entry.value, stamp))
        return answers

    async def store(self, items: Sequence[tuple[str, Tags, Stamp, Any]]) -> None:
        expires = time.monotonic() + self.ttl
        with self._lock:
            for key, tags, stamp, value in items:
                if stamp != self._stamp(tags):
                    continue  # a change came after the read began: its answer is old
                self._forget(key)
                self._entries[key] = _Entry(expires, stamp, tags, value)
                for tag in tags:
                    self._by_tag.setdefault(tag, set()).add(key)
            while len(self._entries) > self.max_entries:
                self._forget(next(iter(self._entries)))

    def _forget(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    async def delete(self, key: str) -> None:
        with self._lock:
            self._forget(key)

    async def invalidate(self, tags: Sequence[str]) -> None:
        self.heard(tags)

    def heard(self, tags: Sequence[str]) -> None:
        with self._lock:
            if len(self._generations) + len(tags) > 4 * self.max_entries:
                self._epoch += 1
                self._generations.clear()
                self._entries.clear()
                self._by_tag.clear()
            for tag in tags:
                self._generations[tag] = next(self._counter)
                for key in list(self._by_tag.get(tag, ())):
                    self._forget(key)

    def __len__(self) -> int:
        return len(self._entries)
