"""`[sharing]`: downloads, the embed player's framing, and share links.

Its own module, registered in `clipsync.settings.SECTIONS`; what the settings do is in
`clipsync/web/sharing_pages.py` (download, embed) and `clipsync/services/share_links.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def frame_ancestors_problem(sources: list[str]) -> str | None:
    """A CSP source must be one token: a space or `;` would add directives to the header."""
    for source in sources:
        if not source or any(c.isspace() or c in ';,"' for c in source):
            return f"{source!r} is not one CSP source (e.g. 'self' or https://intranet.example)"
    return None


@dataclass(frozen=True)
class SharingSettings:
    # Whether a video's original file may be downloaded from its watch page, by those
    # who may watch it, when its uploader allows it for that video too.
    allow_download: bool = False
    # Who may show the /embed/<id> player in a frame: CSP frame-ancestors sources,
    # e.g. ["'self'", "https://intranet.example"]. Every other page refuses framing.
    embed_frame_ancestors: list[str] = field(
        default_factory=lambda: ["'self'"], metadata={"check": frame_ancestors_problem}
    )
    # Whether a share link (/s/<token>) opens its video for anyone who has it, signed
    # in or not; false: only for people signed in to this site.
    allow_public_links: bool = False
