"""Finding 8: watch figures follow the video, as it is now, not the category it had.

An editor's figures cover the videos they may moderate when they read them. After a
video moves out of their category, its id, views and title are gone from their
overview, their category table, the dashboard page and the video's own figures; the
editor of the category it moved to sees them instead. On both analytics backends:
the embedded SQLite one and a real ClickHouse server.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from clients import PASSWORD, bearer
from test_analytics_api import watch

from clipsync.models import Role, Video, VideoStatus

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]
TITLE = "Dealer price list, spring"


@pytest.fixture(params=["sqlite", "clickhouse"])
async def site(request: pytest.FixtureRequest, start_app, make_settings, migrated_sqlite: Path):
    tables: dict[str, Any] = {"category": CATEGORIES}
    if request.param == "clickhouse":
        server = request.getfixturevalue("clickhouse_server")
        tables["analytics"] = {"backend": "clickhouse"}
        tables["plugins"] = {
            "analytics_clickhouse": {
                "host": server.host,
                "port": server.port,
                "database": f"scope_{uuid.uuid4().hex[:12]}",
            }
        }
    settings = make_settings(**tables)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    assert app.ctx.backends.analytics.name == request.param
    people: dict[str, dict[str, str]] = {}
    users = {}
    for name, role, category in [
        ("admin", Role.ADMIN, "staff"),
        ("dealers_editor", Role.EDITOR, "dealers"),
        ("staff_editor", Role.EDITOR, "staff"),
        ("uploader", Role.USER, "dealers"),
        ("viewer", Role.USER, "dealers"),
    ]:
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        session = app.ctx.accounts.start_session(user)
        users[name], people[name] = user, bearer(session.token)
    video = await Video.create(
        owner=users["uploader"],
        title=TITLE,
        category="dealers",
        status=VideoStatus.APPROVED,
        duration=100.0,
    )
    viewer = app.ctx.accounts.start_session(users["viewer"]).token
    await watch(client, viewer, video, "s1", 40)
    await app.ctx.backends.analytics.flush()
    return app, client, people, video


async def figures(client, headers: dict[str, str], video: Video) -> dict[str, Any]:
    """What one person reads about `video`: overview, categories, dashboard, its own page."""
    overview = await client.get("/api/admin/analytics/overview", headers=headers)
    categories = await client.get("/api/admin/analytics/categories", headers=headers)
    page = await client.get("/analytics", headers=headers)
    stats = await client.get(f"/api/admin/analytics/videos/{video.id}", headers=headers)
    assert overview.status_code == categories.status_code == page.status_code == 200
    return {
        "views": overview.json()["views"],
        "events": overview.json()["totalEvents"],
        "top": [row["videoId"] for row in overview.json()["topVideos"]],
        "categories": [row["views"] for row in categories.json()["items"]],
        "on_page": TITLE in page.text or str(video.id) in page.text,
        "stats": stats.status_code,
    }


SEEN = {"views": 1, "top": ["id"], "categories": [1], "on_page": True, "stats": 200}
UNSEEN = {"views": 0, "events": 0, "top": [], "categories": [], "on_page": False, "stats": 404}


def expected(shape: dict[str, Any], video: Video) -> dict[str, Any]:
    return {k: ([str(video.id)] if v == ["id"] else v) for k, v in shape.items()}


async def test_a_video_moved_out_of_an_editors_category_leaves_their_figures(site) -> None:
    _app, client, people, video = site
    before = await figures(client, people["dealers_editor"], video)
    assert before.pop("events") > 0
    assert before == expected(SEEN, video)
    assert await figures(client, people["staff_editor"], video) == expected(UNSEEN, video)

    moved = await client.patch(
        f"/api/admin/videos/{video.id}", json={"categoryRole": "staff"}, headers=people["admin"]
    )
    assert moved.status_code == 200, moved.text

    # Its past figures leave with it: no id, views or title for the old category's editor.
    assert await figures(client, people["dealers_editor"], video) == expected(UNSEEN, video)
    # ... and come with it to the new category's editor.
    after = await figures(client, people["staff_editor"], video)
    assert after.pop("events") > 0
    assert after == expected(SEEN, video)


async def test_the_uploader_keeps_the_figures_of_their_own_video_wherever_it_is(site) -> None:
    _app, client, people, video = site
    moved = await client.patch(
        f"/api/admin/videos/{video.id}", json={"categoryRole": "staff"}, headers=people["admin"]
    )
    assert moved.status_code == 200, moved.text
    mine = await figures(client, people["uploader"], video)
    assert mine.pop("events") > 0
    assert mine == expected(SEEN, video)
