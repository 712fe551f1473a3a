"""A site with people of each role and videos really transcoded (ffmpeg, a small ladder),
for the tests of what owners and moderators do to a video after its upload: thumbnails,
a new source file, transcoding again."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from clients import PASSWORD, bearer, upload_and_register
from clips import make_clip

from clipsync.context import ClipSyncApp
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.services.transcoding import JobContext, run_transcode
from clipsync.storage import keys

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]
PEOPLE = [
    ("admin", Role.ADMIN, "staff"),
    ("editor", Role.EDITOR, "staff"),
    ("uploader", Role.USER, "staff"),
    ("viewer", Role.USER, "staff"),
    ("dealer", Role.USER, "dealers"),
    ("dealer_editor", Role.EDITOR, "dealers"),
]
SMALL_LADDER = [{"height": 144, "bitrate": 150}, {"height": 240, "bitrate": 300}]


@dataclass
class Site:
    app: ClipSyncApp
    client: httpx.AsyncClient
    people: dict[str, tuple[User, str]] = field(default_factory=dict)

    def token(self, name: str) -> str:
        return self.people[name][1]

    def auth(self, name: str) -> dict[str, str]:
        return bearer(self.token(name))

    def user(self, name: str) -> User:
        return self.people[name][0]

    def job_context(self) -> JobContext:
        app = self.app
        return JobContext(app.ctx.settings, app.ctx.plugins, app.ctx.backends)

    async def transcode(self, video_id: Any) -> Video:
        """Run the video's transcoding job here and now, as a consumer would."""
        await run_transcode(self.job_context(), str(video_id), final_attempt=True)
        return await Video.get(id=video_id)

    async def upload(self, path: Path, owner: str = "uploader", title: str = "A clip") -> str:
        """Upload and register a file as `owner`; its id (PROCESSING, not transcoded)."""
        answer = await upload_and_register(self.client, self.token(owner), path, title)
        assert answer.status_code == 201, answer.text
        return answer.json()["video"]["id"]

    async def ready_video(self, kind: str = "landscape", approve: bool = False) -> Video:
        """A video uploaded by `uploader`, transcoded; APPROVED when `approve`."""
        video = await self.transcode(await self.upload(make_clip(kind)))
        assert video.status == VideoStatus.READY, video.error
        if approve:
            await self.app.ctx.moderation.approve(self.user("editor"), video.id)
            video = await Video.get(id=video.id)
        return video

    async def stored(self, video_id: Any) -> list[str]:
        return await self.app.ctx.backends.storage.list(keys.video_prefix(video_id))


def site_settings(make_settings: Any, migrated_sqlite: Path, **tables: Any) -> Any:
    tables.setdefault("transcoder", {})
    tables["transcoder"] = {"ladder": SMALL_LADDER} | tables["transcoder"]
    settings = make_settings(category=CATEGORIES, **tables)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    return settings


async def make_site(start_app: Any, settings: Any) -> Site:
    app, client = await start_app(settings)
    site = Site(app, client)
    for name, role, category in PEOPLE:
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        site.people[name] = (user, app.ctx.accounts.start_session(user).token)
    return site
