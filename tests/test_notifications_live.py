"""A real `clipsync serve` with two web workers and its job consumer: one notification.

The consumer finishes the transcode and publishes `video.ready`; every process hears
it, but only the publisher writes the notification, so there is exactly one row, and
the bell's stream (served by one of the two workers) shows the new unread count.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
from browser import LiveServer
from clients import PASSWORD, bearer
from clips import make_clip
from faults.processes import PATIENCE, fast_jobs_toml

STREAM = "/api/notifications/stream"


class TwoWorkerServer(LiveServer):
    """`clipsync serve` with `[server] workers = 2` (LiveServer writes `[server]` itself)."""

    def write_config(self) -> None:
        super().write_config()
        text = self.config_path.read_text()
        port = f"port = {self.port}\n"
        self.config_path.write_text(text.replace(port, f"{port}workers = 2\n", 1))


def unread_counts(lines, until: int) -> list[int]:
    """The `event: unread` counts the stream sends, up to the first that is `until`."""
    counts: list[int] = []
    for line in lines:
        if line.startswith("data: "):
            counts.append(json.loads(line.removeprefix("data: "))["unread"])
            if counts[-1] == until:
                return counts
    return counts


def test_a_video_ready_from_the_consumer_makes_one_notification_and_reaches_the_bell(
    tmp_path: Path,
) -> None:
    with (
        TwoWorkerServer(tmp_path, extra_toml=fast_jobs_toml()) as server,
        httpx.Client(base_url=server.base_url, timeout=PATIENCE) as http,
    ):
        assert "workers = 2" in server.config_path.read_text()
        registered = http.post(
            "/api/auth/register", json={"email": "bell@example.org", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["token"]
        with make_clip("landscape").open("rb") as fh:
            uploaded = http.post(
                "/api/videos/upload-local",
                files={"file": ("clip.mp4", fh, "video/mp4")},
                headers=bearer(token),
            )
        assert uploaded.status_code == 201, uploaded.text
        video_id = uploaded.json()["videoId"]
        with http.stream("GET", STREAM, headers=bearer(token)) as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            assert unread_counts(lines, until=0) == [0]  # sent as the stream opens
            answer = http.post(
                "/api/videos/register",
                json={"videoId": video_id, "title": "Bell"},
                headers=bearer(token),
            )
            assert answer.status_code == 201, answer.text
            assert unread_counts(lines, until=1) == [1], server.log_tail()
        listed = http.get("/api/notifications", headers=bearer(token)).json()
        assert listed["total"] == 1 and listed["unread"] == 1, listed
        [item] = listed["items"]
        assert (item["type"], item["videoId"], item["url"]) == (
            "video.ready",
            video_id,
            f"/watch/{video_id}",
        )
    # And in the database itself, after every process stopped: one row.
    with sqlite3.connect(server.data_dir / "clipsync.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM notifications").fetchone() == (1,)
