"""Unsubscribe links that work without signing in: `/-/notify_email/unsubscribe/<token>`.

The token names a person, a notification type and the email channel, signed with
HMAC-SHA256 (the standard library's `hmac`: nothing to install, and the token holds
nothing secret, so it needs signing, not encrypting). The key is this plugin's own,
`unsubscribe_secret`, or one generated once into `<data_dir>/secrets/`: it is not the
session key, so rotating one never touches the other, and a leaked one forges only
its own kind of token. A token does not expire: a mail read a year later must still
unsubscribe (RFC 8058 asks the link to keep working).

GET shows a confirmation page and changes nothing, because mail scanners and link
previews follow links. POST turns that type's email off: the page's button, and the
one-click POST (`List-Unsubscribe=One-Click`) that a mail client sends by itself,
without cookies, so this route is exempt from CSRF: the token in its path is what
authorises it. A token that is not genuine, or names a person who is gone, is 404.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sanic.response import HTTPResponse

from clipsync import generated_keys
from clipsync.errors import NotFound
from clipsync.models import User
from clipsync.services import notification_types
from clipsync.settings import Settings

from .settings import EmailSettings

PLUGIN = "notify_email"
PATH = "unsubscribe/<token:str>"
CHANNEL = "email"
KEY_FILE = "notify_email_unsubscribe.key"
PAGE = "unsubscribe.html"
NOT_FOUND = "This unsubscribe link is not valid. Change what you receive in your settings."

# The key in use per (data directory, configured secret): read from disk once.
_keys: dict[tuple[str, str], bytes] = {}


def signing_key(settings: Settings, config: EmailSettings) -> bytes:
    """The key unsubscribe tokens are signed with (see the module docstring)."""
    configured = config.unsubscribe_secret.reveal()
    cache_key = (str(settings.data_dir), configured)
    if cache_key not in _keys:
        secret = generated_keys.key_for(settings.data_dir / "secrets" / KEY_FILE, 48, configured)
        # Domain-separated, so the same secret could never sign another kind of token.
        _keys[cache_key] = hashlib.sha256(b"clipsync unsubscribe v1\0" + secret.encode()).digest()
    return _keys[cache_key]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


def make_token(key: bytes, user_id: int, type_name: str, channel: str = CHANNEL) -> str:
    body = f"{user_id}\0{type_name}\0{channel}".encode()
    return f"{_b64(body)}.{_b64(_mac(key, body))}"


@dataclass(frozen=True)
class Unsubscribe:
    user_id: int
    type: str
    channel: str


def read_token(key: bytes, token: str) -> Unsubscribe | None:
    """What a genuine token asks for; None for anything else."""
    body_text, _, mac_text = token.partition(".")
    try:
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(mac, _mac(key, body)):
        return None
    parts = body.decode(errors="replace").split("\0")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return Unsubscribe(int(parts[0]), parts[1], parts[2])


def url(settings: Settings, config: EmailSettings, user_id: int, type_name: str) -> str | None:
    """The absolute unsubscribe link for a type, or None when it cannot be turned off."""
    kind = notification_types.TYPES.get(type_name)
    if kind is None or kind.mandatory:
        return None
    token = make_token(signing_key(settings, config), user_id, type_name)
    return f"{settings.server.base_url}/-/{PLUGIN}/unsubscribe/{token}"


async def _wanted(request: Any, token: str) -> tuple[Unsubscribe, User]:
    """The genuine request a token makes, for a person who still exists; else 404."""
    ctx = request.app.ctx
    config = ctx.plugins.plugin_config(PLUGIN) or EmailSettings()
    wanted = read_token(signing_key(ctx.settings, config), token)
    kind = notification_types.TYPES.get(wanted.type) if wanted else None
    if wanted is None or kind is None or kind.mandatory or wanted.channel != CHANNEL:
        raise NotFound(NOT_FOUND)
    user = await User.get_or_none(id=wanted.user_id)
    if user is None:
        raise NotFound(NOT_FOUND)
    return wanted, user


def _page(request: Any, wanted: Unsubscribe, user: User, *, done: bool) -> HTTPResponse:
    kind = notification_types.TYPES[wanted.type]
    return request.app.ctx.templates.render(
        request,
        PAGE,
        label=kind.label,
        address=user.email,
        done=done,
        action=request.path,
    )


async def confirm_page(request: Any, token: str) -> HTTPResponse:
    """GET: ask, and change nothing."""
    wanted, user = await _wanted(request, token)
    return _page(request, wanted, user, done=False)


async def unsubscribe(request: Any, token: str) -> HTTPResponse:
    """POST: turn the type's email off (the confirmation button, or a mail client's one-click)."""
    wanted, user = await _wanted(request, token)
    if not await notification_types.turn_off(user.id, wanted.type, wanted.channel):
        raise NotFound(NOT_FOUND)
    return _page(request, wanted, user, done=True)
