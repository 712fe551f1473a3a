"""A small site for the tests of access beyond one category: three categories, people
in each, and videos whose HLS tree is a real (tiny) one: a master playlist, a media
playlist and two segments, so playlists and segments can be fetched as a player does.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import httpx
from clients import PASSWORD

from clipsync.context import ClipSyncApp
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.storage import keys

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
    {"name": "partners", "label": "Partners", "self_select": True},
]
PEOPLE = [
    ("admin", Role.ADMIN, "staff"),
    ("editor", Role.EDITOR, "staff"),
    ("uploader", Role.USER, "staff"),
    ("colleague", Role.USER, "staff"),
    ("dealer", Role.USER, "dealers"),
    ("dealer_editor", Role.EDITOR, "dealers"),
    ("partner", Role.USER, "partners"),
]
MASTER = (
    "#EXTM3U\n#EXT-X-VERSION:7\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=426x240\n240p/index.m3u8\n"
)
MEDIA = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    '#EXT-X-MAP:URI="init.mp4"\n'
    "#EXTINF:4.0,\nseg_00001.m4s\n#EXTINF:4.0,\nseg_00002.m4s\n#EXT-X-ENDLIST\n"
)
FILES = {
    "master.m3u8": MASTER.encode(),
    "240p/index.m3u8": MEDIA.encode(),
    "240p/init.mp4": b"init",
    "240p/seg_00001.m4s": b"segment one",
    "240p/seg_00002.m4s": b"segment two",
    "poster.jpg": b"\xff\xd8poster",
}
SIGNED_URI = re.compile(r"^(seg_\d+\.m4s\?[^\s]+)$", re.M)


def site_settings(make_settings, migrated_sqlite: Path, **tables: Any):
    tables.setdefault("quotas", {"registrations_per_address_per_hour": 0})
    settings = make_settings(category=CATEGORIES, **tables)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    return settings


async def make_people(app: ClipSyncApp) -> dict[str, tuple[User, str]]:
    """Each of PEOPLE, with a session token."""
    people = {}
    for name, role, category in PEOPLE:
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        people[name] = (user, app.ctx.accounts.start_session(user).token)
    return people


async def playable(
    app: ClipSyncApp,
    owner: User,
    status: VideoStatus = VideoStatus.APPROVED,
    title: str = "Clip",
    category: str | None = None,
) -> Video:
    """A video row with a tiny real HLS tree (see the module docstring)."""
    row = await Video.create(
        owner=owner,
        title=title,
        description="About it",
        category=category or owner.category,
        status=status,
        duration=8.0,
    )

    storage = app.ctx.backends.storage
    for relative, data in FILES.items():

        async def body(data: bytes = data):
            yield data

        await storage.put_stream(keys.hls_key(row.id, relative), body())
    row.hls_key = keys.hls_key(row.id, "master.m3u8")
    row.poster_key = keys.hls_key(row.id, "poster.jpg")
    await row.save()
    return row


async def play(
    client: httpx.AsyncClient, base: str, headers: dict[str, str] | None = None
) -> tuple[int, int, int, str]:
    """Fetch as a player does from `base` (`/hls/<id>` or its share form): (master,
    media playlist, first segment) statuses, and the first segment's URL."""
    master = await client.get(f"{base}/master.m3u8", headers=headers)
    media = await client.get(f"{base}/240p/index.m3u8", headers=headers)
    segment_url = ""
    segment = 404
    if media.status_code == 200:
        found = SIGNED_URI.search(media.text)
        segment_url = f"{base}/240p/{found.group(1) if found else 'seg_00001.m4s'}"
        segment = (await client.get(segment_url, headers=headers)).status_code
    return master.status_code, media.status_code, segment, segment_url
