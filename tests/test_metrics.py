"""`GET /metrics`: off by default, who may scrape, and what one process counts.

The app runs in this test process, so prometheus_client runs in its one-process mode
and counts accumulate over the tests: each test compares values before and after.
tests/test_metrics_live.py checks the multiprocess sum on a real `clipsync serve`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from clients import PASSWORD, register, upload_and_register
from prometheus_client.parser import text_string_to_metric_families

LOOPBACK = "127.0.0.1"
ELSEWHERE = "203.0.113.7"
TOKEN = "scrape-me-0123456789"
DASHBOARD = Path(__file__).parent.parent / "deploy" / "grafana" / "clipsync.json"


def with_database(settings, migrated_sqlite: Path):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    return settings


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, parsed by prometheus_client's own parser."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def client_from(app, address: str) -> httpx.AsyncClient:
    """Another client of the same app, connecting from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://clipsync.test")


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_metrics_are_off_by_default(start_app, settings) -> None:
    _, client = await start_app(settings, client_address=LOOPBACK)
    assert (await client.get("/metrics")).status_code == 404


async def test_without_a_token_only_loopback_clients_that_came_through_no_proxy_may_scrape(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = with_database(make_settings(metrics={"enabled": True}), migrated_sqlite)
    app, local = await start_app(settings, client_address=LOOPBACK)
    remote = client_from(app, ELSEWHERE)
    text = await scrape(local)
    assert "clipsync_http_requests_total" in text
    refused = await remote.get("/metrics")
    assert refused.status_code == 403
    assert "[metrics] token" in refused.text
    # A reverse proxy on this machine connects from loopback for every visitor.
    proxied = await local.get("/metrics", headers={"X-Forwarded-For": ELSEWHERE})
    assert proxied.status_code == 403


async def test_with_a_token_every_scrape_must_send_it_as_a_bearer_token(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = with_database(
        make_settings(metrics={"enabled": True, "token": TOKEN}), migrated_sqlite
    )
    app, local = await start_app(settings, client_address=LOOPBACK)
    remote = client_from(app, ELSEWHERE)
    await scrape(remote, Authorization=f"Bearer {TOKEN}")
    for client in (local, remote):
        missing = await client.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401
    # The token is never echoed in what a refused scraper sees.
    assert TOKEN not in (await remote.get("/metrics")).text


async def test_requests_are_counted_by_route_pattern_never_by_raw_path(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = with_database(make_settings(metrics={"enabled": True}), migrated_sqlite)
    _, client = await start_app(settings, client_address=LOOPBACK)
    route = "/api/videos/<video_id:uuid>"
    before = await scrape(client)
    for video_id in (
        "0b0c0d0e-0000-4000-8000-000000000001",
        "0b0c0d0e-0000-4000-8000-000000000002",
    ):
        await client.get(f"/api/videos/{video_id}")
    await client.get("/api/no/such/address")
    after = await scrape(client)
    counted = "clipsync_http_requests_total"
    assert (
        value(after, counted, method="GET", route=route, status="401")
        - value(before, counted, method="GET", route=route, status="401")
        == 2
    )
    assert value(after, counted, method="GET", route="unmatched", status="404") > value(
        before, counted, method="GET", route="unmatched", status="404"
    )
    assert "0b0c0d0e" not in after and "/api/no/such" not in after
    timed = "clipsync_http_request_duration_seconds_count"
    assert (
        value(after, timed, method="GET", route=route)
        - value(before, timed, method="GET", route=route)
        == 2
    )


async def test_sign_in_failures_and_lockouts_are_counted(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = with_database(
        make_settings(metrics={"enabled": True}, auth={"max_failed_logins": 2}), migrated_sqlite
    )
    _, client = await start_app(settings, client_address=LOOPBACK)
    await register(client, "metrics-sign-in@example.org")
    before = await scrape(client)
    for _ in range(3):
        answer = await client.post(
            "/api/auth/login",
            json={"email": "metrics-sign-in@example.org", "password": PASSWORD + "!"},
        )
        assert answer.status_code in (401, 429)
    after = await scrape(client)
    failures = "clipsync_sign_in_failures_total"
    wrong = value(after, failures, reason="wrong_credentials") - value(
        before, failures, reason="wrong_credentials"
    )
    throttled = value(after, failures, reason="throttled_email") - value(
        before, failures, reason="throttled_email"
    )
    assert wrong + throttled == 3 and wrong >= 2
    lockouts = "clipsync_sign_in_lockouts_total"
    assert value(after, lockouts) - value(before, lockouts) >= 1


async def test_storage_and_videos_are_worked_out_when_scraped(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = with_database(make_settings(metrics={"enabled": True}), migrated_sqlite)
    _, client = await start_app(settings, client_address=LOOPBACK)
    text = await scrape(client)
    for kind in ("sources", "renditions", "captions"):
        assert ("clipsync_storage_bytes", frozenset({("kind", kind)})) in samples(text)
    assert value(text, "clipsync_jobs_pending") == 0


async def test_the_grafana_dashboard_uses_only_metrics_clipsync_exports(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = with_database(make_settings(metrics={"enabled": True}), migrated_sqlite)
    _, client = await start_app(settings, client_address=LOOPBACK)
    exported = {family.name for family in text_string_to_metric_families(await scrape(client))}
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    used = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for query in queries
        for name in re.findall(r"\bclipsync_\w+", query)
    }
    assert len(used) >= 20
    assert used <= exported, used - exported


async def test_rejected_analytics_events_are_counted_by_reason(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = with_database(make_settings(metrics={"enabled": True}), migrated_sqlite)
    _, client = await start_app(settings, client_address=LOOPBACK)
    token = (await register(client, "metrics-analytics@example.org"))["token"]
    before = await scrape(client)
    answer = await client.post(
        "/api/analytics/event",
        json=[{"type": "no-such-type"}, "not an object"],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 422, answer.text
    after = await scrape(client)
    events = "clipsync_analytics_events_total"
    for reason in {r["code"] for r in answer.json()["rejected"]}:
        assert value(after, events, outcome="rejected", reason=reason) > value(
            before, events, outcome="rejected", reason=reason
        )
    rejected = sum(
        v - value(before, n, **dict(ls))
        for (n, ls), v in samples(after).items()
        if n == events and dict(ls).get("outcome") == "rejected"
    )
    assert rejected == 2


async def test_an_upload_refused_when_checked_is_counted_as_a_failure(
    start_app, make_settings, migrated_sqlite: Path, tmp_path: Path
) -> None:
    settings = with_database(make_settings(metrics={"enabled": True}), migrated_sqlite)
    _, client = await start_app(settings, client_address=LOOPBACK)
    token = (await register(client, "metrics-upload@example.org"))["token"]
    not_a_video = tmp_path / "holiday.mp4"
    not_a_video.write_bytes(b"this is text, not a video" * 100)
    before = await scrape(client)
    answer = await upload_and_register(client, token, not_a_video)
    assert answer.status_code in (415, 422), answer.text
    after = await scrape(client)
    failures = "clipsync_upload_failures_total"
    assert value(after, failures, stage="checking") - value(before, failures, stage="checking") == 1
    assert value(after, "clipsync_uploads_total") == value(before, "clipsync_uploads_total")
