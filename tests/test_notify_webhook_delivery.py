"""Webhooks sent for real: a receiver on loopback checks the signature and answers.

The receiver is a real HTTP server (`http.server`, in a thread) that records every
POST and answers from a script (500 then 200, a redirect, an endless body, silence).
Deliveries go through the core's `send_delivery`, as the `deliver_notification` job
runs it, and once end to end through a real `clipsync serve` and its Huey consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import LiveServer
from certificates import self_signed
from clients import PASSWORD, bearer
from clips import make_clip
from faults.processes import PATIENCE, fast_jobs_toml, wait_for

from clipsync import events
from clipsync.models import Delivery, DeliveryStatus, Role, Video, VideoStatus, Webhook
from clipsync.services import notifications
from clipsync.services.notifications import DeliveryFailed

API = "/api/admin/webhooks"
# What a scripted answer is: a status, or a function that writes the whole answer.
Answer = int | Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POST, answers from `answers`.

    Once the script is used up it answers 200.
    """

    def __init__(self, *answers: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Received] = []
        self.answers = list(answers)
        self.stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                answer = receiver.answers.pop(0) if receiver.answers else 200
                if callable(answer):
                    answer(self)
                    return
                text = b"fine" if answer < 300 else b"<h1>down for maintenance</h1>"
                self.send_response(answer)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def verify(request: Received, secret: str) -> None:
    """Check the signature as a receiver would (the scheme in docs/notifications.md)."""
    timestamp = request.headers["X-ClipSync-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["X-ClipSync-Signature"], f"sha256={expected}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    settings = make_settings(
        plugins={"notify_webhook": {"allow_private": True, "timeout_seconds": 2}},
        notifications={"retry_delay_seconds": 0.2},
    )
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    owner = await app.ctx.accounts.create_user("owner@example.org", PASSWORD)
    return app, client, app.ctx.accounts.start_session(admin).token, owner


async def add_webhook(client, token: str, url: str, **body: Any) -> tuple[int, str]:
    body = {"url": url, "events": ["video.approved"]} | body
    answer = await client.post(API, json=body, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return answer.json()["webhook"]["id"], answer.json()["secret"]


async def approved_video(owner, title: str = "Launch day") -> Video:
    video = await Video.create(
        owner=owner, title=title, category=owner.category, status=VideoStatus.APPROVED
    )
    await events.publish_video("video.approved", video)
    return video


async def the_delivery() -> Delivery:
    [delivery] = await Delivery.filter(channel="webhook")
    return delivery


async def test_a_delivery_is_signed_and_carries_the_video(site, receiver: Receiver) -> None:
    app, client, token, owner = site
    _id, secret = await add_webhook(client, token, receiver.url)
    video = await approved_video(owner)
    delivery = await the_delivery()

    await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)

    [request] = receiver.requests
    verify(request, secret)
    assert request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-ClipSync-Event"] == "video.approved"
    assert request.headers["X-ClipSync-Delivery"] == str(delivery.id)
    body = request.json()
    assert body["event"] == "video.approved" and body["occurredAt"]
    assert {k: body["data"][k] for k in ("videoId", "title", "status", "category", "url")} == {
        "videoId": str(video.id),
        "title": "Launch day",
        "status": "APPROVED",
        "category": owner.category,
        "url": f"http://clipsync.test/watch/{video.id}",
    }
    sent = await Delivery.get(id=delivery.id)
    assert (sent.status, sent.attempts, sent.response_status, sent.last_error) == (
        DeliveryStatus.SENT,
        1,
        200,
        "",
    )


async def test_a_tampered_body_fails_the_signature(site, receiver: Receiver) -> None:
    """The check in `verify` is a real one: a byte changed, and it fails."""
    app, client, token, owner = site
    _id, secret = await add_webhook(client, token, receiver.url)
    await approved_video(owner)
    await notifications.send_delivery(
        app.ctx.plugins, (await the_delivery()).id, final_attempt=False
    )
    [request] = receiver.requests
    tampered = Received(request.path, request.headers, request.body.replace(b"Launch", b"Lunch"))
    with pytest.raises(AssertionError):
        verify(tampered, secret)
    with pytest.raises(AssertionError):
        verify(request, "0" * 64)


async def test_a_500_is_retried_and_the_next_attempt_delivers_once(site) -> None:
    app, client, token, owner = site
    with Receiver(500) as receiver:
        _id, secret = await add_webhook(client, token, receiver.url)
        await approved_video(owner)
        delivery = await the_delivery()

        with pytest.raises(DeliveryFailed, match="answered 500"):
            await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)
        waiting = await Delivery.get(id=delivery.id)
        assert (waiting.status, waiting.attempts, waiting.response_status) == (
            DeliveryStatus.PENDING,
            1,
            500,
        )
        assert "the webhook answered 500: <h1>down for maintenance</h1>" in waiting.last_error

        await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)
        # A job that runs again (a duplicate from the reaper) sends nothing more.
        await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)

    first, second = receiver.requests
    for request in (first, second):
        verify(request, secret)
    assert first.headers["X-ClipSync-Delivery"] == second.headers["X-ClipSync-Delivery"]
    assert first.body == second.body
    sent = await Delivery.get(id=delivery.id)
    assert (sent.status, sent.attempts, sent.response_status, sent.last_error) == (
        DeliveryStatus.SENT,
        2,
        200,
        "",
    )


async def test_the_last_failed_attempt_marks_the_delivery_failed(site) -> None:
    app, client, token, owner = site
    with Receiver(503, 503) as receiver:
        await add_webhook(client, token, receiver.url)
        await approved_video(owner)
        delivery = await the_delivery()
        with pytest.raises(DeliveryFailed):
            await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)
        await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=True)
    failed = await Delivery.get(id=delivery.id)
    assert (failed.status, failed.attempts, failed.response_status) == (
        DeliveryStatus.FAILED,
        2,
        503,
    )
    assert failed.last_error.startswith("the webhook answered 503")


async def test_redirects_are_not_followed(site) -> None:
    app, client, token, owner = site

    def moved(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", "/elsewhere")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with Receiver(moved) as receiver:
        await add_webhook(client, token, receiver.url)
        await approved_video(owner)
        delivery = await the_delivery()
        with pytest.raises(DeliveryFailed, match="redirect"):
            await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)
    assert [r.path for r in receiver.requests] == ["/hook"]
    assert (await Delivery.get(id=delivery.id)).response_status == 302


async def test_an_endless_answer_is_read_only_up_to_the_limit(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = make_settings(
        plugins={
            "notify_webhook": {
                "allow_private": True,
                "timeout_seconds": 5,
                "max_response_bytes": 4096,
            }
        }
    )
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    token = app.ctx.accounts.start_session(admin).token
    written = []

    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(500)
        handler.end_headers()  # no length: the body lasts until the connection closes
        chunk = b"x" * 65536
        try:
            while not receiver.stopping.is_set() and len(written) < 2000:
                handler.wfile.write(chunk)
                written.append(len(chunk))
        except OSError:
            pass  # the client hung up, as it should

    with Receiver(endless) as receiver:
        await add_webhook(client, token, receiver.url)
        await approved_video(admin)
        delivery = await the_delivery()
        started = time.monotonic()
        with pytest.raises(DeliveryFailed, match="answered 500: x"):
            await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)
        elapsed = time.monotonic() - started
    # It hung up after 4 KiB, long before the 5 s limit or the 125 MiB on offer.
    assert elapsed < 3, elapsed
    assert len(written) < 2000


async def test_a_silent_receiver_times_out(site) -> None:
    app, client, token, owner = site

    def silent(handler: BaseHTTPRequestHandler) -> None:
        receiver.stopping.wait(10)

    with Receiver(silent) as receiver:
        await add_webhook(client, token, receiver.url)
        await approved_video(owner)
        delivery = await the_delivery()
        started = time.monotonic()
        with pytest.raises(DeliveryFailed, match="no answer within 2 s"):
            await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)
        assert time.monotonic() - started < 4
    waiting = await Delivery.get(id=delivery.id)
    assert waiting.response_status is None and waiting.status == DeliveryStatus.PENDING


async def test_the_url_is_checked_again_when_sending(
    start_app, make_settings, migrated_sqlite: Path, receiver: Receiver
) -> None:
    """A URL accepted once (its name resolved elsewhere then) is refused at send time."""
    settings = make_settings()  # allow_private = false
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, _client = await start_app(settings)
    owner = await app.ctx.accounts.create_user("owner@example.org", PASSWORD)
    await Webhook.create(
        url=receiver.url.replace("127.0.0.1", "localhost"),
        secret="s" * 64,
        events=["video.approved"],
    )
    await approved_video(owner)
    delivery = await the_delivery()
    with pytest.raises(DeliveryFailed, match="a loopback address"):
        await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)
    assert receiver.requests == []


async def test_credentials_in_the_url_are_sent_but_never_recorded(site, receiver: Receiver) -> None:
    app, client, token, owner = site
    with_password = receiver.url.replace("http://", "http://bot:hunter2@")
    await add_webhook(client, token, with_password)
    closed = Receiver()  # bound, then closed: nothing listens on its port any more
    closed.server.server_close()
    await add_webhook(client, token, closed.url.replace("http://", "http://bot:hunter2@"))
    await approved_video(owner)
    for delivery in await Delivery.filter(channel="webhook").order_by("id"):
        assert "hunter2" not in delivery.recipient
        with contextlib.suppress(DeliveryFailed):
            await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)
    [request] = receiver.requests
    assert request.headers["Authorization"] == "Basic Ym90Omh1bnRlcjI="  # bot:hunter2
    sent, refused = await Delivery.filter(channel="webhook").order_by("id")
    assert sent.status == DeliveryStatus.SENT
    assert refused.last_error.startswith("could not reach the webhook")
    assert "hunter2" not in refused.last_error and "bot:" not in refused.last_error
    page = await client.get("/admin/webhooks", headers=bearer(token))
    assert "hunter2" not in page.text


@pytest.mark.parametrize("body_format", ["slack", "mattermost", "teams"])
async def test_chat_formats_get_their_own_body_with_the_title_escaped(
    site, receiver: Receiver, body_format: str
) -> None:
    app, client, token, owner = site
    _id, secret = await add_webhook(client, token, receiver.url, format=body_format)
    video = await approved_video(owner, title="<!channel> *Q4* & [more](http://x)")
    await notifications.send_delivery(
        app.ctx.plugins, (await the_delivery()).id, final_attempt=False
    )
    [request] = receiver.requests
    verify(request, secret)
    body = request.json()
    link = f"http://clipsync.test/watch/{video.id}"
    if body_format == "slack":
        assert body == {
            "text": "Video approved: “&lt;!channel&gt; *Q4* &amp; [more](http://x)” in "
            f"{owner.category} <{link}|Open in ClipSync>"
        }
    elif body_format == "mattermost":
        assert body == {
            "text": r"Video approved: “\<\!channel\> \*Q4\* & \[more\]\(http://x\)” in "
            f"{owner.category} {link}"
        }
    else:
        assert body["@type"] == "MessageCard"
        assert body["@context"] == "https://schema.org/extensions"
        assert body["summary"] == "Video approved"
        assert "&lt;\\!channel&gt;" in body["text"] and link in body["text"]
        assert body["potentialAction"][0]["targets"] == [{"os": "default", "uri": link}]


def certificate_for(name: str, folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) valid for the DNS name `name` only."""
    return self_signed(folder, name, dns_names=[name])


async def test_the_connection_goes_to_the_checked_address(
    site, receiver: Receiver, monkeypatch
) -> None:
    """The name is resolved once, for the check; a second answer (a DNS rebinding to
    somewhere else) is never used: the POST goes to the address that was checked."""
    app, client, token, owner = site
    checked = [(2, 1, 6, "", ("127.0.0.1", receiver.port))]
    answers = iter([checked, checked])  # for the check at creation, and at sending
    lookups = []

    async def rebinding(host, port, **kwargs):
        lookups.append(host)
        # After those, the name points at an address nothing answers on.
        return next(answers, [(2, 1, 6, "", ("192.0.2.1", port))])

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebinding)
    url = f"http://hooks.example.test:{receiver.port}/hook"
    _id, secret = await add_webhook(client, token, url)
    await approved_video(owner)
    delivery = await the_delivery()
    await notifications.send_delivery(app.ctx.plugins, delivery.id, final_attempt=False)
    [request] = receiver.requests
    verify(request, secret)
    assert request.headers["Host"] == f"hooks.example.test:{receiver.port}"
    assert lookups == ["hooks.example.test"] * 2


async def test_https_is_verified_against_the_name_while_connecting_to_the_address(
    site, tmp_path: Path, monkeypatch
) -> None:
    """TLS to the checked address still names the host (SNI) and checks its certificate
    for that name: a certificate for `localhost` only is good, and it is the name, not
    127.0.0.1, that the check uses."""
    app, client, token, owner = site
    cert_file, key_file = certificate_for("localhost", tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert_file, key_file)
    # The sender trusts this test's CA instead of the system's.
    trusting = ssl.create_default_context(cafile=str(cert_file))
    monkeypatch.setattr(httpx, "AsyncClient", functools.partial(httpx.AsyncClient, verify=trusting))
    with Receiver(tls=server_side) as receiver:
        _id, secret = await add_webhook(client, token, f"https://localhost:{receiver.port}/hook")
        await add_webhook(client, token, f"https://127.0.0.1:{receiver.port}/hook")
        await approved_video(owner)
        by_url = {d.recipient: d for d in await Delivery.filter(channel="webhook")}
        good = by_url[f"https://localhost:{receiver.port}/hook"]
        await notifications.send_delivery(app.ctx.plugins, good.id, final_attempt=False)
        bad = by_url[f"https://127.0.0.1:{receiver.port}/hook"]
        with pytest.raises(DeliveryFailed, match="certificate"):
            await notifications.send_delivery(app.ctx.plugins, bad.id, final_attempt=False)
    [request] = receiver.requests
    verify(request, secret)
    assert request.headers["Host"] == f"localhost:{receiver.port}"
    assert (await Delivery.get(id=good.id)).status == DeliveryStatus.SENT


# --- end to end: `clipsync serve` and its Huey consumer ----------------------------------


def test_the_consumer_retries_after_a_500_and_delivers_once(tmp_path: Path) -> None:
    """An upload's `video.uploaded` (from the web worker) and `video.ready` (from the
    consumer) reach the receiver; the first POST gets a 500 and is retried by Huey."""
    toml = fast_jobs_toml() + (
        "[plugins.notify_webhook]\nallow_private = true\ntimeout_seconds = 5\n"
        "[notifications]\nretry_delay_seconds = 0.2\n"
    )
    with (
        Receiver(500) as receiver,
        LiveServer(tmp_path, extra_toml=toml) as server,
        httpx.Client(base_url=server.base_url, timeout=PATIENCE) as http,
    ):
        http.get("/setup")
        answer = http.post(
            "/setup",
            data={
                "csrf_token": http.cookies["clipsync_csrf"],
                "email": "admin@example.org",
                "password": PASSWORD,
                "password_confirm": PASSWORD,
            },
        )
        assert answer.status_code == 303, answer.text
        http.cookies.clear()
        login = http.post(
            "/api/auth/login", json={"email": "admin@example.org", "password": PASSWORD}
        )
        headers = bearer(login.json()["token"])
        created = http.post(
            API,
            json={"url": receiver.url, "events": ["video.uploaded", "video.ready"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        webhook_id, secret = created.json()["webhook"]["id"], created.json()["secret"]

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

        def settled() -> list[dict] | None:
            items = http.get(f"{API}/{webhook_id}/deliveries", headers=headers).json()["items"]
            done = [i for i in items if i["status"] == "sent"]
            return items if len(done) == 2 else None

        items = wait_for("both deliveries sent", settled)
        page = http.get("/admin/webhooks", headers=headers)
        assert page.status_code == 200
        assert ">Delivered<" in page.text or "Delivered" in page.text

    by_event = {i["event"]: i for i in items}
    assert by_event["video.uploaded"]["attempts"] == 2, server.log_tail()
    assert by_event["video.ready"]["attempts"] == 1
    assert all(i["responseStatus"] == 200 for i in items)
    for request in receiver.requests:
        verify(request, secret)
    ids = [r.headers["X-ClipSync-Delivery"] for r in receiver.requests]
    # The uploaded one twice (500, then 200), the ready one once: nothing more.
    assert sorted(ids) == sorted(
        [str(by_event["video.uploaded"]["id"])] * 2 + [str(by_event["video.ready"]["id"])]
    )
    ready = next(r for r in receiver.requests if r.headers["X-ClipSync-Event"] == "video.ready")
    assert ready.json()["data"]["url"] == f"{server.base_url}/watch/{video_id}"
