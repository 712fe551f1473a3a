"""Moderation: the queue, approving and rejecting, re-queueing and re-transcoding.

Admins moderate every video; editors the videos of their own category
(`videos.can_moderate`). A video the moderator may not even see answers 404, like
everywhere else. Every decision is written to the audit log and fires
`video_status_changed`; the uploader sees the decision and its reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from clipsync import events
from clipsync.errors import Conflict, Forbidden, NotFound, QueueUnavailable, ValidationFailed
from clipsync.models import AuditEntry, Rendition, Role, User, Video, VideoStatus
from clipsync.plugins import PluginHost
from clipsync.services.memberships import categories_of
from clipsync.services.transcoding import queue_transcode
from clipsync.services.videos import Page, can_moderate, get_visible
from clipsync.settings import Settings
from clipsync.storage import keys

log = logging.getLogger(__name__)

PENDING = (VideoStatus.UPLOADED, VideoStatus.PROCESSING, VideoStatus.READY)
MAX_REASON = 2000


def require_moderator(user: User) -> User:
    if user.role not in (Role.ADMIN, Role.EDITOR):
        raise Forbidden("Only administrators and editors can moderate videos.")
    return user


async def record(
    actor: User,
    action: str,
    *,
    video: Video | None = None,
    target: User | None = None,
    reason: str = "",
    category: str | None = None,
    **details: Any,
) -> AuditEntry:
    """Write one entry to the audit log."""
    return await AuditEntry.create(
        actor=actor,
        actor_email=actor.email,
        action=action,
        video=video,
        video_title=video.title if video else "",
        category=category or (video.category if video else None),
        target_user=target,
        reason=reason,
        details=details,
    )


class ModerationService:
    def __init__(
        self,
        settings: Settings,
        storage: Any,
        plugins: PluginHost,
        enqueue_transcode: Callable[[uuid.UUID], Any],
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.plugins = plugins
        self.enqueue_transcode = enqueue_transcode

    async def pending(
        self,
        moderator: User,
        page: int,
        page_size: int,
        status: str | None = None,
        category: str | None = None,
    ) -> Page:
        require_moderator(moderator)
        statuses = PENDING
        if status:
            if status not in [str(s) for s in PENDING]:
                choices = ", ".join(PENDING)
                raise ValidationFailed(f"status must be one of {choices}.", field="status")
            statuses = (VideoStatus(status),)
        query = Video.filter(status__in=statuses)
        if moderator.role == Role.EDITOR:
            query = query.filter(category__in=categories_of(moderator))
        if category:
            query = query.filter(category=category)
        total = await query.count()
        items = (
            await query.order_by("created_at")
            .offset((page - 1) * page_size)
            .limit(page_size)
            .prefetch_related("owner")
        )
        return Page(items=list(items), total=total, page=page, page_size=page_size)

    async def _moderated(self, moderator: User, video_id: Any) -> Video:
        require_moderator(moderator)
        video = await get_visible(moderator, video_id)
        if not can_moderate(moderator, video):
            raise NotFound("There is no such video.")
        return video

    async def _decide(
        self, moderator: User, video: Video, new: VideoStatus, action: str, reason: str
    ) -> Video:
        old = video.status
        video.status = new
        video.moderation_reason = reason or None
        video.moderated_at = datetime.now(UTC)
        await video.save(
            update_fields=["status", "moderation_reason", "moderated_at", "updated_at"]
        )
        await record(moderator, action, video=video, reason=reason, old=str(old), new=str(new))
        await events.status_changed(self.plugins, video, old)
        return video

    @staticmethod
    def _expect(video: Video, *allowed: VideoStatus, doing: str) -> None:
        if video.status not in allowed:
            raise Conflict(
                f"This video cannot be {doing}: its status is {video.status}.",
                details={"status": str(video.status)},
            )

    async def approve(self, moderator: User, video_id: Any) -> Video:
        video = await self._moderated(moderator, video_id)
        self._expect(video, VideoStatus.READY, doing="approved")
        return await self._decide(moderator, video, VideoStatus.APPROVED, "approve", "")

    async def reject(self, moderator: User, video_id: Any, reason: Any, delete_files: Any) -> Video:
        video = await self._moderated(moderator, video_id)
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationFailed(
                "Say why the video is rejected: the uploader will read it.", field="reason"
            )
        if len(reason) > MAX_REASON:
            raise ValidationFailed(
                f"The reason can be at most {MAX_REASON} characters.", field="reason"
            )
        self._expect(
            video, VideoStatus.PROCESSING, VideoStatus.READY, VideoStatus.APPROVED,
            VideoStatus.FAILED, doing="rejected",
        )  # fmt: skip
        video = await self._decide(moderator, video, VideoStatus.REJECTED, "reject", reason.strip())
        if delete_files is True:
            await self.delete_files(moderator, video)
        return video

    async def delete_files(self, moderator: User, video: Video) -> int:
        """Remove every stored file of a video; the row stays, for the record."""
        deleted = await self.storage.delete_prefix(keys.video_prefix(video.id))
        video.source_key = video.hls_key = video.poster_key = None
        video.sprite_key = video.thumbnails_key = None
        await video.save()
        await Rendition.filter(video_id=video.id).delete()
        await record(moderator, "delete_files", video=video, files=deleted)
        return deleted

    async def requeue(self, moderator: User, video_id: Any) -> Video:
        """Try a FAILED video's transcoding again."""
        video = await self._moderated(moderator, video_id)
        self._expect(video, VideoStatus.FAILED, doing="queued again")
        return await self._transcode_again(moderator, video, "requeue")

    async def retranscode(self, moderator: User, video_id: Any) -> Video:
        """Make a video's renditions again (after a ladder change, say)."""
        video = await self._moderated(moderator, video_id)
        self._expect(
            video, VideoStatus.READY, VideoStatus.APPROVED, VideoStatus.FAILED,
            VideoStatus.REJECTED, doing="transcoded again",
        )  # fmt: skip
        return await self._transcode_again(moderator, video, "retranscode")

    async def _transcode_again(self, moderator: User, video: Video, action: str) -> Video:
        if not video.source_key or await self.storage.size(video.source_key) is None:
            raise Conflict(
                "The uploaded file of this video was deleted, so it cannot be transcoded again.",
                details={"status": str(video.status)},
            )
        old = video.status
        if old != VideoStatus.APPROVED:
            # Anything but an approved video is moderated afresh once it is ready again;
            # an approved one goes back to APPROVED when its new renditions are stored.
            video.moderation_reason = None
            video.moderated_at = None
        video.status = VideoStatus.PROCESSING
        video.progress = 0
        video.attempts = 0
        video.error = None
        video.worker_lease = None
        await video.save()
        await record(moderator, action, video=video, old=str(old))
        await events.status_changed(self.plugins, video, old)
        try:
            await queue_transcode(self.enqueue_transcode, video.id)
        except QueueUnavailable:
            # The decision stands: the reaper queues a PROCESSING video that has no
            # job as soon as the queue answers again.
            log.warning("video %s is queued for transcoding once the queue is back", video.id)
        return video

    async def move(self, moderator: User, video_id: Any, category: Any) -> Video:
        """Put a video in another category; both must be categories the moderator manages."""
        video = await self._moderated(moderator, video_id)
        target = self.settings.category(category) if isinstance(category, str) else None
        if target is None:
            names = ", ".join(c.name for c in self.settings.categories)
            raise ValidationFailed(
                f"Choose one of these categories: {names}.", field="categoryRole"
            )
        if moderator.role != Role.ADMIN and target.name not in categories_of(moderator):
            raise Forbidden("Editors can only place videos in their own category.")
        old = video.category
        video.category = target.name
        await video.save(update_fields=["category", "updated_at"])
        await record(moderator, "move", video=video, old=old, new=target.name)
        await events.publish_video("video.moved", video, oldCategory=old)
        return video

    async def audit(
        self, moderator: User, page: int, page_size: int, video_id: Any = None
    ) -> tuple[list[AuditEntry], int]:
        """The audit log: everything for admins, their category's entries for editors."""
        require_moderator(moderator)
        query = AuditEntry.all()
        if moderator.role == Role.EDITOR:
            # Their category's video decisions; account changes are the admins' own.
            query = query.filter(category__in=categories_of(moderator), video_id__isnull=False)
        if video_id:
            query = query.filter(video_id=(await self._moderated(moderator, video_id)).id)
        total = await query.count()
        entries = await query.offset((page - 1) * page_size).limit(page_size)
        return list(entries), total


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.created_at.isoformat(),
        "actor": entry.actor_email,
        "action": entry.action,
        "videoId": str(entry.video_id) if entry.video_id else None,
        "videoTitle": entry.video_title,
        "category": entry.category,
        "targetUserId": entry.target_user_id,
        "reason": entry.reason,
        "details": entry.details,
    }
