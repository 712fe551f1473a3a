"""`/api/admin`: moderation (videos), accounts, invites and the audit log."""

from __future__ import annotations

import uuid
from typing import Any

from sanic import Blueprint
from sanic.response import HTTPResponse, empty, json

from clipsync.api.bodies import json_object
from clipsync.api.live_stream import Send, serve_live
from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, NotFound, ValidationFailed
from clipsync.events import Event
from clipsync.models import User, Video
from clipsync.services import two_factor
from clipsync.services.accounts import normalize_email
from clipsync.services.library import library_for
from clipsync.services.moderation import audit_json, require_moderator
from clipsync.services.user_admin import invite_json, user_admin_json
from clipsync.services.videos import can_moderate, filtered_json, page_numbers
from clipsync.sessions import require_user

bp = Blueprint("api_admin", url_prefix="/api/admin")
MAX_BULK = 100
BULK_ACTIONS = ("approve", "reject", "unpublish", "delete")
# The largest id of a row with an integer key (PostgreSQL `integer`); a larger number
# in a URL names nothing, and the database would fail on it rather than find nothing.
MAX_ROW_ID = 2**31 - 1


def row_id(value: int, message: str) -> int:
    """An id from the URL, or NotFound with `message` when no row can have it."""
    if not 1 <= value <= MAX_ROW_ID:
        raise NotFound(message)
    return value


async def pending_json(request: ClipSyncRequest, found: Any) -> dict[str, Any]:
    user = request.ctx.actor
    return {
        "items": [
            (await filtered_json(request.app.ctx.plugins, v, user))
            | {"uploaderEmail": v.owner.email}
            for v in found.items
        ],
        "total": found.total,
        "page": found.page,
        "pageSize": found.page_size,
    }


# --- videos ---------------------------------------------------------------------------


@bp.get("/videos/pending")
async def pending(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    page, size = page_numbers(request.args.get("page"), request.args.get("pageSize"))
    found = await request.app.ctx.moderation.pending(
        user, page, size, request.args.get("status"), request.args.get("category")
    )
    return json(await pending_json(request, found))


@bp.get("/videos/events")
async def queue_events(request: ClipSyncRequest) -> None:
    """Server-Sent Events for the moderation queue: `event: queue` when a video changes.

    Only news of videos the caller may moderate (`can_moderate`, in the category the
    video is in or was moved out of), and no job progress: the page asks for its
    queue again when told. Editors and admins only; it ends with the session.
    """

    async def on_news(user: User, event: Event, send: Send) -> None:
        if "progress" in event.data:
            return
        categories = {event.data.get("category"), event.data.get("oldCategory")} - {None}
        # The one visibility rule decides, on a stand-in that carries only the category.
        if any(can_moderate(user, Video(category=name)) for name in categories):
            news = {"videoId": event.data.get("videoId"), "event": event.name}
            await send("queue", news | {"status": event.data.get("status")})

    await serve_live(request, ("video.",), on_news, check=require_moderator)


@bp.post("/videos/<video_id:uuid>/approve")
async def approve(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    video = await request.app.ctx.moderation.approve(user, video_id)
    return json({"video": await filtered_json(request.app.ctx.plugins, video, user)})


@bp.post("/videos/<video_id:uuid>/reject")
async def reject(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    body = json_object(request)
    video = await request.app.ctx.moderation.reject(
        user, video_id, body.get("reason"), body.get("deleteFiles", False)
    )
    return json({"video": await filtered_json(request.app.ctx.plugins, video, user)})


@bp.post("/videos/<video_id:uuid>/requeue")
async def requeue(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    video = await request.app.ctx.moderation.requeue(user, video_id)
    return json({"video": await filtered_json(request.app.ctx.plugins, video, user)})


@bp.post("/videos/<video_id:uuid>/retranscode")
async def retranscode(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    video = await request.app.ctx.moderation.retranscode(user, video_id)
    return json({"video": await filtered_json(request.app.ctx.plugins, video, user)})


@bp.patch("/videos/<video_id:uuid>")
async def move(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    body = json_object(request)
    if set(body) != {"categoryRole"}:
        raise ValidationFailed("Send the video's new categoryRole.", field="categoryRole")
    video = await request.app.ctx.moderation.move(user, video_id, body["categoryRole"])
    return json({"video": await filtered_json(request.app.ctx.plugins, video, user)})


@bp.post("/videos/bulk")
async def bulk(request: ClipSyncRequest) -> HTTPResponse:
    """Approve, reject, unpublish or delete several videos; each succeeds or fails on its own."""
    user = require_user(request)
    body = json_object(request)
    action, ids = body.get("action"), body.get("videoIds")
    if action not in BULK_ACTIONS:
        raise ValidationFailed(f"action is one of {', '.join(BULK_ACTIONS)}.", field="action")
    if not isinstance(ids, list) or not ids or len(ids) > MAX_BULK:
        raise ValidationFailed(f"videoIds lists 1 to {MAX_BULK} videos.", field="videoIds")
    moderation = request.app.ctx.moderation
    library = library_for(request.app.ctx)
    results = []
    for video_id in ids:
        try:
            if action == "approve":
                video = await moderation.approve(user, video_id)
            elif action == "unpublish":
                video = await library.unpublish(user, video_id, body.get("reason", ""))
            elif action == "delete":
                await library.delete_moderated(user, video_id, body.get("reason", ""))
                results.append({"videoId": str(video_id), "ok": True, "status": "DELETED"})
                continue
            else:
                video = await moderation.reject(
                    user, video_id, body.get("reason"), body.get("deleteFiles", False)
                )
            results.append({"videoId": str(video_id), "ok": True, "status": str(video.status)})
        except ClipSyncError as error:
            results.append(
                {"videoId": str(video_id), "ok": False, "httpStatus": error.status}
                | error.to_json()
            )
    return json({"results": results})


@bp.get("/audit")
async def audit(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    page, size = page_numbers(request.args.get("page"), request.args.get("pageSize"), 50)
    entries, total = await request.app.ctx.moderation.audit(
        user, page, size, request.args.get("videoId")
    )
    return json(
        {"items": [audit_json(e) for e in entries], "total": total, "page": page, "pageSize": size}
    )


# --- accounts and invites ------------------------------------------------------------


@bp.get("/users")
async def users(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    page, size = page_numbers(request.args.get("page"), request.args.get("pageSize"), 50)
    found, total = await request.app.ctx.user_admin.list(user, page, size, request.args.get("q"))
    return json(
        {
            "items": [user_admin_json(u) for u in found],
            "total": total,
            "page": page,
            "pageSize": size,
        }
    )


@bp.patch("/users/<user_id:int>")
async def update_user(request: ClipSyncRequest, user_id: int) -> HTTPResponse:
    admin = require_user(request)
    user_id = row_id(user_id, "There is no such account.")
    updated = await request.app.ctx.user_admin.update(admin, user_id, json_object(request))
    return json({"user": user_admin_json(updated)})


@bp.delete("/users/<user_id:int>/mfa")
async def reset_two_factor(request: ClipSyncRequest, user_id: int) -> HTTPResponse:
    """Turn off someone's two-factor (audited); their sessions end."""
    admin = require_user(request)
    user_id = row_id(user_id, "There is no such account.")
    await two_factor.reset_by_admin(request.app.ctx.accounts, admin, user_id)
    return empty()


@bp.post("/invites")
async def create_invite(request: ClipSyncRequest) -> HTTPResponse:
    admin = require_user(request)
    body = json_object(request)
    email = body.get("email")
    invite, token = await request.app.ctx.user_admin.create_invite(
        admin, body.get("categoryRole"), body.get("role"), body.get("expiresInHours"), email
    )
    # From the configured address, never the request's Host header, which a client
    # chooses: a forged one would hand the invitee a link to someone else's site.
    link = f"{request.app.ctx.settings.server.base_url}/register?invite={token}"
    answer = {"invite": invite_json(invite), "token": token, "url": link}
    if email:
        answer["sentTo"] = normalize_email(email)
    return json(answer, status=201)


@bp.get("/invites")
async def invites(request: ClipSyncRequest) -> HTTPResponse:
    admin = require_user(request)
    return json(
        {"items": [invite_json(i) for i in await request.app.ctx.user_admin.list_invites(admin)]}
    )


@bp.delete("/invites/<invite_id:int>")
async def revoke_invite(request: ClipSyncRequest, invite_id: int) -> HTTPResponse:
    admin = require_user(request)
    invite_id = row_id(invite_id, "There is no such invite.")
    await request.app.ctx.user_admin.revoke_invite(admin, invite_id)
    return empty()
