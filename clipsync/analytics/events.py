"""What the player reports (`WatchEvent`), and the period and scope figures are read for.

Events are made by the server (`clipsync.services.analytics`) from what a player
sends: the server sets `event_id`, `ts`, `user_id`, `category` and `duration`, and
caps `played` and `stalled`. Backends store them as they are, except that every
length of time is kept as whole milliseconds (`millis`), so that sums are exact and
every backend computes the same figures to the last digit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

EVENT_TYPES = (
    "PLAY",
    "PAUSE",
    "PROGRESS",
    "SEEK",
    "COMPLETE",
    "QUALITY_CHANGE",
    "BUFFER_START",
    "BUFFER_END",
    "ERROR",
    "FOCUS_START",
    "FOCUS_END",
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WatchEvent:
    """One thing that happened in one playback session."""

    # uuid4 hex, set by the server; backends store each event_id at most once.
    event_id: str
    # When the server received it; UTC (a naive datetime is taken as UTC).
    ts: datetime
    # One of EVENT_TYPES.
    type: str
    video_id: str
    user_id: int
    # The video's category when the event happened.
    category: str
    # One playback of one video in one page, made by the player.
    session_id: str
    # Seconds into the video. For a SEEK, where the seek started.
    position: float
    # The video's duration in seconds, from its row.
    duration: float
    # Seconds actually played since the session's previous event (seeks and pauses
    # excluded), as the player measured it and the server capped it.
    played: float = 0.0
    # BUFFER_END: seconds spent rebuffering.
    stalled: float = 0.0
    # The rendition playing, e.g. "720p".
    rendition: str = ""
    seek_from: float | None = None
    seek_to: float | None = None
    # ERROR: the player's message; otherwise free for the player's use.
    detail: str = ""

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown watch event type {self.type!r}")
        if self.ts.tzinfo is None:
            object.__setattr__(self, "ts", self.ts.replace(tzinfo=UTC))
        elif self.ts.utcoffset() != timedelta(0):
            object.__setattr__(self, "ts", self.ts.astimezone(UTC))

    @property
    def day(self) -> date:
        """The UTC day the event belongs to."""
        return self.ts.date()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ts"] = self.ts.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WatchEvent:
        return cls(**{**data, "ts": datetime.fromisoformat(data["ts"])})


def dumps(events: list[WatchEvent]) -> str:
    """Events as JSON lines (the spool's file format)."""
    return "".join(json.dumps(e.to_json(), separators=(",", ":")) + "\n" for e in events)


def loads(text: str) -> list[WatchEvent]:
    return [WatchEvent.from_json(json.loads(line)) for line in text.splitlines() if line.strip()]


def millis(seconds: float) -> int:
    """Seconds as whole milliseconds, never negative: how every backend stores time."""
    return max(0, round(seconds * 1000))


def micros(ts: datetime) -> int:
    """A UTC datetime as microseconds since the Unix epoch."""
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class Period:
    """Whole UTC days from `start` to `end`, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"period starts ({self.start}) after it ends ({self.end})")

    def days(self) -> list[date]:
        count = (self.end - self.start).days + 1
        return [self.start + timedelta(days=i) for i in range(count)]

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


@dataclass(frozen=True)
class Scope:
    """Which events a reader may count.

    `categories`: only events of videos in these categories (None: every category).
    `owner_video_ids`: only events of these videos, e.g. an uploader's own (None: all).
    Both may be given; an event must then satisfy both. An empty set matches nothing.
    """

    categories: frozenset[str] | None = None
    owner_video_ids: frozenset[str] | None = None

    @property
    def empty(self) -> bool:
        """Whether the scope can match no event at all."""
        return self.categories == frozenset() or self.owner_video_ids == frozenset()
