"""Scripted viewing sessions: the events a player would send, with a clock.

`Player` plays one session of one video and produces `WatchEvent`s the way the
server makes them: `played` is what was watched since the session's previous event
(never pauses, seeks or buffering), `stalled` the rebuffering of a BUFFER_END.
`script()` is the shared scenario of the backend tests, whose figures are worked
out by hand in `tests/test_analytics_backends.py`.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clipsync.analytics.events import WatchEvent

ALICE, BOB, CAROL = 1, 2, 3


@dataclass(frozen=True)
class Video:
    id: str
    category: str
    duration: float


# Two categories; videos 1 and 2 are the same uploader's.
V1 = Video("11111111-1111-4111-8111-111111111111", "general", 100.0)
V2 = Video("22222222-2222-4222-8222-222222222222", "general", 60.0)
V3 = Video("33333333-3333-4333-8333-333333333333", "science", 200.0)

_ids = itertools.count(1)


@dataclass
class Player:
    """One playback session; each method is what the person did, in order."""

    user: int
    video: Video
    clock: datetime
    session: str = field(default_factory=lambda: f"session-{next(_ids):04d}")
    position: float = 0.0
    events: list[WatchEvent] = field(default_factory=list)
    _played: float = 0.0

    def _emit(self, kind: str, **extra: object) -> Player:
        self.events.append(
            WatchEvent(
                event_id=f"event-{next(_ids):06d}",
                ts=self.clock,
                type=kind,
                video_id=self.video.id,
                user_id=self.user,
                category=self.video.category,
                session_id=self.session,
                position=self.position,
                duration=self.video.duration,
                played=self._played,
                **extra,  # type: ignore[arg-type]
            )
        )
        self._played = 0.0
        return self

    def play(self) -> Player:
        return self._emit("PLAY")

    def watch(self, seconds: float) -> Player:
        """Play `seconds` of video, then report PROGRESS."""
        self.clock += timedelta(seconds=seconds)
        self.position += seconds
        self._played += seconds
        return self._emit("PROGRESS")

    def pause(self, seconds: float = 0.0) -> Player:
        """PAUSE, then wait `seconds` (nothing is played meanwhile)."""
        self._emit("PAUSE")
        self.clock += timedelta(seconds=seconds)
        return self

    def seek(self, to: float) -> Player:
        """Jump to `to`: the player reports SEEK once there (its position is `to`)."""
        start, self.position = self.position, to
        return self._emit("SEEK", seek_from=start, seek_to=to)

    def buffer(self, seconds: float) -> Player:
        self._emit("BUFFER_START")
        self.clock += timedelta(seconds=seconds)
        return self._emit("BUFFER_END", stalled=seconds)

    def quality(self, rendition: str) -> Player:
        return self._emit("QUALITY_CHANGE", rendition=rendition)

    def error(self, detail: str) -> Player:
        return self._emit("ERROR", detail=detail)

    def blur(self) -> Player:
        return self._emit("FOCUS_END")

    def complete(self) -> Player:
        return self._emit("COMPLETE")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def script() -> dict[str, Player]:
    """The scenario; its figures are computed by hand in the backend tests."""
    return {
        # Before the period under test (29 February): must never be counted.
        "S0": Player(ALICE, V3, at("2024-02-29 12:00")).play().watch(30),
        # Alice, video 1, 1 March: 13 events, played 10+20+10+10 = 50 s, stalled 2.5 s;
        # furthest position 90 (SEEK events do not count: the last one lands on 99 but
        # nothing is watched there), no COMPLETE.
        "S1": Player(ALICE, V1, at("2024-03-01 10:00"))
        .play()
        .watch(10)  # position 10
        .pause(30)
        .play()
        .watch(20)  # position 30
        .seek(80)  # forward
        .watch(10)  # position 90
        .buffer(2.5)
        .seek(40)  # back
        .watch(10)  # position 50
        .pause()
        .seek(99),  # and leaves
        # Alice watches video 1 again, 2 March, to the end: 4 events, played 100 s.
        "S2": Player(ALICE, V1, at("2024-03-02 09:00")).play().watch(50).watch(50).complete(),
        # Carol, video 1, 2 March: 4 events, played 2 s < 3 s, so not a view.
        "S3": Player(CAROL, V1, at("2024-03-02 15:00"))
        .play()
        .watch(2)
        .error("decode failed")
        .pause(),
        # Bob, video 3 (science), 3 March: 8 events, played 60+60+1 = 121 s, stalled 4 s;
        # furthest position 196 >= 95 % of 200, so completed without a COMPLETE event.
        "S4": Player(BOB, V3, at("2024-03-03 08:00"))
        .play()
        .watch(60)
        .quality("480p")
        .buffer(4)
        .watch(60)  # position 120
        .seek(195)
        .watch(1),  # position 196
        # Alice, video 2, from 3 March 23:59:50 past midnight: 2 events (8 s played) on
        # 3 March, 3 events (10 s played) on 4 March; the session is 3 March's.
        "S5": Player(ALICE, V2, at("2024-03-03 23:59:50")).play().watch(8).watch(10).blur().pause(),
    }


def all_events(players: dict[str, Player]) -> list[WatchEvent]:
    return [event for player in players.values() for event in player.events]


def random_events(count: int, seed: int) -> list[WatchEvent]:
    """Many plausible sessions (seeks, pauses, buffering, completes) for comparisons."""
    rnd = random.Random(seed)
    videos = [
        Video(f"{n:08d}-0000-4000-8000-000000000000", rnd.choice(CATEGORIES), rnd.choice(LENGTHS))
        for n in range(12)
    ]
    events: list[WatchEvent] = []
    while len(events) < count:
        video = rnd.choice(videos)
        start = at("2024-03-01") + timedelta(seconds=rnd.randrange(0, 6 * 86_400))
        player = Player(rnd.randrange(1, 25), video, start).play()
        for _ in range(rnd.randrange(1, 12)):
            left = video.duration - player.position
            action = rnd.random()
            if left <= 0:
                player.complete()
                break
            if action < 0.08:
                player.pause(rnd.choice([0, 60]))
                break
            if action < 0.6:
                player.watch(min(left, rnd.choice([0.5, 1.25, 5, 5, 5, 10])))
            elif action < 0.75:
                player.seek(round(rnd.uniform(0, video.duration), 3))
            elif action < 0.85:
                player.buffer(rnd.choice([0.2, 1.5, 3]))
            else:
                player.pause(rnd.choice([5, 600])).play()
        events.extend(player.events)
    return events[:count]


CATEGORIES = ("general", "science", "art")
LENGTHS = (20.0, 59.5, 100.0, 3600.0)
