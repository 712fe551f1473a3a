"""Signed media URLs: a file of a video's HLS tree authorised by its URL alone.

Playlists are authorised like any request (the viewer's session and the visibility
rule, on every fetch); the files they name are not looked up again. A media playlist
served from local storage (or S3 in proxy mode) gives each segment and its init
segment a URL that carries its own authorisation:

    /hls/<video id>/<path>?sub=<subject>&exp=<unix seconds>&sig=<signature>

    signature = base64url(HMAC-SHA256(key, "clipsync media url v1" NUL video id NUL
                                           path NUL subject NUL exp))

`path` is the file's path in the video's HLS tree (`720p/seg_00001.m4s`), so a
signature is good for one file of one video and nothing else. The subject says on
whose behalf it was signed: `s:<session id>` (a signed-in session, the access
token's `sid`), `u:<user id>` (a token tied to no session: tools), `l:<share link
id>` (someone watching through a share link). A segment request checks the signature
and the expiry and sends the file: no database query, no session lookup. Anything
wrong (tampered, expired, another file's or another video's signature) is one 403
that says nothing about whether the file exists.

Revocation (a token-version bump, a session ended, a video unpublished or deleted,
a share link revoked) is honoured by the playlist, which is checked on every fetch
and then stops handing out URLs, and by the expiry of those already handed out. A
VOD media playlist is read once by players and its segments fetched as playback
reaches them, so a segment's URL expires `[delivery] segment_url_seconds` after the
moment normal playback reaches that segment (`segment_expiry`): a revoked viewer
keeps at most what was left of the playlist in hand at normal speed, and a paused
player is refused after the margin and loads the playlist again (player.js).

A signed playlist (a URL ending `.m3u8`, or a caption file) is never served on its
signature alone: it is what stream links are made of (services/stream_links.py),
and its subject is checked like a session on every fetch.

The key is `[delivery] signing_key`, or one generated once in
`<data_dir>/secrets/delivery.key` (clipsync/generated_keys.py). Hosts sharing a
database must use the same: `generated_keys.check_shared` refuses to start a host
whose generated key differs from another host's.

With S3 and `[storage] playback = "presigned"`, media playlists list presigned URLs
of the store instead (storage_s3): the same idea, checked by the store.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode

from clipsync import generated_keys
from clipsync.errors import Forbidden
from clipsync.settings import Settings

SUBJECT, EXPIRES, SIGNATURE = "sub", "exp", "sig"
KEY_FILE = "delivery.key"
_CONTEXT = b"clipsync media url v1"
_SUBJECT = re.compile(r"^[a-z]:[A-Za-z0-9_-]{1,64}$")
_EXPIRES = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^[A-Za-z0-9_-]{43}$")
REFUSED = "This link is not valid, or has expired. Load the video again."


@dataclass(frozen=True)
class Grant:
    """What a verified URL says: on whose behalf, and until when (Unix seconds)."""

    subject: str
    expires: int


@runtime_checkable
class FileStorage(Protocol):
    """A storage backend whose objects are files on this host (the `local` one)."""

    root: Path

    def path(self, key: str) -> Path: ...


class Signer:
    """Signs and verifies media URLs with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def signature(self, video_id: uuid.UUID | str, path: str, subject: str, expires: int) -> str:
        message = b"\0".join(
            [_CONTEXT, str(video_id).encode(), path.encode(), subject.encode(), b"%d" % expires]
        )
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def query(self, video_id: uuid.UUID | str, path: str, subject: str, expires: int) -> str:
        """The query string that authorises `path` of `video_id` for `subject` until `expires`."""
        signature = self.signature(video_id, path, subject, expires)
        return urlencode({SUBJECT: subject, EXPIRES: expires, SIGNATURE: signature})

    def verify(
        self,
        video_id: uuid.UUID | str,
        path: str,
        args: Mapping[str, Any],
        now: float | None = None,
    ) -> Grant:
        """The grant of a signed request for `path` of `video_id`; Forbidden otherwise.

        `args` is the request's query (`request.args`: its `get` gives the first value).
        """
        subject, expires, signature = (str(args.get(name) or "") for name in _FIELDS)
        if not (
            _SUBJECT.match(subject) and _EXPIRES.match(expires) and _SIGNATURE.match(signature)
        ):
            raise Forbidden(REFUSED)
        expected = self.signature(video_id, path, subject, int(expires))
        if not hmac.compare_digest(expected, signature):
            raise Forbidden(REFUSED)
        if int(expires) <= (time.time() if now is None else now):
            raise Forbidden(REFUSED)
        return Grant(subject, int(expires))


_FIELDS = (SUBJECT, EXPIRES, SIGNATURE)


def carries_signature(args: Mapping[str, Any]) -> bool:
    """Whether a request's query claims a signature (then it is authorised by it alone)."""
    return SIGNATURE in args


def signer_for(settings: Settings) -> Signer:
    """The signer of this install: `[delivery] signing_key`, or the generated key."""
    return _signer(settings.data_dir, settings.delivery.signing_key.reveal())


@functools.lru_cache(maxsize=8)
def _signer(data_dir: Path, configured: str) -> Signer:
    key = generated_keys.key_for(data_dir / "secrets" / KEY_FILE, 64, configured)
    return Signer(key.encode())


def session_subject(user_id: int, session_id: str) -> str:
    """The subject of a signed-in viewer: their session, or the user for a sessionless token."""
    return f"s:{session_id}" if session_id else f"u:{user_id}"


def link_subject(link_id: object) -> str:
    """The subject of someone watching through share link `link_id`."""
    return f"l:{link_id}"


def needs_viewer(path: str) -> bool:
    """Whether a signed request for `path` is checked against its subject too.

    Playlists (they hand out more URLs) and caption files (read through the
    database); every other file is served on the signature alone.
    """
    return path.endswith(".m3u8") or path.startswith("captions/")


def segment_expiry(settings: Settings, start: float, now: float | None = None) -> int:
    """When the URL of a segment that starts `start` seconds into the video expires."""
    now = time.time() if now is None else now
    return int(now + start) + settings.delivery.segment_url_seconds


def accel_path(settings: Settings, key: str) -> str | None:
    """The `X-Accel-Redirect` target of storage key `key`, when a front serves the files."""
    prefix = settings.delivery.accel_redirect_prefix
    return prefix + key if prefix else None
