"""`/api/analytics/event` (the player's events) and `/api/admin/analytics/…` (figures).

Every figures endpoint also answers CSV with `?format=csv`, for spreadsheets.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sanic import Blueprint
from sanic.response import HTTPResponse, json, text

from clipsync.context import ClipSyncRequest
from clipsync.errors import BadRequest
from clipsync.sessions import require_user

bp = Blueprint("api_analytics")


def camel(value: Any) -> Any:
    """The figures' snake_case keys as the API's camelCase (`watch_time` → `watchTime`)."""
    if isinstance(value, dict):
        return {
            key.split("_")[0] + "".join(part.title() for part in key.split("_")[1:]): camel(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [camel(item) for item in value]
    return value


def wants_csv(request: ClipSyncRequest) -> bool:
    return request.args.get("format") == "csv"


def csv_response(rows: Iterable[Mapping[str, Any]], filename: str) -> HTTPResponse:
    rows = list(rows)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return text(
        out.getvalue(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.post("/api/analytics/event")
async def record_events(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    if not request.body:
        raise BadRequest("Send one event or a list of events as JSON.")
    try:
        payload = request.load_json()
    except Exception:
        raise BadRequest("The request body is not valid JSON.") from None
    result = await request.app.ctx.analytics.ingest(user, payload)
    status = 200 if result.accepted or not result.rejected else 422
    return json({"accepted": result.accepted, "rejected": result.rejected}, status=status)


@bp.get("/api/admin/analytics/overview")
async def overview(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    service = request.app.ctx.analytics
    period = service.period(request.args.get("from"), request.args.get("to"))
    figures = camel((await service.overview(user, period)).to_json())
    if wants_csv(request):
        return csv_response(figures["timeseries"], f"overview-{period.start}-{period.end}.csv")
    return json({"from": str(period.start), "to": str(period.end), **figures})


@bp.get("/api/admin/analytics/videos/<video_id:uuid>")
async def video(request: ClipSyncRequest, video_id: uuid.UUID) -> HTTPResponse:
    user = require_user(request)
    service = request.app.ctx.analytics
    period = service.period(request.args.get("from"), request.args.get("to"))
    row, stats = await service.video(user, video_id, period)
    figures = camel(stats.to_json())
    if wants_csv(request):
        return csv_response(figures["retention"], f"video-{row.id}-retention.csv")
    return json({"from": str(period.start), "to": str(period.end), "title": row.title, **figures})


@bp.get("/api/admin/analytics/categories")
async def categories(request: ClipSyncRequest) -> HTTPResponse:
    user = require_user(request)
    service = request.app.ctx.analytics
    period = service.period(request.args.get("from"), request.args.get("to"))
    rows = [camel(c.to_json()) for c in await service.categories(user, period)]
    if wants_csv(request):
        return csv_response(rows, f"categories-{period.start}-{period.end}.csv")
    return json({"from": str(period.start), "to": str(period.end), "items": rows})
