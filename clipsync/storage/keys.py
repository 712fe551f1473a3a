"""The one place object keys are built and checked.

A key is a relative, `/`-separated path such as `videos/<id>/source.mp4`. Every
backend stores objects under these keys (a file path on disk, an object name in a
bucket), so the layout is the same in every storage mode and moving between stores
is a copy.
"""

from __future__ import annotations

import re

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key; raise ValueError otherwise."""
    parts = key.split("/")
    if not key or any(not _SEGMENT.match(part) or ".." in part for part in parts):
        raise ValueError(f"not a valid storage key: {key!r}")
    return key
