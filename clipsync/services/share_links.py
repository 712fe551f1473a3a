"""Share links: a URL that opens one video, until it expires or is revoked.

A link is not a person's visibility (services/videos.py): it is its own entry point.
Its uploader or a moderator of the video makes one (`create`): a token of 256 random
bits, url-safe, shown once; only its SHA-256 is kept. Whoever holds the token opens
the video through it: the page `/s/<token>`, `GET /api/share/<token>`, and the HLS
files under `/hls/<video id>/share/<token>/` (api/share_links.py). Each of those asks
`link_access(token)` on every request, playlists and segments alike, so a link
revoked or expired answers 404 at once, everywhere.

The viewer rule (`may_open`): anyone signed in, or with `[sharing] allow_public_links`
anyone at all. A link with a password asks for it once (`unlock`, rate-limited per
address and per link, in Redis across processes when it is configured: `Guesses`);
the answer is a proof (`proof_for`) the browser keeps in a
cookie for that link only: an HMAC of the token keyed by the password's bcrypt hash,
so it cannot be made without the password and stops working if the link is revoked.

The video must be APPROVED to be opened by link: a link shares a published video, it
does not bypass moderation. Every opening of the page or the API is logged
(`ShareLinkUse`, and the link's `uses` and `last_used_at`); the HLS requests that
follow are not uses.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
from tortoise.expressions import F

from clipsync.errors import Conflict, NotFound, TooManyRequests, Unauthorized, ValidationFailed
from clipsync.models import ShareLink, ShareLinkUse, User, Video, VideoStatus
from clipsync.services.grants import manageable
from clipsync.services.moderation import record
from clipsync.services.rate_limit import AttemptWindow, SharedAttemptWindow, attempt_window
from clipsync.settings import Settings

TOKEN_BYTES = 32  # 256 bits
MAX_HOURS = 24 * 365
MAX_PASSWORD = 128
MIN_PASSWORD = 4
# Share links' passwords are checked in this worker (bcrypt, 2^10 rounds).
BCRYPT_ROUNDS = 10
# Password guesses: per address and link, and per link from everywhere, per 15 minutes.
GUESS_WINDOW = 15 * 60
GUESSES_PER_ADDRESS = 10
GUESSES_PER_LINK = 100
NO_LINK = "This link does not exist, has expired or was revoked."
NO_SUCH_LINK = "There is no such link."
SIGN_IN = "Sign in to open this link."
# The path form of the HLS files for a link viewer (api/share_links.py).
HLS_SHARE = "share/"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _prehash(password: str) -> bytes:
    # bcrypt reads at most 72 bytes; hashing first lets a long passphrase count in full.
    return base64.b64encode(hashlib.sha256(password.encode()).digest())


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/s/{token}"


def hls_base(video_id: Any, token: str) -> str:
    """Where a link viewer's player finds the video's HLS files (api/share_links.py)."""
    return f"/hls/{video_id}/{HLS_SHARE}{token}"


def state_of(link: ShareLink, now: datetime | None = None) -> str:
    """ "revoked", "expired" or "active"."""
    if link.revoked_at is not None:
        return "revoked"
    return "expired" if link.expires_at <= (now or datetime.now(UTC)) else "active"


def link_json(link: ShareLink) -> dict[str, Any]:
    """What its makers see of a link: never its token (shown once) nor its hash."""
    return {
        "id": link.id,
        "videoId": str(link.video_id),
        "createdBy": link.created_by_id,
        "createdAt": link.created_at.isoformat() if link.created_at else None,
        "expiresAt": link.expires_at.isoformat(),
        "revokedAt": link.revoked_at.isoformat() if link.revoked_at else None,
        "hasPassword": link.password_hash is not None,
        "uses": link.uses,
        "lastUsedAt": link.last_used_at.isoformat() if link.last_used_at else None,
        "state": state_of(link),
    }


def _hours(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HOURS:
        raise ValidationFailed(
            f"expiresInHours is a whole number of hours from 1 to {MAX_HOURS}.",
            field="expiresInHours",
        )
    return value


def _password(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise ValidationFailed(
            f"password is text of {MIN_PASSWORD} to {MAX_PASSWORD} characters, or leave it out.",
            field="password",
        )
    return value


async def create(actor: User, video_id: Any, body: dict[str, Any]) -> tuple[ShareLink, str]:
    """A new link to the video; (the link, its token: shown this once)."""
    video = await manageable(actor, video_id)
    unknown = sorted(set(body) - {"expiresInHours", "password"})
    if unknown:
        raise ValidationFailed(
            f"Unknown field {unknown[0]!r}: send expiresInHours, and password if wanted.",
            field=unknown[0],
        )
    if "expiresInHours" not in body:
        raise ValidationFailed(
            "Say how long the link works: expiresInHours.", field="expiresInHours"
        )
    hours = _hours(body["expiresInHours"])
    password = _password(body.get("password"))
    if video.status != VideoStatus.APPROVED:
        raise Conflict(
            f"Only a published (approved) video can be shared by link; this one is {video.status}.",
            details={"status": str(video.status)},
        )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    password_hash = None
    if password is not None:
        salt = bcrypt.gensalt(BCRYPT_ROUNDS)
        hashed = await asyncio.to_thread(bcrypt.hashpw, _prehash(password), salt)
        password_hash = hashed.decode()
    link = await ShareLink.create(
        video_id=video.id,
        token_hash=hash_token(token),
        created_by=actor,
        password_hash=password_hash,
        expires_at=datetime.now(UTC) + timedelta(hours=hours),
    )
    await record(
        actor, "share_link_create", video=video, link=link.id, hours=hours,
        password=password_hash is not None,
    )  # fmt: skip
    return link, token


async def links_of(actor: User, video_id: Any) -> list[ShareLink]:
    """The video's links, newest first (revoked and expired ones too, with their uses)."""
    video = await manageable(actor, video_id)
    return list(await ShareLink.filter(video_id=video.id).order_by("-created_at", "-id"))


async def revoke(actor: User, video_id: Any, link_id: Any) -> ShareLink:
    """Revoke a link: from now on its page, its API answer and its HLS files are 404."""
    video = await manageable(actor, video_id)
    if not str(link_id).isdigit() or not 1 <= int(link_id) <= 2**31 - 1:
        raise NotFound(NO_SUCH_LINK)
    link = await ShareLink.get_or_none(id=int(link_id), video_id=video.id)
    if link is None:
        raise NotFound(NO_SUCH_LINK)
    if link.revoked_at is None:
        link.revoked_at = datetime.now(UTC)
        await link.save(update_fields=["revoked_at"])
        await record(actor, "share_link_revoke", video=video, link=link.id)
    return link


async def link_access(token: Any) -> ShareLink:
    """The link `token` opens, with its video loaded; NotFound when the token is unknown,
    the link revoked or expired, or its video not (or no longer) published.

    Asked on every request made through a link: pages, API, playlists and segments.
    """
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise NotFound(NO_LINK)
    link = await ShareLink.filter(token_hash=hash_token(token)).select_related("video").first()
    if link is None or state_of(link) != "active":
        raise NotFound(NO_LINK)
    video: Video = link.video
    if video.status != VideoStatus.APPROVED:
        raise NotFound(NO_LINK)
    return link


async def link_open(link_id: int, video_id: Any) -> bool:
    """Whether link `link_id` still opens `video_id` (not revoked, not expired, the
    video published): `link_access` by id, for the URLs signed for a link."""
    if not 1 <= link_id <= 2**31 - 1:
        return False
    return await ShareLink.filter(
        id=link_id,
        video_id=video_id,
        revoked_at__isnull=True,
        expires_at__gt=datetime.now(UTC),
        video__status=str(VideoStatus.APPROVED),
    ).exists()


def may_open(allow_public: bool, actor: User | None) -> None:
    """The viewer rule: anyone signed in, or anyone with `allow_public_links`."""
    if actor is None and not allow_public:
        raise Unauthorized(SIGN_IN)


def proof_for(link: ShareLink, token: str) -> str:
    """What shows that the password of `link` was given (see the module docstring)."""
    key = (link.password_hash or "").encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def unlocked(link: ShareLink, token: str, proof: str | None) -> bool:
    """Whether the link needs no password, or `proof` shows it was given."""
    if link.password_hash is None:
        return True
    return bool(proof) and hmac.compare_digest(proof_for(link, token), str(proof))


def seconds_left(link: ShareLink) -> int:
    """How long the link still works, in whole seconds (at least 1)."""
    return max(1, int((link.expires_at - datetime.now(UTC)).total_seconds()))


def proof_cookie(link: ShareLink) -> str:
    """The cookie that keeps a link's proof in the browser."""
    return f"clipsync_share_{link.id}"


@dataclass(frozen=True)
class Guesses:
    """Where password guesses are counted: per address and link, and per link.

    In Redis when the queue is there (`rate_limit.attempt_window`, as the sign-in's
    count per address), so every worker and host counts one link together; otherwise
    in this worker's memory. Made once per app (api/share_links.py `guesses_of`).
    """

    per_address: AttemptWindow | SharedAttemptWindow
    per_link: AttemptWindow | SharedAttemptWindow


def guesses_for(settings: Settings) -> Guesses:
    return Guesses(
        per_address=attempt_window(
            settings, GUESSES_PER_ADDRESS, GUESS_WINDOW, "clipsync:share-link:address:"
        ),
        per_link=attempt_window(settings, GUESSES_PER_LINK, GUESS_WINDOW, "clipsync:share-link:"),
    )


# For a caller that names no `Guesses`: this worker's own count.
_in_this_worker = Guesses(
    AttemptWindow(GUESSES_PER_ADDRESS, GUESS_WINDOW), AttemptWindow(GUESSES_PER_LINK, GUESS_WINDOW)
)


async def unlock(
    link: ShareLink, token: str, password: Any, address: str, guesses: Guesses | None = None
) -> str:
    """Check a link's password; its proof when right. Guesses are limited per address
    and per link (TooManyRequests with Retry-After), counted in `guesses`."""
    if link.password_hash is None:
        return proof_for(link, token)
    guesses = guesses or _in_this_worker
    # Counted when the attempt starts (a burst counts like a series), given back when right.
    counted = [(guesses.per_address, f"{link.id}:{address}"), (guesses.per_link, str(link.id))]
    for number, (window, key) in enumerate(counted):
        wait = await window.take(key)
        if wait:
            for earlier, earlier_key in counted[:number]:
                await earlier.give_back(earlier_key)
            raise TooManyRequests(
                "Too many wrong passwords for this link. Please wait and try again.",
                retry_after=wait,
            )
    given = password if isinstance(password, str) else ""
    right = bool(given) and await asyncio.to_thread(
        bcrypt.checkpw, _prehash(given[:MAX_PASSWORD]), link.password_hash.encode()
    )
    if not right:
        raise ValidationFailed("That is not the password of this link.", field="password")
    for window, key in counted:
        await window.give_back(key)
    return proof_for(link, token)


async def log_use(link: ShareLink, user: User | None, address: str, user_agent: str) -> None:
    """Log one opening of the link: who (when signed in), from where, with what."""
    now = datetime.now(UTC)
    await ShareLinkUse.create(
        link_id=link.id,
        user_id=user.id if user is not None else None,
        address=(address or "")[:64],
        user_agent=(user_agent or "")[:255],
        at=now,
    )
    await ShareLink.filter(id=link.id).update(uses=F("uses") + 1, last_used_at=now)


def shared_video_json(data: dict[str, Any], video_id: Any, token: str) -> dict[str, Any]:
    """A video's JSON for a link viewer: its files (playlists, poster, thumbnails) are
    reached through the link, under `hls_base`."""
    plain, shared = f"/hls/{video_id}/", hls_base(video_id, token) + "/"
    data = dict(data)
    for key in ("hls", "poster", "thumbnails"):
        value = data.get(key)
        if isinstance(value, str) and value.startswith(plain):
            data[key] = shared + value[len(plain) :]
    return data


def split_hls_path(path: str) -> tuple[str | None, str]:
    """(the share token, the file's path) of an HLS path `share/<token>/<file>`, or
    (None, path) for any other."""
    if not path.startswith(HLS_SHARE):
        return None, path
    token, _, rest = path[len(HLS_SHARE) :].partition("/")
    return token, rest
