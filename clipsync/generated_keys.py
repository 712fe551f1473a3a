"""Keys a server makes for itself once and keeps in its data directory.

A secret nobody configured (the token signing key, the unsubscribe key, the key that
seals two-factor secrets) is generated on first start into `<data_dir>/secrets/`, so
it survives restarts without anyone having to invent one. Each kind has its own file:
one leaked or rotated key never touches another.

A key in one host's data directory is that host's alone: hosts that share a database
must share their keys too (configured, or copied). Every user of a key asks `key_for`
(the setting's key, else the generated one), which records which it handed out, and
`check_shared` makes a second host with a key of its own refuse to start instead of
signing what the others refuse, whether the first host set its key or generated it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tortoise.exceptions import IntegrityError

from clipsync.db import dialect
from clipsync.errors import ConfigError
from clipsync.settings import Secret, Settings


def key_for(path: Path, nbytes: int, configured: str = "") -> str:
    """The key a setting gives (`configured`), else the one generated at `path`
    (`load_or_create`). Either way it is recorded for `check_shared`: a host that
    generated its own beside hosts that set one is refused, and the other way round.
    """
    if configured:
        _handed_out[path] = (configured, True)
        return configured
    return load_or_create(path, nbytes)


def load_or_create(path: Path, nbytes: int) -> str:
    """The key at `path`; made of `nbytes` random bytes (URL-safe text) the first time.

    The file is written whole under another name and then linked into place, mode
    600: a reader never sees half a key, and of two processes starting at once the
    first writer wins (`link` never replaces), so both end up with the same key.
    """
    if path.exists():
        return _hand_out(path, path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(nbytes) + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return _hand_out(path, path.read_text().strip())


def _hand_out(path: Path, key: str) -> str:
    _handed_out[path] = (key, False)
    return key


# --- several hosts on one database ---------------------------------------------------------

# What an administrator sets instead of each generated key, so every host has the same.
CONFIGURE_INSTEAD = {
    "jwt.key": "[plugins.auth_local] jwt_secret",
    "notify_email_unsubscribe.key": "[plugins.notify_email] unsubscribe_secret",
    "auth_oidc_cookie.key": "[plugins.auth_oidc] cookie_secret",
    "delivery.key": "[delivery] signing_key",
    "two_factor.key": "[auth] two_factor_secret",
}
# Keys the core makes when first needed (their size, and the setting that replaces
# them): on a shared database they are made, or read from their setting, at start-up
# instead, so a second host finds out at once, not when someone first needs one.
MADE_AT_START: dict[str, tuple[int, Callable[[Settings], Secret]]] = {
    "two_factor.key": (32, lambda settings: settings.auth.two_factor_secret),
}
# The claims (`site_alerts`) that record each key in use: `key:<kind>:<host>:<fp>`.
RECORD_PREFIX = "key:"

# Every key this process handed out: path -> (key, whether a setting gave it).
_handed_out: dict[Path, tuple[str, bool]] = {}


def fingerprint(key: str) -> str:
    """A short, one-way name for a key: which key, never the key."""
    return hashlib.sha256(b"clipsync key fingerprint v1\0" + key.encode()).hexdigest()[:16]


def host_identity(data_dir: Path) -> str:
    """This host and data directory, in 8 hex digits: whose record is whose."""
    return hashlib.sha256(f"{socket.gethostname()}\0{data_dir}".encode()).hexdigest()[:8]


async def check_shared(settings: Settings) -> None:
    """Refuse to start (ConfigError) with a generated key another host has differently.

    Only a PostgreSQL database can be shared by hosts. Each generated key this
    process uses, and each of the core's keys (`MADE_AT_START`) generated or set, is
    recorded there by its fingerprint; a host that finds another host's record with
    another fingerprint would sign what the others refuse (tokens, links, sealed
    secrets), so it stops and says what to configure.
    """
    if dialect(settings.database_url) != "postgres":
        return
    secrets_dir = settings.data_dir / "secrets"
    # The core's keys are recorded configured too: a host that generated its own is
    # refused beside hosts that set one, and every host is seen (host_sharing.py).
    in_use: dict[Path, tuple[str, bool]] = {}
    for name, (nbytes, _) in MADE_AT_START.items():
        configured = configured_key(settings, name)
        key = configured or load_or_create(secrets_dir / name, nbytes)
        in_use[secrets_dir / name] = (key, bool(configured))
    for path, handed in _handed_out.items():
        if path.parent == secrets_dir:
            in_use.setdefault(path, handed)
    host = host_identity(settings.data_dir)
    for path, (key, configured) in sorted(in_use.items()):
        await _record(path, fingerprint(key), host, configured)


def configured_key(settings: Settings, name: str) -> str:
    """The setting that replaces the core's generated key `name`, or "" when unset."""
    _, setting = MADE_AT_START[name]
    return setting(settings).reveal()


async def differing_keys(settings: Settings) -> list[str]:
    """The core's keys this host uses (or would generate) unlike the other hosts'.

    For `clipsync doctor`: what `check_shared` would refuse at start-up, found before.
    The database must be open.
    """
    from clipsync.models import SiteAlert

    host = host_identity(settings.data_dir)
    found = []
    for name in MADE_AT_START:
        prefix = f"{RECORD_PREFIX}{name.removesuffix('.key')}:"
        names = await SiteAlert.filter(name__startswith=prefix).values_list("name", flat=True)
        theirs = {parts[3] for parts in (str(n).split(":", 3) for n in names) if parts[2] != host}
        if not theirs:
            continue
        path = settings.data_dir / "secrets" / name
        mine = configured_key(settings, name) or (path.read_text().strip() if path.exists() else "")
        if not mine or fingerprint(mine) not in theirs:
            found.append(
                f"its {name} is not the other hosts' (it would seal what they refuse): "
                f"set {CONFIGURE_INSTEAD[name]} to the same secret on every host"
            )
    return found


async def _record(path: Path, mine: str, host: str, configured: bool) -> None:
    from clipsync.models import SiteAlert

    prefix = f"{RECORD_PREFIX}{path.name.removesuffix('.key')}:"
    own = f"{prefix}{host}:{mine}"
    # A key this host rotated (its file deleted, a new one made) replaces its record.
    await SiteAlert.filter(name__startswith=f"{prefix}{host}:").exclude(name=own).delete()
    if await _others(prefix, host, mine):
        raise ConfigError(_refusal(path, configured))
    with contextlib.suppress(IntegrityError):  # recorded by an earlier start
        await SiteAlert.create(name=own, last_sent_at=datetime.now(UTC))
    if await _others(prefix, host, mine):  # another host started at the same moment
        await SiteAlert.filter(name=own).delete()
        raise ConfigError(_refusal(path, configured))


async def _others(prefix: str, host: str, mine: str) -> bool:
    """Whether another host recorded a different key of this kind."""
    from clipsync.models import SiteAlert

    names = await SiteAlert.filter(name__startswith=prefix).values_list("name", flat=True)
    for name in names:
        _, _, their_host, theirs = str(name).split(":", 3)
        if their_host != host and theirs != mine:
            return True
    return False


def _refusal(path: Path, configured: bool) -> str:
    setting = CONFIGURE_INSTEAD.get(path.name)
    copy = f"copy {path.name} from the first host into {path.parent} on every host"
    fix = f"set {setting} to the same secret on every host" if setting else copy
    if path.name in MADE_AT_START and not configured:
        # What the first host sealed opens only with its key: copied, or set to its text.
        fix = f"{fix}, or {copy}"
    if configured:
        return (
            f"{setting} on this host is not the key another host sharing this database "
            f"uses: what one signs the other would refuse. To run several hosts, {fix}, "
            "then start again."
        )
    return (
        f"{path} was generated on this host, but another host sharing this database uses "
        f"a different {path.name}: what one signs the other would refuse. To run several "
        f"hosts, {fix}, then start again."
    )
