"""Log lines (issue 18, item 2): `[logging]` format and levels, the access log, and a
real `clipsync serve` writing JSON lines that follow a request into its job."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import LiveServer
from clients import PASSWORD, bearer, register
from clips import make_clip
from faults.processes import PATIENCE, fast_jobs_toml, wait_for

from clipsync import logs, request_ids
from clipsync.errors import ConfigError
from clipsync.settings import LoggingSettings, parse_settings


class Captured:
    """What `setup_logging` writes, one JSON object (or text line) per line."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def setup(self, **settings: Any) -> None:
        logs.setup_logging(LoggingSettings(**settings), stream=self.stream)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def captured() -> Iterator[Captured]:
    capture = Captured()
    yield capture
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logs.ClipSyncHandler)]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    for name in ("clipsync.jobs", "clipsync.other"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    logs.access_log.disabled = False


def test_json_lines_carry_time_level_logger_message_request_id_and_the_traceback(
    captured: Captured,
) -> None:
    captured.setup(format="json")
    log = logging.getLogger("clipsync.other")
    log.info("outside a request")
    with request_ids.bound("req-1"):
        try:
            raise ValueError("broken")
        except ValueError:
            log.exception("it failed: %s", "badly")
    outside, failed = captured.lines()
    assert outside["requestId"] is None and outside["message"] == "outside a request"
    assert failed["requestId"] == "req-1"
    assert failed["level"] == "ERROR" and failed["logger"] == "clipsync.other"
    assert failed["message"] == "it failed: badly"
    assert failed["excInfo"].startswith("Traceback") and "ValueError: broken" in failed["excInfo"]
    assert failed["time"].endswith("+00:00") and "T" in failed["time"]


def test_text_lines_show_the_request_id_where_there_is_one(captured: Captured) -> None:
    captured.setup(format="text")
    log = logging.getLogger("clipsync.other")
    log.warning("no request")
    with request_ids.bound("req-2"):
        log.warning("in a request")
    first, second = captured.text.splitlines()
    assert first.endswith(" WARNING clipsync.other: no request")
    assert second.endswith(" WARNING clipsync.other [req-2]: in a request")


def test_one_loggers_level_differs_from_the_rest(captured: Captured) -> None:
    settings = parse_settings(
        {"logging": {"format": "json", "level": "warning", "levels": ["clipsync.jobs=DEBUG"]}},
        where="test",
    )
    logs.setup_logging(settings.logging, stream=captured.stream)
    logging.getLogger("clipsync.jobs.runtime").debug("shown")
    logging.getLogger("clipsync.other").info("hidden")
    logging.getLogger("clipsync.other").warning("shown too")
    assert [line["message"] for line in captured.lines()] == ["shown", "shown too"]


@pytest.mark.parametrize(
    "table",
    [{"levels": ["clipsync.jobs"]}, {"levels": ["clipsync.jobs=LOUD"]}, {"level": "verbose"}],
)
def test_a_level_that_is_not_one_is_refused_naming_the_key(table: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"logging": table}, where="test config")
    assert f"[logging] {next(iter(table))}" in str(error.value)


def access_lines(captured: Captured) -> list[dict[str, Any]]:
    return [line for line in captured.lines() if line["logger"] == "clipsync.access"]


async def test_each_request_writes_an_access_line_by_route_with_user_status_and_duration(
    app, client: httpx.AsyncClient, captured: Captured
) -> None:
    session = await register(client, "ann@example.org")
    captured.setup(format="json")
    video = "00000000-0000-0000-0000-000000000000"
    answer = await client.get(f"/api/videos/{video}", headers=bearer(session["token"]))
    unmatched = await client.get("/api/no-such-thing")
    first, second = access_lines(captured)
    assert first["method"] == "GET"
    assert first["route"] == "/api/videos/<video_id:uuid>"  # the pattern, not the id
    assert video not in json.dumps(first)
    assert first["status"] == answer.status_code == 404
    assert first["userId"] == session["user"]["id"]
    assert isinstance(first["durationMs"], float) and first["durationMs"] >= 0
    assert first["requestId"] == answer.headers["X-Request-ID"]
    assert second["route"] is None and second["status"] == unmatched.status_code == 404
    assert second["userId"] is None


async def test_the_access_log_can_be_turned_off(app, client, captured: Captured) -> None:
    captured.setup(format="json", access_log=False)
    assert (await client.get("/healthz/live")).status_code == 200
    assert access_lines(captured) == []


# --- a real `clipsync serve` ------------------------------------------------------------

TRUSTED = {"X-Forwarded-For": "198.51.100.20", "X-Request-ID": "upload-7f3a"}
# The database's queries, logged at DEBUG, show the job's code (run on the consumer's
# own event loop) as well as Huey's.
LOGGING = '[logging]\nformat = "json"\nlevels = ["tortoise.db_client=DEBUG"]\n'


def test_a_live_server_writes_json_lines_that_follow_an_upload_into_its_job(
    tmp_path: Path,
) -> None:
    server = LiveServer(tmp_path, extra_toml=fast_jobs_toml() + LOGGING)
    server.write_config()
    # Behind one proxy, whose X-Request-ID is kept ([server] is LiveServer's own table).
    config = server.config_path.read_text()
    server.config_path.write_text(config.replace("[server]\n", "[server]\nproxies_count = 1\n"))
    with server, httpx.Client(base_url=server.base_url, timeout=PATIENCE) as http:
        signed_up = http.post(
            "/api/auth/register", json={"email": "live@example.org", "password": PASSWORD}
        )
        assert signed_up.status_code == 201, signed_up.text
        user_id = signed_up.json()["user"]["id"]
        headers = {**bearer(signed_up.json()["token"]), **TRUSTED}
        with make_clip("landscape").open("rb") as fh:
            uploaded = http.post(
                "/api/videos/upload-local",
                files={"file": ("clip.mp4", fh, "video/mp4")},
                headers=headers,
            )
        assert uploaded.status_code == 201, uploaded.text
        video_id = uploaded.json()["videoId"]
        registered = http.post(
            "/api/videos/register", json={"videoId": video_id, "title": "Live"}, headers=headers
        )
        assert registered.status_code == 201, registered.text
        assert registered.headers["X-Request-ID"] == "upload-7f3a"

        def ready() -> bool:
            answer = http.get(f"/api/videos/{video_id}", headers=bearer(signed_up.json()["token"]))
            return answer.json()["video"]["status"] in ("READY", "FAILED")

        wait_for("the transcode", ready)
        final = http.get(f"/api/videos/{video_id}", headers=bearer(signed_up.json()["token"]))
        assert final.json()["video"]["status"] == "READY", server.log_tail()

    text = server.log_path.read_text()
    # `clipsync migrate` and the start-up banner print plain text; from then on,
    # every line the server and its consumer write is one JSON object.
    banner = next(i for i, line in enumerate(text.splitlines()) if line.startswith("ClipSync "))
    lines = [json.loads(line) for line in text.splitlines()[banner + 1 :]]
    assert all({"time", "level", "logger", "message", "requestId"} <= set(line) for line in lines)
    mine = [line for line in lines if line["requestId"] == "upload-7f3a"]
    access = [line for line in mine if line["logger"] == "clipsync.access"]
    assert {(a["method"], a["route"], a["status"], a["userId"]) for a in access} == {
        ("POST", "/api/videos/upload-local", 201, user_id),
        ("POST", "/api/videos/register", 201, user_id),
    }
    # The job's lines, written by the consumer's process, carry the upload's id:
    # Huey's own ("Executing", "executed in") as well as the job's.
    job = [e for e in lines if e["logger"] == "huey" and "transcode_video" in e["message"]]
    assert [line["message"].split()[0] for line in job][:1] == ["Executing"], job
    assert any("executed in" in line["message"] for line in job), job
    assert {line["requestId"] for line in job} == {"upload-7f3a"}, job
    # The job's own code, on the consumer's event loop: its claim on the video counts
    # an attempt (`transcoding.claim`), a query no request makes.
    claims = [e for e in lines if '"attempts"="attempts"+' in e["message"]]
    assert claims and {e["requestId"] for e in claims} == {"upload-7f3a"}, claims
    # Sanic's own access line is not written besides ClipSync's.
    assert not [line for line in lines if line["logger"] == "sanic.access"]
