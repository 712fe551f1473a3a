"""Stream links: a master-playlist URL that plays anywhere, with no cookie or header.

"Copy stream link" on the watch page gives a signed URL of the video's master
playlist (clipsync/delivery.py) that VLC, mpv, ffmpeg, Safari or a casting target
can open as it is. The master playlist it fetches names each media playlist (and
caption track) by a URL signed the same way, and each media playlist names its
segments by short-lived signed URLs, as for any viewer.

A link belongs to the sign-in session it was made in (subject `s:<session id>`):
every playlist fetched through it checks that the session goes on and that its
person may still see the video. Ending the session (signing out, ending it from the
sessions page, a password change or anything else that bumps the token version)
revokes every stream link made in it; otherwise a link stops `[delivery]
stream_link_seconds` after it was made. A token tied to no session cannot make one.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from clipsync import delivery
from clipsync.errors import Conflict, Forbidden
from clipsync.models import User
from clipsync.services.accounts import AccountService
from clipsync.services.auth_sessions import AuthSessions
from clipsync.settings import Settings

MASTER = "master.m3u8"
NO_SESSION = (
    "A stream link belongs to a sign-in session: sign in on the web (not with a tool's "
    "token) to make one."
)


@dataclass(frozen=True)
class StreamLink:
    url: str
    expires_at: int  # Unix seconds


def make(settings: Settings, video_id: uuid.UUID, session_id: str) -> StreamLink:
    """A stream link to `video_id` (which the caller may watch) for session `session_id`."""
    if not session_id:
        raise Conflict(NO_SESSION)
    expires = int(time.time()) + settings.delivery.stream_link_seconds
    query = delivery.signer_for(settings).query(
        video_id, MASTER, delivery.session_subject(0, session_id), expires
    )
    url = f"{settings.server.base_url}/hls/{video_id}/{MASTER}?{query}"
    return StreamLink(url, expires)


async def viewer_of(accounts: AccountService, subject: str) -> User:
    """The person a signed playlist request acts for, if its subject still counts.

    `s:<session id>`: the session's person, while the session goes on and the account
    is active. Any other subject is refused here: segment URLs of sessionless tokens
    (`u:`) never reach a playlist, and share links (`l:`) are decided by their own
    service.
    """
    kind, _, session_id = subject.partition(":")
    if kind != "s":
        raise Forbidden(delivery.REFUSED)
    row = await accounts.sessions.store.get(session_id)
    user = await User.get_or_none(id=row.user_id) if row is not None else None
    if row is None or user is None or not user.is_active:
        raise Forbidden(delivery.REFUSED)
    # The rule every session is held to (revoked, expired, or an older token version).
    if AuthSessions.is_over(row, datetime.now(UTC), user.token_version):
        raise Forbidden(delivery.REFUSED)
    return user
