"""A small library for the tags, browse, playlist and search tests, on SQLite and
PostgreSQL.

Ann (staff) uploads "Demo of the harbour" (approved, tagged Demo and Harbour),
"Quarterly numbers" (approved, tagged Finance), "Harbour draft" (only READY, tagged
Harbour) and "zebra crossing" (approved); Dan (dealers) uploads "Dealer demo"
(approved, tagged demo). Sam is a staff user, Dee a dealer, Ed a staff editor, Boss an
administrator. Videos are made oldest first in that order.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clients import PASSWORD, bearer

from clipsync import db
from clipsync.models import Role, User, Video, VideoStatus
from clipsync.services import tags

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]
VIDEOS = [
    ("demo", "ann", "Demo of the harbour", VideoStatus.APPROVED, ["Demo", "Harbour"]),
    ("numbers", "ann", "Quarterly numbers", VideoStatus.APPROVED, ["Finance"]),
    ("draft", "ann", "Harbour draft", VideoStatus.READY, ["Harbour"]),
    ("zebra", "ann", "zebra crossing", VideoStatus.APPROVED, []),
    ("dealer", "dan", "Dealer demo", VideoStatus.APPROVED, ["demo"]),
]
_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request, start_app, make_settings, migrated_sqlite: Path) -> dict[str, Any]:
    tables: dict[str, Any] = {"category": CATEGORIES}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"organise_{next(_databases)}")}
    settings = make_settings(**tables)
    if request.param == "postgres":
        await db.migrate(settings)
    else:
        settings.data_dir.mkdir(parents=True)
        (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    people = {
        "ann": (Role.USER, "staff"),
        "sam": (Role.USER, "staff"),
        "dan": (Role.USER, "dealers"),
        "dee": (Role.USER, "dealers"),
        "ed": (Role.EDITOR, "staff"),
        "boss": (Role.ADMIN, "dealers"),
    }
    users: dict[str, User] = {}
    headers: dict[str, dict[str, str]] = {}
    for name, (role, category) in people.items():
        users[name] = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        headers[name] = bearer(app.ctx.accounts.start_session(users[name]).token)
    start = datetime.now(UTC) - timedelta(days=3)
    videos: dict[str, Video] = {}
    for number, (key, owner, title, status, labels) in enumerate(VIDEOS):
        video = await Video.create(
            owner=users[owner],
            title=title,
            category=users[owner].category,
            status=status,
            duration=60.0,
        )
        await Video.filter(id=video.id).update(created_at=start + timedelta(hours=number))
        await tags.replace(video, labels)
        videos[key] = await Video.get(id=video.id)
    return {
        "app": app,
        "client": client,
        "users": users,
        "headers": headers,
        "videos": videos,
        "database": request.param,
    }
