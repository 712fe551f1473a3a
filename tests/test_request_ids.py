"""Request ids (issue 18, item 2): in every answer, every error, and the jobs queued.

An incoming `X-Request-ID` is kept only from a trusted proxy (`[server]
proxies_count`, and the request came through it); anyone else's is replaced.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import httpx
import pytest
from clients import register, upload_and_register
from clips import make_clip
from huey import MemoryHuey

from clipsync import logs, request_ids
from clipsync.jobs.tasks import carry_request_ids
from clipsync.settings import LoggingSettings

PROXIED = {"X-Forwarded-For": "198.51.100.4"}


def fresh(value: str | None) -> bool:
    """A request id ClipSync chose: 32 hex digits."""
    return value is not None and len(value) == 32 and int(value, 16) >= 0


async def proxied_app(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(server={"proxies_count": 1})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    return await start_app(settings)


async def test_every_answer_carries_a_fresh_request_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz/live")
    second = await client.get("/healthz/live")
    assert first.status_code == second.status_code == 200
    assert fresh(first.headers.get("X-Request-ID"))
    assert fresh(second.headers.get("X-Request-ID"))
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


async def test_a_json_error_names_the_request_id_of_its_answer(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/videos/00000000-0000-0000-0000-000000000000")
    assert answer.status_code in (401, 404)
    error = answer.json()["error"]
    assert set(error) >= {"code", "message", "requestId"}
    assert fresh(error["requestId"]) and error["requestId"] == answer.headers["X-Request-ID"]


async def test_an_error_page_shows_the_request_id_as_its_reference(app, client) -> None:
    app.ctx.set_up = True  # past the first-run page
    answer = await client.get("/no-such-page")
    assert answer.status_code == 404
    request_id = answer.headers["X-Request-ID"]
    assert fresh(request_id)
    assert f"Reference: <code>{request_id}</code>" in answer.text


async def test_a_request_refused_before_any_handler_still_gets_an_id(client) -> None:
    answer = await client.get("/api/auth/me", headers={"Host": "elsewhere.example"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "unknown_host"
    assert answer.json()["error"]["requestId"] == answer.headers["X-Request-ID"]


async def test_a_trusted_proxys_request_id_is_kept(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    _, client = await proxied_app(start_app, make_settings, migrated_sqlite)
    ok = await client.get("/healthz/live", headers={**PROXIED, "X-Request-ID": "edge-1a2b.3:4_5"})
    assert ok.headers["X-Request-ID"] == "edge-1a2b.3:4_5"
    failed = await client.get("/api/no-such-thing", headers={**PROXIED, "X-Request-ID": "edge-2"})
    assert failed.status_code == 404
    assert failed.headers["X-Request-ID"] == failed.json()["error"]["requestId"] == "edge-2"


async def test_a_clients_own_request_id_is_replaced_without_a_trusted_proxy(client) -> None:
    # No proxies are trusted by default: X-Forwarded-For is the client's own word.
    answer = await client.get("/healthz/live", headers={**PROXIED, "X-Request-ID": "mine-123"})
    assert fresh(answer.headers["X-Request-ID"])


async def test_a_request_that_went_past_the_proxy_gets_a_new_id(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    _, client = await proxied_app(start_app, make_settings, migrated_sqlite)
    # No X-Forwarded-For: it reached the server directly, not through the proxy.
    answer = await client.get("/healthz/live", headers={"X-Request-ID": "mine-123"})
    assert fresh(answer.headers["X-Request-ID"])


@pytest.mark.parametrize(
    "incoming",
    ["a" * 65, "two words", "<script>", "-leading-dash", "id;drop", "ünïcode", "a/b"],
)
async def test_a_malformed_request_id_from_the_proxy_is_replaced(
    start_app, make_settings, migrated_sqlite: Path, incoming: str
) -> None:
    _, client = await proxied_app(start_app, make_settings, migrated_sqlite)
    headers = {**PROXIED, "X-Request-ID": incoming.encode()}
    answer = await client.get("/healthz/live", headers=headers)
    assert fresh(answer.headers["X-Request-ID"]), incoming


async def test_an_upload_queues_its_transcode_with_the_request_id(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    app, client = await proxied_app(start_app, make_settings, migrated_sqlite)
    token = (await register(client, "ann@example.org"))["token"]
    client.headers.update({**PROXIED, "X-Request-ID": "upload-42"})
    registered = await upload_and_register(client, token, make_clip("landscape"))
    assert registered.status_code == 201, registered.text
    assert registered.headers["X-Request-ID"] == "upload-42"
    [job] = [t for t in app.ctx.jobs.huey.pending() if t.name == "transcode_video"]
    assert job.args == (registered.json()["video"]["id"],)
    assert job.kwargs == {"request_id": "upload-42"}


def test_a_job_logs_with_the_request_id_it_was_queued_with_and_an_old_one_without() -> None:
    """The consumer's worker thread runs each task with its id current; a message
    queued before ids existed (no `request_id` argument) runs, with none."""
    huey = MemoryHuey(utc=True)
    carry_request_ids(huey)
    seen: list[str | None] = []

    @huey.task(name="job")
    def job(n: int, request_id: str | None = None) -> None:
        seen.append(request_ids.current())
        logs.log.info("job %d ran", n)

    with request_ids.bound("req-9"):
        job(1, request_id=request_ids.current())
    job(2)  # the old signature: no id
    stream = io.StringIO()
    logs.setup_logging(LoggingSettings(format="json", level="INFO"), stream=stream)
    try:

        def consume() -> None:  # what a consumer's worker thread does
            while (task := huey.dequeue()) is not None:
                huey.execute(task)

        worker = threading.Thread(target=consume)
        worker.start()
        worker.join(10)
    finally:
        reset_logging()
    assert seen == ["req-9", None]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ran = {line["message"]: line["requestId"] for line in lines if "ran" in line["message"]}
    assert ran == {"job 1 ran": "req-9", "job 2 ran": None}
    # Huey's own lines, before and after the task, carry it too.
    huey_lines = [
        (line["message"].split()[0], line["requestId"])
        for line in lines
        if line["logger"] == "huey"
    ]
    assert huey_lines == [
        ("Executing", "req-9"),
        ("test_request_ids.job:", "req-9"),
        ("Executing", None),
        ("test_request_ids.job:", None),
    ]


def reset_logging() -> None:
    """Back to what pytest set up: no ClipSync handler on the root logger."""
    import logging

    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logs.ClipSyncHandler)]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def test_an_id_with_a_line_break_is_not_valid() -> None:
    # A regex's `$` matches before a final newline: the whole value must match.
    assert request_ids.is_valid("edge-1")
    assert not request_ids.is_valid("edge-1\n")
    assert not request_ids.is_valid("edge-1\nforged line")
