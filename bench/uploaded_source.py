"""A benchmark's source file as an upload that has just ended: stored, registered.

Shared by bench/transcode.py and bench/first_frame.py, which then run the transcoding
job on it themselves (the job is not queued), and bench/scale.py, which queues it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from clipsync.backends import StorageBackend
from clipsync.models import User
from clipsync.plugins import PluginHost
from clipsync.services.transcoding import JobContext
from clipsync.services.uploads import UploadService, record_upload
from clipsync.settings import Settings
from clipsync.storage import keys


async def register_source(ctx: JobContext, source: Path, size: int) -> uuid.UUID:
    """Store `source` as a new person's upload and register it, as the upload page
    does (probed, checked, PROCESSING), without queueing its job; the video's id."""
    return await store_and_register(
        ctx.settings, ctx.backends.storage, ctx.plugins, source, size, lambda _video_id: None
    )


async def store_and_register(
    settings: Settings,
    storage: StorageBackend,
    plugins: PluginHost,
    source: Path,
    size: int,
    enqueue: Callable[[uuid.UUID], object],
) -> uuid.UUID:
    """`register_source` with the queue's `enqueue` (bench/scale.py queues the job)."""
    user = await User.create(
        email=f"bench-{uuid.uuid4().hex[:8]}@example.org",
        password_hash="!",
        category=settings.default_category.name,
    )
    video_id = uuid.uuid4()
    key = keys.source_key(video_id, "clip.mp4")
    await storage.put_file(key, source, "video/mp4")
    await record_upload(user, video_id, key, "clip.mp4", size, None)
    uploads = UploadService(settings, storage, plugins, enqueue)
    await uploads.register(user, str(video_id), "Benchmark clip", "")
    return video_id
