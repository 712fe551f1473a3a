"""The library: owners edit and delete their videos; moderators list, unpublish and delete.
(Thumbnails: services/thumbnails.py; a new source file: services/source_replacement.py;
both for the uploader and the video's moderators, `manageable`.)

Who may see a video is `services.videos`' rule alone: every lookup here starts from
`get_visible`, then asks a narrower question (is this the uploader? may this person
moderate it, `can_moderate`?). A video someone may see but not change answers 404
like one that does not exist, so an edit or a delete never tells whose a video is.

Deleting a video deletes it for good: its stored files (source, HLS tree, poster,
sprite: everything under `keys.video_prefix`) and its row, with whatever hangs on
the row (renditions, resume points). The audit entry keeps its title and id as text
(its link to the row is set to null); notifications keep their `video_id` without a
foreign key and simply lead nowhere; watch figures stay with the analytics store.
A transcode still running stops by itself: its next progress write (about every
second while ffmpeg runs) or its consumer's next lease heartbeat (`renew_leases`,
also while it stores files) finds the row gone; ffmpeg is killed, the uploads under
way end, and the job deletes whatever it stored after this deletion swept the files
(`transcoding.sweep_if_deleted`) and removes its scratch folder. A job that ends
meanwhile finds no row to finish and sweeps the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Lower
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from clipsync import events
from clipsync.errors import Conflict, NotFound, ValidationFailed
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.plugins import PluginHost
from clipsync.services import tags
from clipsync.services.memberships import categories_of
from clipsync.services.moderation import MAX_REASON, record, require_moderator
from clipsync.services.uploads import UploadService
from clipsync.services.videos import Page, can_moderate, get_visible
from clipsync.settings import Settings
from clipsync.storage import keys

log = logging.getLogger(__name__)

EDITABLE = ("title", "description", "tags")
SORTS = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    # Case-insensitively ("apple" before "Banana"), on SQLite and PostgreSQL alike.
    "title": ("sort_title", "-created_at"),
}
# Longest `q` and `uploader` filter worth searching for.
MAX_FILTER = 200


@dataclass(frozen=True)
class LibraryFilters:
    """What the moderators' library is narrowed to; empty strings filter nothing."""

    status: str = ""
    category: str = ""
    uploader: str = ""
    q: str = ""
    sort: str = "newest"


def moderated_by(user: User) -> QuerySet[Video]:
    """Every video `user` may moderate: the query form of `videos.can_moderate`.

    `test_library_admin` checks, row by row, that it agrees with `can_moderate`.
    """
    if user.role == Role.ADMIN:
        return Video.all()
    if user.role == Role.EDITOR:
        return Video.filter(category__in=categories_of(user))
    return Video.filter(id__in=[])


class LibraryService:
    """Edits, deletions and the moderators' view of the whole library."""

    def __init__(self, settings: Settings, storage: Any, plugins: PluginHost) -> None:
        self.settings = settings
        self.storage = storage
        self.plugins = plugins

    # -- the uploader's own videos ------------------------------------------------------

    async def owned(self, owner: User, video_id: Any) -> Video:
        """The video if `owner` uploaded it; NotFound otherwise, even when they may see it."""
        video = await get_visible(owner, video_id)
        if video.owner_id != owner.id:
            raise NotFound("There is no such video.")
        return video

    async def manageable(self, user: User, video_id: Any) -> Video:
        """The video if `user` uploaded it or may moderate it (its thumbnail, its source);
        NotFound otherwise, even when they may see it."""
        video = await get_visible(user, video_id)
        if video.owner_id != user.id and not can_moderate(user, video):
            raise NotFound("There is no such video.")
        return video

    async def edit(self, owner: User, video_id: Any, changes: dict[str, Any]) -> Video:
        """Change the title, the description and/or the tags of one's own video.

        The upload's rules apply (`UploadService._details`: a title is required, the
        same limits and text rules). With `[moderation] reapprove_on_edit`, a changed
        APPROVED video is hidden again until a moderator approves it anew.
        """
        video = await self.owned(owner, video_id)
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise ValidationFailed(
                f"Only the title, the description and the tags can be changed, "
                f"not {', '.join(unknown)}.",
                field=unknown[0],
            )
        if not changes:
            raise ValidationFailed("Send a new title, description or tags.", field="title")
        # Every value is checked before anything is saved.
        labels = tags.parse(changes["tags"]) if "tags" in changes else None
        title, description = UploadService._details(
            changes.get("title", video.title), changes.get("description", video.description)
        )
        old_title, old_status = video.title, video.status
        changed = [
            name
            for name, old, new in (
                ("description", video.description, description),
                ("title", old_title, title),
            )
            if old != new
        ]
        text_changed = bool(changed)
        # Tags are not shown as the video's own words: they never send it back to moderation.
        if labels is not None and await tags.replace(video, labels):
            changed.append("tags")
        if not changed:
            return video
        back_to_moderation = (
            text_changed
            and old_status == VideoStatus.APPROVED
            and self.settings.moderation.reapprove_on_edit
        )
        if back_to_moderation:
            # Only if no moderator decided meanwhile. moderated_at is cleared too: a
            # video transcoded again returns to APPROVED only when it was approved and
            # not sent back since (services/transcoding.py).
            if not await Video.filter(id=video.id, status=VideoStatus.APPROVED).update(
                title=title,
                description=description,
                status=VideoStatus.READY,
                moderation_reason=None,
                moderated_at=None,
                updated_at=datetime.now(UTC),
            ):
                raise Conflict("This video changed meanwhile: reload and try again.")
            await video.refresh_from_db()
        elif text_changed:
            video.title, video.description = title, description
            await video.save(update_fields=["title", "description", "updated_at"])
        await record(
            owner,
            "owner_edit",
            video=video,
            changed=changed,
            oldTitle=old_title,
            backToModeration=back_to_moderation,
        )
        if back_to_moderation:
            # `video.ready`: the moderators of its category hear it awaits a decision.
            await events.status_changed(self.plugins, video, old_status)
        else:
            await events.publish_video("video.edited", video)
        return video

    async def delete_own(self, owner: User, video_id: Any) -> Video:
        """The uploader deletes their video: its files, its row, an audit entry."""
        video = await self.owned(owner, video_id)
        return await self._delete(owner, video, "owner_delete")

    # -- the moderators' library --------------------------------------------------------

    async def moderated(self, moderator: User, video_id: Any) -> Video:
        """The video if `moderator` may moderate it; NotFound otherwise."""
        require_moderator(moderator)
        video = await get_visible(moderator, video_id)
        if not can_moderate(moderator, video):
            raise NotFound("There is no such video.")
        return video

    async def listing(
        self, moderator: User, filters: LibraryFilters, page: int, page_size: int
    ) -> Page:
        """Every video `moderator` may moderate, in any status, filtered and sorted."""
        require_moderator(moderator)
        query = moderated_by(moderator)
        if filters.status:
            if filters.status not in [str(s) for s in VideoStatus]:
                choices = ", ".join(VideoStatus)
                raise ValidationFailed(f"status must be one of {choices}.", field="status")
            query = query.filter(status=VideoStatus(filters.status))
        if filters.category:
            query = query.filter(category=filters.category)
        if filters.sort not in SORTS:
            raise ValidationFailed(f"sort is one of {', '.join(SORTS)}.", field="sort")
        for name in ("uploader", "q"):
            if len(getattr(filters, name)) > MAX_FILTER:
                raise ValidationFailed(
                    f"{name} can be at most {MAX_FILTER} characters.", field=name
                )
        uploader = filters.uploader.strip()
        if uploader:
            if uploader.isascii() and uploader.isdigit() and len(uploader) <= 12:
                query = query.filter(owner_id=int(uploader))
            else:
                query = query.filter(owner__email__icontains=uploader.casefold())
        text = filters.q.strip()
        if text:
            query = query.filter(
                Q(title__icontains=text)
                | Q(description__icontains=text)
                | Q(original_filename__icontains=text)
            )
        total = await query.count()
        items = (
            await query.annotate(sort_title=Lower("title"))
            .order_by(*SORTS[filters.sort])
            .offset((page - 1) * page_size)
            .limit(page_size)
            .prefetch_related("owner")
        )
        return Page(items=list(items), total=total, page=page, page_size=page_size)

    async def unpublish(self, moderator: User, video_id: Any, reason: Any = "") -> Video:
        """Take an APPROVED video down: READY again, hidden from its category, audited."""
        video = await self.moderated(moderator, video_id)
        if video.status != VideoStatus.APPROVED:
            raise Conflict(
                f"Only approved videos can be unpublished: this one is {video.status}.",
                details={"status": str(video.status)},
            )
        reason = _reason(reason)
        old = video.status
        # Only if nobody decided meanwhile: two moderators at once unpublish it once.
        if not await Video.filter(id=video.id, status=VideoStatus.APPROVED).update(
            status=VideoStatus.READY,
            moderation_reason=None,
            moderated_at=None,
            updated_at=datetime.now(UTC),
        ):
            raise Conflict("This video changed meanwhile: reload and try again.")
        await video.refresh_from_db()
        await record(moderator, "unpublish", video=video, reason=reason, old=str(old))
        # Its own name: the uploader is not told "ready", the moderators' pages reload.
        await events.status_changed(self.plugins, video, old, name="video.unpublished")
        return video

    async def delete_moderated(self, moderator: User, video_id: Any, reason: Any = "") -> Video:
        """A moderator deletes a video they may moderate, in any status."""
        video = await self.moderated(moderator, video_id)
        return await self._delete(moderator, video, "moderator_delete", _reason(reason))

    # -- deleting -----------------------------------------------------------------------

    async def _delete(self, actor: User, video: Video, action: str, reason: str = "") -> Video:
        """Delete the video's files, then its row; audit it and publish `video.deleted`.

        Files first: should the store fail, the row is still there to try again.
        Files again once the row is gone: a job (a transcode) may have stored some
        in between; it is cancelled at its next heartbeat, finding no row to renew.
        """
        prefix = keys.video_prefix(video.id)
        files = await self.storage.delete_prefix(prefix)
        async with in_transaction():
            await record(
                actor,
                action,
                video=video,
                reason=reason,
                videoId=str(video.id),
                ownerId=video.owner_id,
                status=str(video.status),
                files=files,
            )
            await Video.filter(id=video.id).delete()
        files += await self.storage.delete_prefix(prefix)
        log.info("video %s deleted by user %s (%s files)", video.id, actor.id, files)
        # The row is gone: subscribers (webhooks) get the title from the event itself.
        await events.publish_video("video.deleted", video, title=video.title)
        return video


def _reason(reason: Any) -> str:
    if reason is None:
        return ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ValidationFailed(
            f"The reason is text of at most {MAX_REASON} characters.", field="reason"
        )
    return reason.strip()


def library_for(ctx: Any) -> LibraryService:
    """The service for an app's context (`app.ctx`) or a job's."""
    return LibraryService(ctx.settings, ctx.backends.storage, ctx.plugins)
