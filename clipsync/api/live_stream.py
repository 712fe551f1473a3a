"""Server-Sent Event streams fed by the event bus, ended with the session that opened them.

Each stream is a subscription to this process's bus (`clipsync.events`): no stream
reads the database on a timer. The session is checked again whenever the bus says
the user's sessions ended or they signed out, and at least every `KEEPALIVE_SECONDS`
(`AccountService.still_signed_in`: a stream outlives its short access token while
the sign-in session it names goes on; a token tied to no session ends it when it
expires): once it is no longer honoured, a last `event: signed-out` carries the
reason and the stream ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from clipsync import events as event_bus
from clipsync.context import ClipSyncRequest
from clipsync.errors import Unauthorized
from clipsync.events import Event
from clipsync.models import User
from clipsync.sessions import require_user

# A comment line this often keeps idle connections open through proxies.
KEEPALIVE_SECONDS = 15.0

Send = Callable[[str, Any], Awaitable[None]]
Opening = Callable[[User, Send], Awaitable[None]]
OnNews = Callable[[User, Event, Send], Awaitable[None]]


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
    accounts = request.app.ctx.accounts
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
        checked = time.monotonic()
        while True:
            event = await news.get(within=KEEPALIVE_SECONDS)
            about_me = False
            if event is not None and event.name.startswith("account."):
                about_me = event.data.get("userId") == user.id
            elif event is not None:
                await on_news(user, event, send)
            # Also on a busy stream that never idles, so an expired token ends it.
            due = time.monotonic() - checked >= KEEPALIVE_SECONDS
            if not (about_me or due or event is None):
                continue
            try:
                user = await accounts.still_signed_in(claims)
            except Unauthorized as exc:
                # A named event the page acts on (it stops listening instead of
                # reconnecting).
                await send("signed-out", {"message": exc.message})
                await response.eof()
                return
            checked = time.monotonic()
            if event is None:
                await response.send(": keep-alive\n\n")
