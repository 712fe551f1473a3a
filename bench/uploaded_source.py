"""A benchmark's source file as an upload that has just ended: stored, registered.

Shared by bench/transcode.py and bench/first_frame.py, which then run the transcoding
job on it themselves (the job is not queued).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from clipsync.models import User, Video, VideoStatus
from clipsync.services.transcoding import JobContext
from clipsync.services.uploads import UploadService
from clipsync.storage import keys


async def register_source(ctx: JobContext, source: Path, size: int) -> uuid.UUID:
    """Store `source` as a new person's upload and register it, as the upload page
    does (probed, checked, PROCESSING); the video's id."""
    settings, storage = ctx.settings, ctx.backends.storage
    user = await User.create(
        email=f"bench-{uuid.uuid4().hex[:8]}@example.org",
        password_hash="!",
        category=settings.default_category.name,
    )
    video_id = uuid.uuid4()
    key = keys.source_key(video_id, "clip.mp4")
    await storage.put_file(key, source, "video/mp4")
    await Video.create(
        id=video_id,
        owner=user,
        category=user.category,
        status=VideoStatus.UPLOADED,
        source_key=key,
        size=size,
        original_filename="clip.mp4",
    )
    uploads = UploadService(settings, storage, ctx.plugins, lambda _video_id: None)
    await uploads.register(user, str(video_id), "Benchmark clip", "")
    return video_id
