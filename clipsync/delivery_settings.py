"""`[delivery]`: signed media URLs, stream links and the file-serving front.

Its own module, registered in `clipsync.settings.SECTIONS`; what the settings do is
in `clipsync/delivery.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clipsync.setting_values import Secret, check, positive

# An internal location of the front, e.g. "/_clipsync_media/": absolute, ends in "/".
_PREFIX_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/")


def accel_prefix_problem(value: str) -> str | None:
    if not value:
        return None
    if not (value.startswith("/") and value.endswith("/") and len(value) > 2):
        return 'must be a path that starts and ends with "/", like "/_clipsync_media/"'
    if not set(value) <= _PREFIX_CHARACTERS or "//" in value:
        return "may hold only letters, digits, _, - and single slashes"
    return None


def segment_seconds_problem(value: int) -> str | None:
    return None if 10 <= value <= 3600 else "must be between 10 and 3600"


@dataclass(frozen=True)
class DeliverySettings:
    # The key that signs media URLs (segments, stream links). Empty: one is generated
    # in <data_dir>/secrets/delivery.key. Hosts sharing a database must sign with the
    # same key: set this on every host (better { "$env" = "..." } or { "$file" = ... }).
    signing_key: Secret = field(default_factory=Secret)
    # A media playlist gives each segment a URL valid this many seconds after the
    # moment normal playback reaches that segment (see clipsync/delivery.py).
    segment_url_seconds: int = check(segment_seconds_problem, 120)
    # How long a stream link ("Copy stream link") plays, at most: it also stops when
    # the sign-in session it was made in ends.
    stream_link_seconds: int = check(positive, 6 * 3600)
    # With a front that serves the files itself (deploy/nginx/clipsync-front.conf):
    # its internal location over the local storage root, e.g. "/_clipsync_media/".
    # An authorised file request is then answered with `X-Accel-Redirect: <prefix><key>`
    # and no body, and the front sends the bytes. Empty: ClipSync sends them.
    accel_redirect_prefix: str = check(accel_prefix_problem, "")
