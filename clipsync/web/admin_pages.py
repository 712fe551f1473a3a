"""The moderation console (`/admin`): the queue, accounts, invites and the audit log.

Admins moderate every video and manage accounts and invites; editors moderate the
videos of their own category and read its audit log; everyone else gets 403. Like
the video pages, each page is rendered whole on the server from the services, so the
lists work without JavaScript; the theme's `js/admin*.js` then call `/api/admin` for
the actions and update the rows in place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sanic import Blueprint
from sanic.response import HTTPResponse

from clipsync.context import ClipSyncRequest
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.services import notifications
from clipsync.services.memberships import categories_of
from clipsync.services.moderation import PENDING, audit_json, require_moderator
from clipsync.services.user_admin import invite_json, require_admin, user_admin_json
from clipsync.services.videos import Page, page_numbers, video_json
from clipsync.sessions import require_user
from clipsync.web.video_pages import category_labels

bp = Blueprint("admin_pages")

QUEUE_PAGE_SIZE = 50
FAILED_LIMIT = 50
USERS_PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 50
INVITE_HOURS = (24, 72, 168)
ROLES = tuple(str(r) for r in Role)
PENDING_STATUSES = tuple(str(s) for s in PENDING)


def moderator(request: ClipSyncRequest) -> User:
    """The signed-in admin or editor; 403 (the friendly error page) for anyone else."""
    return require_moderator(require_user(request))


def admin(request: ClipSyncRequest) -> User:
    return require_admin(require_user(request))


def page_count(page: int, page_size: int, total: int) -> dict[str, Any]:
    """What the templates' pager needs: this page, its size, the total, how many pages."""
    return {
        "page": Page(items=[], total=total, page=page, page_size=page_size),
        "pages": max(1, -(-total // page_size)),
    }


def render(request: ClipSyncRequest, template: str, section: str, **context: Any) -> HTTPResponse:
    settings = request.app.ctx.settings
    return request.app.ctx.templates.render(
        request,
        template,
        admin_section=section,
        all_categories=list(settings.categories),
        category_names=category_labels(request),
        **context,
    )


def queue_video(video: Video, viewer: User) -> dict[str, Any]:
    """A video as the queue shows it: the API's JSON, its uploader, when it last changed."""
    return video_json(video, viewer) | {
        "uploaderEmail": video.owner.email,
        "updatedAt": video.updated_at.isoformat() if video.updated_at else None,
    }


@bp.get("/admin")
async def queue(request: ClipSyncRequest) -> HTTPResponse:
    """Videos waiting for a decision (oldest first), and those that failed to process."""
    user = moderator(request)
    settings = request.app.ctx.settings
    number, size = page_numbers(request.args.get("page"), None, QUEUE_PAGE_SIZE)
    # Unknown filter values are ignored rather than refused: they come from links.
    status = request.args.get("status", "")
    if status not in PENDING_STATUSES:
        status = ""
    category = request.args.get("category", "") if user.role == Role.ADMIN else ""
    if category and settings.category(category) is None:
        category = ""
    found = await request.app.ctx.moderation.pending(
        user, number, size, status or None, category or None
    )
    failed = Video.filter(status=VideoStatus.FAILED)
    if user.role != Role.ADMIN:
        failed = failed.filter(category__in=categories_of(user))
    elif category:
        failed = failed.filter(category=category)
    failed_videos = (
        await failed.order_by("-updated_at", "-created_at")
        .limit(FAILED_LIMIT)
        .prefetch_related("owner")
    )
    return render(
        request,
        "admin/queue.html",
        "queue",
        videos=[queue_video(v, user) for v in found.items],
        failed=[queue_video(v, user) for v in failed_videos],
        failed_limit=FAILED_LIMIT,
        statuses=PENDING_STATUSES,
        status_filter=status,
        category_filter=category,
        **page_count(found.page, found.page_size, found.total),
    )


@bp.get("/admin/users")
async def users(request: ClipSyncRequest) -> HTTPResponse:
    user = admin(request)
    number, size = page_numbers(request.args.get("page"), None, USERS_PAGE_SIZE)
    search = request.args.get("q", "").strip()
    found, total = await request.app.ctx.user_admin.list(user, number, size, search or None)
    return render(
        request,
        "admin/users.html",
        "users",
        users=[user_admin_json(u) for u in found],
        roles=ROLES,
        q=search,
        quota_defaults=request.app.ctx.settings.quotas,
        **page_count(number, size, total),
    )


def invite_state(invite: dict[str, Any], now: datetime) -> str:
    if invite["usedAt"]:
        return "used"
    return "expired" if datetime.fromisoformat(invite["expiresAt"]) <= now else "unused"


@bp.get("/admin/invites")
async def invites(request: ClipSyncRequest) -> HTTPResponse:
    user = admin(request)
    found = [invite_json(i) for i in await request.app.ctx.user_admin.list_invites(user)]
    used_by = {i["usedBy"] for i in found if i["usedBy"]}
    emails = dict(await User.filter(id__in=used_by).values_list("id", "email")) if used_by else {}
    now = datetime.now(UTC)
    return render(
        request,
        "admin/invites.html",
        "invites",
        invites=[
            i | {"state": invite_state(i, now), "usedByEmail": emails.get(i["usedBy"])}
            for i in found
        ],
        roles=ROLES,
        invite_hours=INVITE_HOURS,
        email_on=notifications.email_enabled(),
    )


@bp.get("/admin/audit")
async def audit(request: ClipSyncRequest) -> HTTPResponse:
    user = moderator(request)
    number, size = page_numbers(request.args.get("page"), None, AUDIT_PAGE_SIZE)
    video_id = request.args.get("video", "").strip() or None
    entries, total = await request.app.ctx.moderation.audit(user, number, size, video_id)
    items = [audit_json(e) for e in entries]
    targets = {i["targetUserId"] for i in items if i["targetUserId"]}
    emails = dict(await User.filter(id__in=targets).values_list("id", "email")) if targets else {}
    return render(
        request,
        "admin/audit.html",
        "audit",
        entries=[i | {"targetEmail": emails.get(i["targetUserId"])} for i in items],
        video_filter=video_id or "",
        **page_count(number, size, total),
    )
