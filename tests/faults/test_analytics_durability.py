"""Watch events a real `clipsync serve` answered 200 for are never lost, nor counted twice.

The README promises that a killed process loses at most `flush_interval` (1 s) of
events. While ClickHouse is down the events go to the spool on disk every
`flush_interval`; these tests SIGKILL the whole server (its workers and consumer
with it) during a ClickHouse outage, bring everything back, and count in ClickHouse
itself: every accepted event arrives, exactly once. ClipSync also starts, and takes
events, while ClickHouse is down.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import LiveServer
from clips import Clips, clips_fixture  # noqa: F401  (the `clips` fixture)
from faults.processes import Api, Timeline, running, wait_for
from faults.test_dependency_outages import clickhouse_count
from services import ClickHouseServer

pytestmark = pytest.mark.faults

# The default: what the README's promise is about.
FLUSH_INTERVAL = 1.0


@pytest.fixture
def own_clickhouse() -> Iterator[ClickHouseServer]:
    """A ClickHouse of this test's own, not started: the test decides when it runs."""
    # A short stop: ClickHouse waits for its clients, and ClipSync's stay connected.
    server = ClickHouseServer(stop_timeout=2)
    try:
        yield server
    finally:
        server.stop()


def analytics_toml(clickhouse: ClickHouseServer, database: str) -> str:
    return (
        '[analytics]\nbackend = "clickhouse"\n'
        "[plugins.analytics_clickhouse]\n"
        f'host = "{clickhouse.host}"\nport = {clickhouse.port}\ndatabase = "{database}"\n'
        f"flush_interval = {FLUSH_INTERVAL}\n"
    )


def spooled(server: LiveServer) -> int:
    """Events waiting in the server's spool files."""
    folder = server.data_dir / "analytics-spool" / "clickhouse"
    return sum(len(path.read_text().splitlines()) for path in folder.glob("*.jsonl"))


def send_events(api: Api, video_id: str, batches: int, every: float = 0.0) -> int:
    """Report `batches` batches of a viewing session; returns the events accepted."""
    session = uuid.uuid4().hex
    accepted = 0
    for number in range(batches):
        batch = [
            {"type": "PROGRESS", "videoId": video_id, "sessionId": session,
             "position": 0.5, "played": 0.5}
            for _ in range(7)
        ]  # fmt: skip
        answer = api.http.post("/api/analytics/event", json=batch)
        assert answer.status_code == 200, answer.text
        accepted += answer.json()["accepted"]
        if every and number < batches - 1:
            time.sleep(every)
    return accepted


def test_events_accepted_while_clickhouse_is_down_survive_a_sigkill_and_arrive_once(
    tmp_path: Path, clips: Clips, own_clickhouse: ClickHouseServer
) -> None:
    timeline = Timeline("ClickHouse down, then clipsync serve SIGKILLed")
    database = f"durable_{uuid.uuid4().hex[:8]}"
    own_clickhouse.start()
    server = LiveServer(tmp_path / "site", analytics_toml(own_clickhouse, database))
    with running(server):
        api = Api(server)
        video_id = api.upload_and_register(clips("landscape"))
        accepted = send_events(api, video_id, 3)
        wait_for(
            "the first events in ClickHouse",
            lambda: clickhouse_count(own_clickhouse, database) == (accepted, accepted),
        )

        own_clickhouse.stop(keep_data=True)
        timeline.mark("clickhouse down")
        # Over 12 s: longer than a retry back-off of 1, 2, 4 and 8 s.
        during = send_events(api, video_id, 48, every=0.25)
        timeline.mark("last event answered")
        accepted += during
        # The promise: on disk within about flush_interval of the answer (3x here).
        deadline = time.monotonic() + 3 * FLUSH_INTERVAL
        while spooled(server) < during and time.monotonic() < deadline:
            time.sleep(0.05)
        on_disk = spooled(server)
        timeline.mark("on disk")
        server.kill()

    assert on_disk == during, f"{during - on_disk} of {during} events were not on disk"
    own_clickhouse.start()
    timeline.mark("clickhouse back")
    with running(server):
        timeline.mark("clipsync back")
        wait_for(
            "every accepted event in ClickHouse",
            lambda: clickhouse_count(own_clickhouse, database)[0] >= accepted,
        )
        timeline.mark("all delivered")
        wait_for("the spool to be empty", lambda: spooled(server) == 0)
        assert clickhouse_count(own_clickhouse, database) == (accepted, accepted)
    timeline.report(
        last_answer_to_on_disk=timeline.between("last event answered", "on disk"),
        restart_to_all_delivered=timeline.between("clipsync back", "all delivered"),
    )


def test_clipsync_starts_and_takes_events_while_clickhouse_is_down(
    tmp_path: Path, clips: Clips, own_clickhouse: ClickHouseServer
) -> None:
    timeline = Timeline("ClickHouse down when clipsync serve starts")
    database = f"late_{uuid.uuid4().hex[:8]}"
    server = LiveServer(tmp_path / "site", analytics_toml(own_clickhouse, database))
    with running(server):  # answers /healthz though ClickHouse has never run
        api = Api(server)
        video_id = api.upload_and_register(clips("landscape"))
        accepted = send_events(api, video_id, 10)
        wait_for("the events in the spool", lambda: spooled(server) == accepted)

        own_clickhouse.start()
        timeline.mark("clickhouse up")
        wait_for(
            "every accepted event in ClickHouse",
            lambda: clickhouse_count(own_clickhouse, database)[0] >= accepted,
        )
        timeline.mark("all delivered")
        wait_for("the spool to be empty", lambda: spooled(server) == 0)
        assert clickhouse_count(own_clickhouse, database) == (accepted, accepted)
    timeline.report(up_to_all_delivered=timeline.between("clickhouse up", "all delivered"))
