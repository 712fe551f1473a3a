"""Watch analytics: checking the player's events, and reading figures within scope.

The player reports what happens (play, pause, progress every 5 s, seek, complete,
quality change, buffering, errors, focus). Each event is checked on its own: the
server sets its time, user and video category, refuses what cannot be true, and
hands the rest to the analytics backend, which buffers and writes in batches.

Figures are scoped, when they are read, to the videos the caller uploaded or may
moderate now (`services.videos.managed_by`): everything for admins, their category's
videos and their own uploads for editors, their own uploads for everyone else.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from clipsync import metrics
from clipsync.analytics.events import EVENT_TYPES, Period, Scope, WatchEvent
from clipsync.errors import NotFound, PayloadTooLarge, ValidationFailed
from clipsync.models import Role, User, Video
from clipsync.plugins import PluginHost
from clipsync.services.videos import managed_by, visible_to
from clipsync.settings import Settings

# Seconds of playback one event may report: the player reports every 5 s.
MAX_PLAYED = 30.0
MAX_STALLED = 600.0
MAX_PERIOD_DAYS = 366


class Refused(Exception):
    """One event of a batch cannot be accepted; the others still can."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Ingested:
    accepted: int
    rejected: list[dict[str, Any]]


def _number(event: dict[str, Any], key: str, default: float | None = None) -> float | None:
    value = event.get(key, default)
    kind = type(value)
    if kind is float:  # the usual case first: this runs for every number of every event
        if math.isfinite(value):  # type: ignore[arg-type]
            return value  # type: ignore[return-value]
    elif kind is int:
        return float(value)  # type: ignore[arg-type]
    elif value is None:
        return None
    raise Refused("invalid", f"{key} must be a number.")


def _text(event: dict[str, Any], key: str, limit: int, required: bool = False) -> str:
    value = event.get(key, "")
    if type(value) is not str or len(value) > limit or (required and not value):
        raise Refused("invalid", f"{key} must be text of at most {limit} characters.")
    return value


@dataclass(frozen=True)
class SeenVideo:
    """What checking an event needs of its video."""

    id: str
    category: str
    duration: float


# How long "this user may see this video" is reused for watch events. A player sends
# a batch every few seconds for the same video, so most batches need no query; a
# moderation decision or a category change reaches this check at most this late, for
# the events of someone who was allowed to watch moments before.
SEEN_SECONDS = 10.0
SEEN_MAX_ENTRIES = 10_000


class SeenVideos:
    """The videos a user may see, looked up for a batch of events with at most one query."""

    def __init__(self) -> None:
        self._answers: dict[tuple[int, str, str, uuid.UUID], tuple[float, SeenVideo | None]] = {}

    async def lookup(self, user: User, events: list[Any]) -> dict[str, SeenVideo]:
        """The batch's videos that `user` may see, by the id the player sent."""
        # Only text can name a video: any other videoId (an object, a list) cannot even
        # go in a set, and its event is refused on its own by `_check`.
        sent = {
            raw["videoId"]
            for raw in events
            if type(raw) is dict and type(raw.get("videoId")) is str
        }
        ids: dict[uuid.UUID, list[str]] = {}
        for video_id in sent:
            if type(video_id) is str and 0 < len(video_id) <= 64:
                try:
                    ids.setdefault(uuid.UUID(video_id), []).append(video_id)
                except ValueError:
                    continue
        now = time.monotonic()
        viewer = (user.id, str(user.role), user.category)
        answers: dict[uuid.UUID, SeenVideo | None] = {}
        for key in ids:
            cached = self._answers.get((*viewer, key))
            if cached is not None and cached[0] > now:
                answers[key] = cached[1]
        missing = [key for key in ids if key not in answers]
        if missing:
            answers.update(await self._query(user, missing))
            if len(self._answers) > SEEN_MAX_ENTRIES:
                self._answers.clear()
            for key in missing:
                self._answers[(*viewer, key)] = (now + SEEN_SECONDS, answers[key])
        return {
            video_id: seen
            for key, seen in answers.items()
            if seen is not None
            for video_id in ids[key]
        }

    @staticmethod
    async def _query(user: User, ids: list[uuid.UUID]) -> dict[uuid.UUID, SeenVideo | None]:
        rows = await visible_to(user).filter(id__in=ids).values_list("id", "category", "duration")
        found: dict[uuid.UUID, SeenVideo | None] = dict.fromkeys(ids)
        for key, category, duration in rows:
            key = key if isinstance(key, uuid.UUID) else uuid.UUID(str(key))
            found[key] = SeenVideo(str(key), category, duration or 0.0)
        return found


class AnalyticsService:
    def __init__(self, settings: Settings, backend: Any, plugins: PluginHost) -> None:
        self.settings = settings
        self.backend = backend
        self.plugins = plugins
        self.seen = SeenVideos()

    async def ingest(self, user: User, payload: Any) -> Ingested:
        """Check a batch (or one event) and record what is valid."""
        events = payload if isinstance(payload, list) else [payload]
        limit = self.settings.analytics.max_batch
        if len(events) > limit:
            raise PayloadTooLarge(f"Send at most {limit} events at a time (got {len(events)}).")
        videos = await self.seen.lookup(user, events)
        accepted: list[WatchEvent] = []
        rejected: list[dict[str, Any]] = []
        now = datetime.now(UTC)
        # One random id per batch, numbered per event: as unique as a uuid4 each, for a
        # fraction of the cost.
        batch_id = uuid.uuid4().hex
        for index, raw in enumerate(events):
            try:
                accepted.append(self._check(user, raw, videos, now, f"{batch_id}{index:02x}"))
            except Refused as refusal:
                rejected.append({"index": index, "code": refusal.code, "message": refusal.message})
        if accepted:
            await self.backend.record(accepted)
            if self.plugins.pm.hook.track_event.get_hookimpls():
                for event in accepted:
                    await self.plugins.notify("track_event", event=event)
        metrics.analytics_ingested(len(accepted), rejected)
        return Ingested(accepted=len(accepted), rejected=rejected)

    @staticmethod
    def _check(
        user: User, raw: Any, videos: dict[str, SeenVideo], now: datetime, event_id: str
    ) -> WatchEvent:
        if type(raw) is not dict:
            raise Refused("invalid", "Each event must be a JSON object.")
        kind = raw.get("type")
        if kind not in EVENT_TYPES:
            raise Refused("unknown_type", f"Unknown event type {kind!r}.")
        video = videos.get(_text(raw, "videoId", 64, required=True))
        if video is None:
            raise Refused("not_found", "There is no such video.")
        duration = video.duration
        position = _number(raw, "position")
        if position is None or position < 0 or position > duration + 1:
            raise Refused("out_of_range", f"position must be between 0 and {duration:.1f} seconds.")
        played = _number(raw, "played", 0.0) or 0.0
        stalled = _number(raw, "stalled", 0.0) or 0.0
        if played < 0 or stalled < 0:
            raise Refused("out_of_range", "played and stalled cannot be negative.")
        seek_from = _number(raw, "seekFrom")
        seek_to = _number(raw, "seekTo")
        if kind == "SEEK":
            for value in (seek_from, seek_to):
                if value is None or value < 0 or value > duration + 1:
                    raise Refused(
                        "out_of_range", "A SEEK needs seekFrom and seekTo within the video."
                    )
        return WatchEvent(
            event_id=event_id,
            ts=now,
            type=kind,
            video_id=video.id,
            user_id=user.id,
            category=video.category,
            session_id=_text(raw, "sessionId", 64, required=True),
            position=min(position, duration),
            duration=duration,
            played=min(played, MAX_PLAYED, duration),
            stalled=min(stalled, MAX_STALLED),
            rendition=_text(raw, "rendition", 16),
            seek_from=seek_from,
            seek_to=seek_to,
            detail=_text(raw, "detail", 500),
        )

    # --- figures --------------------------------------------------------------------

    @staticmethod
    def period(start: str | None, end: str | None) -> Period:
        """The period from `from`/`to` query values (default: the last 30 days)."""
        today = datetime.now(UTC).date()
        try:
            last = date.fromisoformat(end) if end else today
            first = date.fromisoformat(start) if start else last - timedelta(days=29)
        except ValueError:
            raise ValidationFailed("Dates are written YYYY-MM-DD.", field="from") from None
        if first > last:
            raise ValidationFailed("The period starts after it ends.", field="from")
        if (last - first).days >= MAX_PERIOD_DAYS:
            raise ValidationFailed(f"A period is at most {MAX_PERIOD_DAYS} days.", field="from")
        return Period(first, last)

    @staticmethod
    async def scope(user: User) -> Scope:
        """The videos whose figures `user` may read now: `videos.managed_by`.

        By the videos' rows as they are at read time, never by the category stored
        with each event: a video moved out of an editor's category leaves their
        figures with everything it ever counted, and one moved in brings its past.
        """
        if user.role == Role.ADMIN:
            return Scope()
        ids = await managed_by(user).values_list("id", flat=True)
        return Scope(owner_video_ids=frozenset(str(v) for v in ids))

    async def overview(self, user: User, period: Period) -> Any:
        return await self.backend.overview(period, await self.scope(user))

    async def categories(self, user: User, period: Period) -> Any:
        return await self.backend.category_stats(period, await self.scope(user))

    async def video(self, user: User, video_id: Any, period: Period) -> tuple[Video, Any]:
        """A video's figures, for its uploader and those who moderate it."""
        try:
            key = uuid.UUID(str(video_id))
        except ValueError:
            raise NotFound("There is no such video.") from None
        video = await managed_by(user).get_or_none(id=key)
        if video is None:
            raise NotFound("There is no such video.")
        return video, await self.backend.video_stats(str(video.id), period)
