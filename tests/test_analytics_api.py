"""The player's events endpoint and the figures endpoints, on the embedded backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from clients import PASSWORD, bearer

from clipsync.models import Role, Video, VideoStatus
from clipsync.services import analytics as analytics_service

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(category=CATEGORIES, analytics={"max_batch": 20})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    people = {}
    for name, role, category in [
        ("admin", Role.ADMIN, "staff"),
        ("editor", Role.EDITOR, "dealers"),
        ("uploader", Role.USER, "staff"),
        ("viewer", Role.USER, "staff"),
        ("other", Role.USER, "dealers"),
    ]:
        user = await app.ctx.accounts.create_user(
            f"{name}@example.org", PASSWORD, role=role, category=category
        )
        people[name] = (user, app.ctx.accounts.start_session(user).token)
    video = await Video.create(
        owner=people["uploader"][0],
        title="Onboarding",
        category="staff",
        status=VideoStatus.APPROVED,
        duration=100.0,
    )
    return app, client, people, video


def event(video: Video, kind: str, position: float, played: float = 0.0, **extra) -> dict:
    return {
        "type": kind,
        "videoId": str(video.id),
        "sessionId": "s1",
        "position": position,
        "played": played,
        **extra,
    }


async def test_hook_track_event_sees_accepted_events_set_by_the_server(site) -> None:
    app, client, people, video = site
    seen = []

    class Observer:
        from clipsync import hookimpl

        @hookimpl
        def track_event(self, event):
            seen.append(event)

    app.ctx.plugins.pm.register(Observer(), name="observer")
    try:
        response = await client.post(
            "/api/analytics/event",
            json=event(video, "PLAY", 0, userId=999, ts="2001-01-01"),
            headers=bearer(people["viewer"][1]),
        )
    finally:
        app.ctx.plugins.pm.unregister(name="observer")
    assert response.json() == {"accepted": 1, "rejected": []}
    (tracked,) = seen
    assert tracked.user_id == people["viewer"][0].id and tracked.category == "staff"
    assert tracked.ts.year > 2001 and tracked.duration == 100.0


async def test_a_batch_answers_what_was_accepted_and_why_each_refusal(site) -> None:
    _app, client, people, video = site
    hidden = await Video.create(
        owner=people["other"][0],
        title="Theirs",
        category="dealers",
        status=VideoStatus.APPROVED,
        duration=10.0,
    )
    batch = [
        event(video, "PLAY", 0),
        event(video, "DANCE", 1),
        event(video, "PROGRESS", 500, 5),
        event(hidden, "PLAY", 0),
        event(video, "SEEK", 10, seekFrom=10),
        "not an object",
        event(video, "PROGRESS", 5, 5),
    ]
    response = await client.post(
        "/api/analytics/event", json=batch, headers=bearer(people["viewer"][1])
    )
    body = response.json()
    assert response.status_code == 200 and body["accepted"] == 2
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "unknown_type"),
        (2, "out_of_range"),
        (3, "not_found"),
        (4, "out_of_range"),
        (5, "invalid"),
    ]


async def test_who_may_see_a_video_is_reused_briefly_then_asked_again(
    site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches reuse the visibility answer for SEEN_SECONDS, per user, then query again."""
    app, _, people, video = site
    seen = app.ctx.analytics.seen
    queries: list[int] = []
    real_query = seen._query

    async def counted(user, ids):
        queries.append(len(ids))
        return await real_query(user, ids)

    monkeypatch.setattr(seen, "_query", counted)
    clock = [1000.0]
    monkeypatch.setattr(analytics_service.time, "monotonic", lambda: clock[0])
    batch = [event(video, "PLAY", 0.0)]
    viewer, other = people["viewer"][0], people["other"][0]

    assert set(await seen.lookup(viewer, batch)) == {str(video.id)}
    assert set(await seen.lookup(viewer, batch)) == {str(video.id)}
    assert queries == [1], "the second batch should reuse the answer"
    assert await seen.lookup(other, batch) == {}  # another category: asked, and refused
    assert queries == [1, 1]

    # A rejection reaches the check once the answer is older than SEEN_SECONDS.
    await Video.filter(id=video.id).update(status=VideoStatus.REJECTED)
    assert set(await seen.lookup(viewer, batch)) == {str(video.id)}
    clock[0] += analytics_service.SEEN_SECONDS + 1
    assert await seen.lookup(viewer, batch) == {}
    assert queries == [1, 1, 1]


async def test_oversized_batches_and_all_refused_batches(site) -> None:
    _app, client, people, video = site
    headers = bearer(people["viewer"][1])
    big = await client.post(
        "/api/analytics/event", json=[event(video, "PLAY", 0)] * 21, headers=headers
    )
    assert big.status_code == 413
    bad = await client.post("/api/analytics/event", json=[event(video, "NOPE", 0)], headers=headers)
    assert bad.status_code == 422 and bad.json()["accepted"] == 0
    assert (
        await client.post("/api/analytics/event", json=[event(video, "PLAY", 0)])
    ).status_code == 401


async def test_a_beacon_may_carry_the_csrf_token_in_the_query(site) -> None:
    _app, client, people, video = site
    client.cookies.set("clipsync_session", people["viewer"][1])
    client.cookies.set("clipsync_csrf", "tok")
    refused = await client.post("/api/analytics/event", json=[event(video, "PLAY", 0)])
    assert refused.status_code == 403
    beacon = await client.post("/api/analytics/event?csrf=tok", json=[event(video, "PLAY", 0)])
    assert beacon.status_code == 200


async def watch(client, token: str, video: Video, session: str, seconds: int) -> None:
    """A viewer plays `seconds` of the video from the start, reporting every 5 s."""
    batch = [event(video, "PLAY", 0, sessionId=session)]
    batch += [event(video, "PROGRESS", t, 5, sessionId=session) for t in range(5, seconds + 1, 5)]
    batch.append(event(video, "PAUSE", seconds, sessionId=session))
    for start in range(0, len(batch), 20):  # the configured largest batch
        part = batch[start : start + 20]
        response = await client.post("/api/analytics/event", json=part, headers=bearer(token))
        assert response.json()["accepted"] == len(part)


async def test_figures_are_scoped_to_what_the_caller_may_moderate(site) -> None:
    app, client, people, video = site
    await watch(client, people["viewer"][1], video, "a", 40)
    await watch(client, people["uploader"][1], video, "b", 100)
    await app.ctx.backends.analytics.flush()

    admin = (
        await client.get("/api/admin/analytics/overview", headers=bearer(people["admin"][1]))
    ).json()
    assert admin["views"] == 2 and admin["uniqueViewers"] == 2 and admin["watchTime"] == 140
    assert admin["topVideos"][0]["videoId"] == str(video.id)
    uploader = (
        await client.get("/api/admin/analytics/overview", headers=bearer(people["uploader"][1]))
    ).json()
    assert uploader["views"] == 2  # their own video's figures
    other = (
        await client.get("/api/admin/analytics/overview", headers=bearer(people["other"][1]))
    ).json()
    assert other["views"] == 0
    editor = (
        await client.get("/api/admin/analytics/overview", headers=bearer(people["editor"][1]))
    ).json()
    assert editor["views"] == 0  # staff is not their category

    stats = await client.get(
        f"/api/admin/analytics/videos/{video.id}", headers=bearer(people["uploader"][1])
    )
    retention = {p["percent"]: p["share"] for p in stats.json()["retention"]}
    assert (
        retention[0] == 1.0
        and retention[40] == 1.0
        and retention[45] == 0.5
        and retention[100] == 0.5
    )
    hidden = await client.get(
        f"/api/admin/analytics/videos/{video.id}", headers=bearer(people["viewer"][1])
    )
    assert hidden.status_code == 404

    categories = await client.get(
        "/api/admin/analytics/categories", headers=bearer(people["admin"][1])
    )
    assert [(c["category"], c["views"]) for c in categories.json()["items"]] == [("staff", 2)]


async def test_csv_exports(site) -> None:
    app, client, people, video = site
    await watch(client, people["viewer"][1], video, "a", 20)
    await app.ctx.backends.analytics.flush()
    headers = bearer(people["admin"][1])
    overview = await client.get("/api/admin/analytics/overview?format=csv", headers=headers)
    assert overview.headers["content-type"].startswith("text/csv")
    assert overview.text.splitlines()[0] == "day,views,watchTime,activeUsers"
    retention = await client.get(
        f"/api/admin/analytics/videos/{video.id}?format=csv", headers=headers
    )
    assert (
        retention.text.splitlines()[0] == "percent,share" and len(retention.text.splitlines()) == 22
    )
    bad = await client.get("/api/admin/analytics/overview?from=2020-13-01", headers=headers)
    assert bad.status_code == 422


async def test_the_dashboard_pages_show_the_figures(site) -> None:
    app, client, people, video = site
    await watch(client, people["viewer"][1], video, "a", 30)
    await app.ctx.backends.analytics.flush()
    page = await client.get("/analytics", headers=bearer(people["admin"][1]))
    assert page.status_code == 200
    assert 'data-figure="views">1<' in page.text and "Onboarding" in page.text
    detail = await client.get(f"/analytics/videos/{video.id}", headers=bearer(people["admin"][1]))
    assert 'id="chart-retention"' in detail.text and 'data-percent="30"' in detail.text


async def test_a_video_id_that_is_not_text_is_refused_on_its_own(site) -> None:
    # Found by schemathesis: an object as videoId could not be looked up (500).
    _app, client, people, video = site
    batch = [{**event(video, "PLAY", 0), "videoId": {}}, event(video, "PLAY", 0)]
    response = await client.post(
        "/api/analytics/event", json=batch, headers=bearer(people["viewer"][1])
    )
    body = response.json()
    assert response.status_code == 200, response.text
    assert body["accepted"] == 1
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(0, "invalid")]
