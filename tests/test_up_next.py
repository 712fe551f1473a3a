"""Up next: worked out by the periodic job, read per person through the visibility rule.

Runs on SQLite and on PostgreSQL: who may see what is the database's answer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import watch_world
from clients import bearer
from huey.api import PeriodicTask
from watch_world import watched

from clipsync import hookimpl
from clipsync.models import SiteAlert, UpNext, Video, VideoStatus
from clipsync.services import up_next
from clipsync.services.up_next import UpNextItem

world = watch_world.world  # the fixture


async def next_of(world: dict[str, Any], viewer: str, video: str) -> list[tuple[str, str]]:
    """(title letter, reason) of each video of `viewer`'s Up next after `video`."""
    response = await world["client"].get(
        f"/api/videos/{world['videos'][video].id}/next", headers=bearer(world["tokens"][viewer])
    )
    assert response.status_code == 200, response.text
    return [(item["title"][-1], item["reason"]) for item in response.json()["items"]]


async def refresh(world: dict[str, Any]) -> int:
    app = world["app"]
    return await up_next.refresh(app.ctx.settings, app.ctx.analytics.backend)


async def test_co_watched_come_first_then_same_uploader_then_newest(world) -> None:
    app, users, v = world["app"], world["users"], world["videos"]
    await watched(app, users["sam"], v["A"], v["C"])
    await watched(app, users["ed"], v["A"], v["C"])
    await refresh(world)
    # Not R (only READY: not published), not A itself, not D (dealers').
    assert await next_of(world, "sam", "A") == [("C", "co_watched"), ("B", "same_uploader")]


async def test_up_next_never_offers_what_the_viewer_may_not_see(world) -> None:
    app, v = world["app"], world["videos"]
    # Only an admin sees both categories: their viewings pair A (staff) with D (dealers).
    admin = world["users"]["boss"]
    await watched(app, admin, v["A"], v["D"])
    await watched(app, admin, v["D"], v["B"])
    await refresh(world)
    stored = await UpNext.filter(video_id=v["A"].id).values_list("candidate_id", "reason")
    assert (v["D"].id, "co_watched") in [(uuid.UUID(str(c)), r) for c, r in stored]
    # Sam (staff) never gets D; Dee (dealers) never gets A, B or C after D.
    assert "D" not in [title for title, _ in await next_of(world, "sam", "A")]
    assert await next_of(world, "dee", "D") == []
    # And a video the viewer may not see has no Up next at all: 404, as if it did not exist.
    hidden = await world["client"].get(
        f"/api/videos/{v['A'].id}/next", headers=bearer(world["tokens"]["dee"])
    )
    assert hidden.status_code == 404
    missing = await world["client"].get(
        f"/api/videos/{uuid.uuid4()}/next", headers=bearer(world["tokens"]["dee"])
    )
    assert missing.status_code == 404
    assert hidden.json()["error"]["message"] == missing.json()["error"]["message"]


async def test_a_new_video_gets_same_uploader_then_newest_before_any_refresh(world) -> None:
    # Nothing worked out yet: Ann's other published videos (newest first), then the
    # newest others Sam may see (none left: D is dealers').
    assert await next_of(world, "sam", "A") == [("C", "same_uploader"), ("B", "same_uploader")]
    # Dan has no other video: the newest he may see (nothing but D itself).
    assert await next_of(world, "dan", "D") == []
    new = await Video.create(
        owner=world["users"]["sam"],
        title="Clip N",
        category="staff",
        status=VideoStatus.APPROVED,
        duration=50.0,
    )
    await refresh(world)
    # N is Sam's own and newest: offered after A as "newest" once Ann's run out.
    assert await next_of(world, "sam", "A") == [
        ("C", "same_uploader"),
        ("B", "same_uploader"),
        ("N", "newest"),
    ]
    assert new.title == "Clip N"


async def test_refresh_keeps_lists_of_published_videos_only_and_rewrites_what_changed(
    world,
) -> None:
    v = world["videos"]
    # A, B and C (D's list stays empty: Dan has no other video); R is not published.
    assert await refresh(world) == 3
    assert not await UpNext.filter(video_id=v["R"].id).exists()
    assert await refresh(world) == 0  # nothing changed
    await Video.filter(id=v["C"].id).update(status=VideoStatus.REJECTED)
    # A and B lose C; C's own list goes.
    assert await refresh(world) == 2
    assert not await UpNext.filter(video_id=v["C"].id).exists()
    assert await next_of(world, "sam", "A") == [("B", "same_uploader")]


async def test_refresh_runs_once_per_period_across_consumers(world) -> None:
    app = world["app"]
    settings, backend = app.ctx.settings, app.ctx.analytics.backend
    assert await up_next.refresh_if_due(settings, backend) is True
    # A second consumer (or the next minute's tick) finds it done for this period.
    assert await up_next.refresh_if_due(settings, backend) is False
    assert await UpNext.filter(video_id=world["videos"]["A"].id).exists()
    # Once a period has passed, one of them runs it again.
    await SiteAlert.filter(name=up_next.CLAIM).update(
        last_sent_at=datetime.now(UTC) - timedelta(minutes=31)
    )
    assert await up_next.refresh_if_due(settings, backend) is True


def test_the_refresh_is_a_periodic_huey_task_every_consumer_schedules(settings) -> None:
    from clipsync.jobs.queue import create_queue

    tasks = create_queue(settings)
    assert tasks.refresh_up_next.name == "refresh_up_next"
    assert issubclass(tasks.refresh_up_next.task_class, PeriodicTask)
    due = tasks.huey.read_periodic(datetime.now())
    assert "refresh_up_next" in [task.name for task in due]


async def test_hook_filter_up_next_may_reorder_remove_and_add_within_the_rule(world) -> None:
    app, v = world["app"], world["videos"]
    extra = await Video.create(
        owner=world["users"]["dan"],
        title="Clip E",
        category="staff",  # a staff video Sam may see, from another uploader
        status=VideoStatus.APPROVED,
        duration=10.0,
    )

    class Curator:
        @hookimpl
        def filter_up_next(self, user, video, videos):
            assert all(isinstance(item, UpNextItem) for item in videos)
            kept = [item for item in videos if item.video.title != "Clip C"]
            return [
                UpNextItem(extra, "curated"),
                UpNextItem(v["D"], "curated"),  # dealers': never shown to Sam
                UpNextItem(video, "curated"),  # the video itself: dropped
                *reversed(kept),
            ]

    app.ctx.plugins.pm.register(Curator(), name="curator")
    try:
        shown = await next_of(world, "sam", "A")
    finally:
        app.ctx.plugins.pm.unregister(name="curator")
    assert shown == [("E", "curated"), ("B", "same_uploader")]
