"""Server-Sent Event streams fed by the event bus, ended with the session that opened them.

Each stream is a subscription to this process's bus (`clipsync.events`): no stream
reads the database on a timer. Sessions are checked for all the process's streams
together (`SessionWatch`), every `KEEPALIVE_SECONDS`, in a few queries however many
streams are open, and a stream's own session at once when the bus says its person's
sessions ended or they signed out (`AccountService.still_signed_in`: a stream
outlives its short access token while the sign-in session it names goes on; a token
tied to no session ends it when it expires). Once it is no longer honoured, a last
`event: signed-out` carries the reason and the stream ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from clipsync import events as event_bus
from clipsync.backends import TokenClaims
from clipsync.context import ClipSyncRequest
from clipsync.errors import Unauthorized
from clipsync.events import Event
from clipsync.models import User
from clipsync.services.accounts import AccountService
from clipsync.sessions import require_user

log = logging.getLogger(__name__)

# A comment line this often keeps idle connections open through proxies; sessions
# are checked as often.
KEEPALIVE_SECONDS = 15.0

Send = Callable[[str, Any], Awaitable[None]]
Opening = Callable[[User, Send], Awaitable[None]]
OnNews = Callable[[User, Event, Send], Awaitable[None]]


@dataclass(eq=False)
class Watched:
    """One open stream's session, as the last check found it."""

    claims: TokenClaims
    accounts: AccountService
    user: User
    # Why the stream must end, once a check found its session over.
    ended: Unauthorized | None = None
    # Set when `ended` is: wakes the stream.
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class SessionWatch:
    """The live streams of this process, their sessions checked together.

    One task, running while streams are open, asks every `KEEPALIVE_SECONDS` whether
    their sessions still count: three queries for all of them (the users, the
    signed-out tokens, the live sessions), not one per stream.
    """

    def __init__(self) -> None:
        self.streams: set[Watched] = set()
        self.task: asyncio.Task[None] | None = None

    def watch(self, watched: Watched) -> None:
        self.streams.add(watched)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def forget(self, watched: Watched) -> None:
        self.streams.discard(watched)

    async def _run(self) -> None:
        while self.streams:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            try:
                await self.check()
            except Exception as exc:  # the database is away: streams go on, checked later
                log.warning("could not check the sessions of live streams: %s", exc)

    async def check(self) -> None:
        """Check every stream's session now; end the streams whose session is over."""
        by_service: dict[int, list[Watched]] = {}
        for watched in list(self.streams):
            by_service.setdefault(id(watched.accounts), []).append(watched)
        for group in by_service.values():
            answers = await group[0].accounts.still_signed_in_all([w.claims for w in group])
            for watched in group:
                answer = answers[watched.claims]
                if isinstance(answer, Unauthorized):
                    watched.ended = answer
                    watched.wake.set()
                else:
                    watched.user = answer


# This process's streams (each Sanic worker is a process with its own).
session_watch = SessionWatch()


async def serve_live(
    request: ClipSyncRequest,
    prefixes: tuple[str, ...],
    on_news: OnNews,
    opening: Opening | None = None,
    check: Callable[[User], User] | None = None,
) -> None:
    """Stream `event: <name>` lines: what `opening` sends, then what `on_news` makes of news.

    `check` refuses the caller before the stream opens (e.g. moderators only).
    """
    user = require_user(request)
    if check is not None:
        check(user)
    claims = request.ctx.claims
    assert claims is not None  # require_user passed, so the request carried a token
    watched = Watched(claims, request.app.ctx.accounts, user)
    # Subscribed before the opening read, so no change falls between the two.
    async with event_bus.subscribe("account.", *prefixes) as news:
        response = await request.respond(
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        # The headers go out with the first bytes: without these, a client would not
        # see the stream open (EventSource's `open`) until the first keep-alive.
        await response.send(": connected\n\n")

        async def send(name: str, data: Any) -> None:
            await response.send(f"event: {name}\ndata: {json.dumps(data)}\n\n")

        if opening is not None:
            await opening(user, send)

        async def keepalive() -> None:
            # A comment line: it keeps idle connections open through proxies.
            await response.send(": keep-alive\n\n")

        session_watch.watch(watched)
        try:
            await _stream(watched, news, on_news, send, keepalive)
        finally:
            session_watch.forget(watched)
        await response.eof()


async def _stream(
    watched: Watched,
    news: event_bus.Subscription,
    on_news: OnNews,
    send: Send,
    keepalive: Callable[[], Awaitable[None]],
) -> None:
    """Until the session ends: news as it comes, a keep-alive when there is none."""
    while True:
        event = await _next(news, watched)
        if event is not None and event.name.startswith("account."):
            if event.data.get("userId") == watched.user.id:
                # About this person: their session may have just ended, check now.
                try:
                    watched.user = await watched.accounts.still_signed_in(watched.claims)
                except Unauthorized as exc:
                    watched.ended = exc
        elif event is not None:
            await on_news(watched.user, event, send)
        if watched.ended is not None:
            # A named event the page acts on (it stops listening instead of reconnecting).
            await send("signed-out", {"message": watched.ended.message})
            return
        if event is None:
            await keepalive()


async def _next(news: event_bus.Subscription, watched: Watched) -> Event | None:
    """The next event, or None after `KEEPALIVE_SECONDS` of quiet or when the session ended."""
    if watched.ended is not None:
        return None
    waiting = asyncio.ensure_future(news.get(within=KEEPALIVE_SECONDS))
    ended = asyncio.ensure_future(watched.wake.wait())
    try:
        await asyncio.wait({waiting, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    if waiting.done():
        return waiting.result()
    waiting.cancel()
    return None
