"""The analytics dashboard: `/analytics` (overview) and `/analytics/videos/<id>`.

Everyone may open it; the figures are scoped like the API's, to the videos the
reader uploaded or may moderate now (`services.videos.managed_by`). The
figures are rendered as tables on the server and drawn as charts by
`static/js/dashboard.js` from the same data. Categories are shown by their labels,
as everywhere people read them; the CSV and the JSON API keep the names.
"""

from __future__ import annotations

import uuid

from sanic import Blueprint
from sanic.response import HTTPResponse

from clipsync.api.analytics import camel
from clipsync.context import ClipSyncRequest
from clipsync.models import Video
from clipsync.sessions import require_user

bp = Blueprint("analytics_pages")


def category_label(request: ClipSyncRequest, name: str) -> str:
    """How people know a category: its label from the settings (the name of one that is
    no longer configured)."""
    category = request.app.ctx.settings.category(name)
    return category.label if category else name


@bp.get("/analytics")
async def overview(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    service = request.app.ctx.analytics
    period = service.period(request.args.get("from"), request.args.get("to"))
    figures = camel((await service.overview(user, period)).to_json())
    categories = [camel(c.to_json()) for c in await service.categories(user, period)]
    for row in categories:
        row["label"] = category_label(request, row["category"])
    ids = [row["videoId"] for row in figures["topVideos"]]
    titles = {str(v.id): v.title for v in await Video.filter(id__in=ids)} if ids else {}
    for row in figures["topVideos"]:
        row["title"] = titles.get(row["videoId"], "(deleted video)")
    return request.app.ctx.templates.render(
        request, "analytics/overview.html", period=period, figures=figures, categories=categories
    )


@bp.get("/analytics/videos/<video_id:uuid>")
async def video(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    service = request.app.ctx.analytics
    period = service.period(request.args.get("from"), request.args.get("to"))
    row, stats = await service.video(user, video_id, period)
    return request.app.ctx.templates.render(
        request, "analytics/video.html", period=period, video=row, figures=camel(stats.to_json())
    )
