"""A small install for the Up next, history and home-row tests, on SQLite or PostgreSQL.

Ann uploads A, B, C (staff, approved) and R (staff, only READY); Dan uploads D
(dealers, approved). Sam is a staff user, Dee a dealer, Ed a staff editor, Boss an
administrator. A is the oldest video, D the newest. `watched` records viewings in the
app's analytics.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import analytics_sessions as sessions
import pytest
from clients import PASSWORD

from clipsync import db
from clipsync.models import Role, User, Video, VideoStatus

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]
_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request, start_app, make_settings, migrated_sqlite: Path) -> dict[str, Any]:
    """Ann uploads A, B, C (staff, approved) and R (staff, only READY); Dan uploads D
    (dealers). Sam is a staff user, Dee a dealer, Ed a staff editor."""
    tables: dict[str, Any] = {"category": CATEGORIES, "recommendations": {"list_size": 4}}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        tables["database"] = {"url": server.create_database(f"upnext_{next(_databases)}")}
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
        # An administrator, who sees every category (and lets the sign-in pages open).
        "boss": (Role.ADMIN, "dealers"),
    }
    users: dict[str, User] = {}
    tokens: dict[str, str] = {}
    for name, (role, category) in people.items():
        users[name] = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        tokens[name] = app.ctx.accounts.start_session(users[name]).token
    start = datetime.now(UTC) - timedelta(days=3)
    videos: dict[str, Video] = {}
    for number, (name, owner, status) in enumerate(
        [
            ("A", "ann", VideoStatus.APPROVED),
            ("B", "ann", VideoStatus.APPROVED),
            ("C", "ann", VideoStatus.APPROVED),
            ("R", "ann", VideoStatus.READY),
            ("D", "dan", VideoStatus.APPROVED),
        ]
    ):
        video = await Video.create(
            owner=users[owner],
            title=f"Clip {name}",
            category=users[owner].category,
            status=status,
            duration=100.0,
        )
        # Oldest first: A is the oldest, D the newest.
        await Video.filter(id=video.id).update(created_at=start + timedelta(hours=number))
        videos[name] = await Video.get(id=video.id)
    return {"app": app, "client": client, "users": users, "tokens": tokens, "videos": videos}


async def watched(app: Any, user: User, *videos: Video) -> None:
    """`user` watched each of `videos` for 60 s, yesterday."""
    clock = datetime.now(UTC) - timedelta(days=1)
    events = []
    for video in videos:
        clip = sessions.Video(str(video.id), video.category, video.duration or 100.0)
        events += sessions.Player(user.id, clip, clock).play().watch(30).watch(30).events
    backend = app.ctx.analytics.backend
    await backend.record(events)
    await backend.flush()
