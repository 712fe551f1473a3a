"""`/admin/library`: every video a moderator may moderate, in any status, with filters,
sort and pages; unpublishing and deleting one (deleting after a confirmation page);
transcoding the ticked ones again (after a ladder change, say: `moderation.retranscode`,
audited, as `POST /api/admin/videos/<id>/retranscode` does).

Plain forms throughout, so the page works without JavaScript; after an action the
form's `back` field returns the moderator to the list as they had filtered it.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from sanic import Blueprint
from sanic.response import HTTPResponse, redirect

from clipsync.context import ClipSyncRequest
from clipsync.errors import ClipSyncError, Conflict, ValidationFailed
from clipsync.models import VideoStatus
from clipsync.services.library import SORTS, LibraryFilters, library_for
from clipsync.services.videos import page_numbers
from clipsync.web.admin_pages import moderator, page_count, queue_video, render

bp = Blueprint("library_pages")

LIBRARY_PAGE = "/admin/library"
LIBRARY_PAGE_SIZE = 50
FILTERS = ("status", "category", "uploader", "q", "sort")
STATUSES = tuple(str(s) for s in VideoStatus)
# What the list says after an action (`?done=`): fixed words, never text from a link.
NOTICES = {
    "unpublished": "The video was unpublished: its category no longer sees it.",
    "deleted": "The video was deleted, with its files.",
    "unchanged": "That video is no longer approved, so nothing was unpublished.",
    "retranscoding": "Transcoding again: the videos are converted anew from their files.",
    "retranscoding_partly": (
        "Some videos are transcoding again; the others could not be (being converted "
        "already, or their uploaded file was deleted)."
    ),
    "not_retranscoded": (
        "Nothing is transcoded again: choose videos that are converted or failed and "
        "still have their uploaded file."
    ),
}
# Most videos one bulk form may send (as many as a page lists).
MAX_BULK = 50


def back_to(value: Any) -> str:
    """Where to return after an action: the library with its filters, never elsewhere."""
    text = value if isinstance(value, str) else ""
    if text == LIBRARY_PAGE or text.startswith(LIBRARY_PAGE + "?"):
        return text
    return LIBRARY_PAGE


def with_notice(back: str, notice: str) -> str:
    """`back` with `done=<notice>` in place of any earlier one."""
    path, _, query = back.partition("?")
    kept = [part for part in query.split("&") if part and not part.startswith("done=")]
    return f"{path}?{'&'.join([*kept, urlencode({'done': notice})])}"


@bp.get(LIBRARY_PAGE)
async def library(request: ClipSyncRequest) -> HTTPResponse:
    user = moderator(request)
    number, size = page_numbers(request.args.get("page"), None, LIBRARY_PAGE_SIZE)
    chosen = {name: request.args.get(name, "").strip() for name in FILTERS}
    chosen["sort"] = chosen["sort"] or "newest"
    status = 200
    error = ""
    try:
        found = await library_for(request.app.ctx).listing(
            user, LibraryFilters(**chosen), number, size
        )
    except ValidationFailed as refused:
        # A hand-edited link: say what was wrong and show the whole library.
        status, error = refused.status, refused.message
        chosen = dict.fromkeys(FILTERS, "") | {"sort": "newest"}
        found = await library_for(request.app.ctx).listing(user, LibraryFilters(), number, size)
    query = urlencode({k: v for k, v in chosen.items() if v} | {"page": number})
    return render(
        request,
        "admin/library.html",
        "library",
        status=status,
        error=error,
        notice=NOTICES.get(request.args.get("done", ""), ""),
        videos=[queue_video(v, user) for v in found.items],
        filters=chosen,
        statuses=STATUSES,
        sorts=tuple(SORTS),
        back=f"{LIBRARY_PAGE}?{query}",
        **page_count(found.page, found.page_size, found.total),
    )


@bp.post(f"{LIBRARY_PAGE}/<video_id:uuid>/unpublish")
async def unpublish(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = moderator(request)
    form = request.form or {}
    back = back_to(form.get("back"))
    try:
        await library_for(request.app.ctx).unpublish(user, video_id, form.get("reason") or "")
    except Conflict:
        return redirect(with_notice(back, "unchanged"), status=303)
    return redirect(with_notice(back, "unpublished"), status=303)


@bp.post(f"{LIBRARY_PAGE}/retranscode")
async def retranscode(request: ClipSyncRequest) -> HTTPResponse:
    """Transcode the videos ticked in the list (`video`, one field each) again, each on
    its own: one that cannot be (converting, its file gone) does not stop the others."""
    user = moderator(request)
    form = request.form or {}
    back = back_to(form.get("back"))
    chosen = list(dict.fromkeys(form.getlist("video") or []))[:MAX_BULK]
    done = 0
    for video_id in chosen:
        try:
            await request.app.ctx.moderation.retranscode(user, video_id)
            done += 1
        except ClipSyncError:
            continue
    if done == len(chosen) and done:
        notice = "retranscoding"
    else:
        notice = "retranscoding_partly" if done else "not_retranscoded"
    return redirect(with_notice(back, notice), status=303)


@bp.get(f"{LIBRARY_PAGE}/<video_id:uuid>/delete")
async def confirm_delete(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    """The confirmation step: nothing is deleted until this page's form is sent."""
    user = moderator(request)
    video = await library_for(request.app.ctx).moderated(user, video_id)
    back = back_to(request.args.get("back"))
    action = f"{LIBRARY_PAGE}/{video.id}/delete?{urlencode({'back': back})}"
    return render(
        request,
        "delete_video.html",
        "library",
        video=queue_video(await video_with_owner(video), user),
        action=action,
        cancel=back,
        ask_reason=True,
    )


async def video_with_owner(video: Any) -> Any:
    await video.fetch_related("owner")
    return video


@bp.post(f"{LIBRARY_PAGE}/<video_id:uuid>/delete")
async def delete(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = moderator(request)
    form = request.form or {}
    back = back_to(request.args.get("back"))
    await library_for(request.app.ctx).delete_moderated(user, video_id, form.get("reason") or "")
    return redirect(with_notice(back, "deleted"), status=303)
