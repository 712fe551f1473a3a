"""Leases on videos, consumer liveness and the reaper's requeue (issue 12, "jobs recover").

A lease belongs to a consumer that can be seen to be alive: a lease whose consumer
is seen dead on this host is free at once, one not renewed for
`[queue] lease_expiry_seconds` is free too, and a retry in the consumer that took a
lease takes it back. The end-to-end versions, with real processes killed, are in
tests/faults/.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import register, upload_and_register
from clips import make_clip

from clipsync.context import ClipSyncApp
from clipsync.jobs.liveness import CONSUMER_PREFIX, Presence, new_consumer_id
from clipsync.models import Video, VideoStatus
from clipsync.services import reaper, transcoding
from clipsync.services.transcoding import JobContext, RunningJob, claim, release, renew_leases

LONG_AGO = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
async def app_client(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(transcoder={"ladder": [{"height": 144, "bitrate": 150}]})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    return await start_app(settings)


def consumer(app: ClipSyncApp) -> JobContext:
    """The job context of one more consumer process, judging liveness as a real one does."""
    ctx = app.ctx
    return JobContext(ctx.settings, ctx.plugins, ctx.backends, liveness=ctx.jobs.liveness)


async def processing(client: httpx.AsyncClient, email: str = "a@example.org") -> str:
    token = (await register(client, email))["token"]
    response = await upload_and_register(client, token, make_clip("landscape"))
    assert response.status_code == 201, response.text
    return response.json()["video"]["id"]


def leave_dead_consumer(app: ClipSyncApp, consumer_id: str) -> None:
    """What a SIGKILLed consumer leaves: its lock file (nobody holds it), its last beat."""
    liveness = app.ctx.jobs.liveness
    liveness.folder.mkdir(parents=True, exist_ok=True)
    liveness.lock_path(consumer_id).write_text("{}")
    beat = {"id": consumer_id, "host": "here", "pid": 1, "started": 0, "beat": time.time()}
    app.ctx.jobs.huey.storage.put_data(CONSUMER_PREFIX + consumer_id, json.dumps(beat).encode())


async def test_a_retry_takes_back_its_own_lease_and_no_other_live_job_can(app_client) -> None:
    app, client = app_client
    video_id = await processing(client)
    mine, other = consumer(app), consumer(app)
    first = await claim(mine, video_id)
    assert first is not None and first.worker_lease.startswith(mine.consumer_id + ":")
    # The attempt ended without writing its end (the database was down): the lease stays.
    release(mine, video_id, first.worker_lease)
    assert await claim(other, video_id) is None  # renewed lately, by a live consumer
    again = await claim(mine, video_id)
    assert again is not None and again.attempts == 2


async def test_a_lease_whose_consumer_is_seen_dead_here_is_free_at_once(app_client) -> None:
    app, client = app_client
    video_id = await processing(client)
    dead, live = new_consumer_id(), consumer(app)
    presence = Presence(app.ctx.jobs.liveness, new_consumer_id())
    presence.start()
    try:
        now = datetime.now(UTC)
        await Video.filter(id=video_id).update(worker_lease=f"{presence.id}:1", heartbeat_at=now)
        assert await claim(live, video_id) is None  # its consumer holds its lock
        leave_dead_consumer(app, dead)
        await Video.filter(id=video_id).update(worker_lease=f"{dead}:1", heartbeat_at=now)
        assert await claim(live, video_id) is not None
    finally:
        presence.stop()


async def test_claim_marks_failed_with_the_reason_once_every_attempt_is_used(app_client) -> None:
    app, client = app_client
    video_id = await processing(client)
    attempts = app.ctx.settings.transcoder.max_attempts
    await Video.filter(id=video_id).update(
        worker_lease="gone:1", heartbeat_at=LONG_AGO, attempts=attempts
    )
    assert await claim(consumer(app), video_id) is None
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.FAILED and video.worker_lease is None
    assert f"tried {attempts} times" in video.error


async def test_the_reaper_requeues_a_dead_consumers_video_at_once_and_only_once(
    app_client,
) -> None:
    app, client = app_client
    video_id = await processing(client)
    dead = new_consumer_id()
    leave_dead_consumer(app, dead)
    lease = f"{dead}:1"
    await Video.filter(id=video_id).update(worker_lease=lease, heartbeat_at=datetime.now(UTC))
    queued: list[object] = []
    first, second = consumer(app), consumer(app)
    assert [str(v) for v in await reaper.requeue_stalled(first, queued.append, set)] == [video_id]
    assert await reaper.requeue_stalled(second, queued.append, set) == []
    assert [str(v) for v in queued] == [video_id]
    video = await Video.get(id=video_id)
    assert video.status == VideoStatus.PROCESSING and video.worker_lease is None


async def test_the_reaper_queues_a_processing_video_that_no_job_was_queued_for(
    app_client,
) -> None:
    """The row is the outbox: registered, then the queue (or the process) failed."""
    app, client = app_client
    video_id = await processing(client)
    expiry = app.ctx.settings.queue.lease_expiry_seconds
    queued: list[object] = []
    assert await reaper.requeue_stalled(consumer(app), queued.append, set) == []  # just queued
    await Video.filter(id=video_id).update(
        updated_at=datetime.now(UTC) - timedelta(seconds=expiry + 5)
    )
    assert await reaper.requeue_stalled(consumer(app), queued.append, {video_id}.copy) == []
    assert [str(v) for v in await reaper.requeue_stalled(consumer(app), queued.append, set)] == [
        video_id
    ]


async def test_a_job_whose_lease_was_taken_is_stopped(app_client) -> None:
    app, client = app_client
    video_id = await processing(client)
    ctx = consumer(app)
    job = asyncio.create_task(asyncio.sleep(60))
    video = await claim(ctx, video_id)
    assert video is not None
    ctx.running[video_id].task = job
    await renew_leases(ctx)
    assert not job.cancelled()
    await Video.filter(id=video_id).update(worker_lease="someone-else:1")
    await renew_leases(ctx)
    await asyncio.sleep(0)
    assert job.cancelled() and video_id not in ctx.running


async def test_healthz_fails_once_the_consumer_it_saw_is_dead(app_client) -> None:
    app, client = app_client
    liveness = app.ctx.jobs.liveness
    presence = Presence(liveness, new_consumer_id())
    presence.start()
    try:
        answer = await client.get("/healthz")
        assert answer.status_code == 200, answer.text
    finally:
        presence.stop()
    leave_dead_consumer(app, new_consumer_id())
    answer = await client.get("/healthz")
    assert answer.status_code == 503
    liveness.forget_dead()
    assert (await client.get("/healthz")).status_code == 200  # none seen, none expected
    liveness.expected = True  # served by `clipsync serve`
    assert (await client.get("/healthz")).status_code == 503


class HeartbeatDuringClaim(dict):
    """`ctx.running` that starts the consumer's heartbeat the moment a job is
    registered; with `ClaimAfterHeartbeat` the heartbeat runs whole before the claim's
    UPDATE: what a loaded PostgreSQL made happen in CI, where the heartbeat took the
    claiming job for one whose lease was taken and stopped it."""

    def __init__(self, ctx: JobContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.heartbeats: list[asyncio.Future[None]] = []

    def __setitem__(self, key: object, job: object) -> None:
        super().__setitem__(key, job)
        self.heartbeats.append(asyncio.ensure_future(renew_leases(self.ctx)))


class ClaimAfterHeartbeat:
    """`Video` for services/transcoding.py, whose claiming UPDATE (the one that counts
    an attempt) waits for the heartbeats `running` started."""

    def __init__(self, running: HeartbeatDuringClaim) -> None:
        self.running = running

    def __getattr__(self, name: str) -> Any:
        return getattr(Video, name)

    def filter(self, *args: Any, **kwargs: Any) -> Any:
        running = self.running
        query = Video.filter(*args, **kwargs)

        class Query:
            def __getattr__(self, name: str) -> Any:
                return getattr(query, name)

            async def update(self, **fields: Any) -> int:
                if "attempts" in fields:
                    await asyncio.gather(*running.heartbeats)
                return await query.update(**fields)

        return Query()


async def test_a_heartbeat_during_the_claim_does_not_stop_the_claiming_job(
    app_client, monkeypatch
) -> None:
    app, client = app_client
    video_id = await processing(client)
    ctx = consumer(app)
    ctx.running = running = HeartbeatDuringClaim(ctx)  # type: ignore[assignment]
    monkeypatch.setattr(transcoding, "Video", ClaimAfterHeartbeat(running))
    claiming = asyncio.create_task(claim(ctx, video_id))
    await asyncio.wait({claiming})
    assert len(running.heartbeats) == 1 and running.heartbeats[0].done()
    assert not claiming.cancelled(), "the heartbeat stopped the job it was claiming for"
    video = claiming.result()
    assert video is not None
    job = ctx.running[video_id]
    assert not job.claiming and video.worker_lease == job.lease
    monkeypatch.undo()
    await renew_leases(ctx)  # once claimed, the heartbeat renews it
    assert video_id in ctx.running


async def test_the_heartbeat_leaves_a_job_still_claiming_alone(app_client) -> None:
    app, client = app_client
    video_id = await processing(client)
    ctx = consumer(app)
    job = asyncio.create_task(asyncio.sleep(60))
    # Registered, its UPDATE not answered: the row holds no lease of it yet.
    ctx.running[video_id] = RunningJob("mine:1", job, claiming=True)
    await renew_leases(ctx)
    await asyncio.sleep(0)
    assert not job.cancelled() and video_id in ctx.running
    ctx.running[video_id].claiming = False  # claimed, but the row says otherwise
    await renew_leases(ctx)
    await asyncio.sleep(0)
    assert job.cancelled() and video_id not in ctx.running
