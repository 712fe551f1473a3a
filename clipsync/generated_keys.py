"""Keys a server makes for itself once and keeps in its data directory.

A secret nobody configured (the token signing key, the unsubscribe key, the key that
seals two-factor secrets) is generated on first start into `<data_dir>/secrets/`, so
it survives restarts without anyone having to invent one. Each kind has its own file:
one leaked or rotated key never touches another.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create(path: Path, nbytes: int) -> str:
    """The key at `path`; made of `nbytes` random bytes (URL-safe text) the first time.

    The file is written whole under another name and then linked into place, mode
    600: a reader never sees half a key, and of two processes starting at once the
    first writer wins (`link` never replaces), so both end up with the same key.
    """
    if path.exists():
        return path.read_text().strip()
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
    return path.read_text().strip()
