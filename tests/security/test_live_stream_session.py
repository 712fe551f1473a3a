"""Finding 4: a live stream must not outlive the session that opened it.

`GET /api/videos/events` (Server-Sent Events, the only live stream ClipSync serves)
is opened on a real `clipsync serve`; then the session ends three ways: the user
signs out, an admin deactivates the account, an admin changes its role. Each time the
stream must send a last `signed-out` event with the reason and end, and opening it
again must be refused. In a browser, "My videos" then says so and stops listening.

The stream checks the session whenever the event bus says this user's sessions ended
or they signed out, and again before each keep-alive comment (after 15 s without
news): a keep-alive after the session ended means a check let it through, and the
stream outlived the session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest
from browser import DEFAULT_TIMEOUT_MS, LiveServer, sign_in
from clients import PASSWORD, bearer
from playwright.sync_api import Browser, expect

EVENTS = "/api/videos/events"
KEEP_ALIVE = ": keep-alive"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("stream") / "live") as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def admin(server: LiveServer, http: httpx.Client) -> dict[str, str]:
    """Headers of a signed-in admin, made as an installer makes the first one (the CLI)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPSYNC_")}
    command = [sys.executable, "-m", "clipsync", "--config", str(server.config_path)]
    command += ["user", "create", "--email", "admin@example.org", "--role", "admin"]
    subprocess.run(
        [*command, "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        capture_output=True,
        env=env,
        timeout=60,
        check=True,
    )
    answer = http.post("/api/auth/login", json={"email": "admin@example.org", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return bearer(answer.json()["token"])


def sign_up(http: httpx.Client, email: str) -> tuple[int, str]:
    answer = http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return answer.json()["user"]["id"], answer.json()["token"]


def events_after(http: httpx.Client, token: str, end_session: Callable[[], None]) -> list:
    """Open the stream, end the session, and read the stream to its end: its events."""
    received: list[tuple[str, dict]] = []
    with http.stream("GET", EVENTS, headers=bearer(token)) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        end_session()
        name = "message"
        for line in stream.iter_lines():
            assert line != KEEP_ALIVE, f"the stream outlived the session: {received}"
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                received.append((name, json.loads(line.removeprefix("data: "))))
                name = "message"
    # Opening it again is refused, so a browser's EventSource stops reconnecting.
    again = http.get(EVENTS, headers=bearer(token))
    assert again.status_code == 401
    return received


def test_signing_out_ends_the_live_stream(http: httpx.Client) -> None:
    _, token = sign_up(http, "leaver@example.org")

    def sign_out() -> None:
        assert http.post("/api/auth/logout", headers=bearer(token)).status_code == 204

    assert events_after(http, token, sign_out) == [
        ("signed-out", {"message": "You have signed out. Please sign in again."})
    ]


def test_deactivating_the_account_ends_its_live_stream(
    http: httpx.Client, admin: dict[str, str]
) -> None:
    user_id, token = sign_up(http, "deactivated@example.org")

    def deactivate() -> None:
        answer = http.patch(f"/api/admin/users/{user_id}", json={"active": False}, headers=admin)
        assert answer.status_code == 200, answer.text

    assert events_after(http, token, deactivate) == [
        ("signed-out", {"message": "Your account is no longer active."})
    ]


def test_changing_the_role_ends_the_live_stream_of_the_old_session(
    http: httpx.Client, admin: dict[str, str]
) -> None:
    user_id, token = sign_up(http, "promoted@example.org")

    def promote() -> None:
        answer = http.patch(f"/api/admin/users/{user_id}", json={"role": "editor"}, headers=admin)
        assert answer.status_code == 200, answer.text

    (event,) = events_after(http, token, promote)
    assert event[0] == "signed-out" and "account changed" in event[1]["message"]


@pytest.mark.browser
def test_my_videos_stops_listening_and_says_so_when_the_session_ends(
    server: LiveServer, http: httpx.Client, browser: Browser, admin: dict[str, str]
) -> None:
    # `admin`: with an administrator, the site is set up and its sign-in page opens.
    sign_up(http, "browsing@example.org")
    context = browser.new_context(base_url=server.base_url)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        page = context.new_page()
        sign_in(page, server, "browsing@example.org", PASSWORD)
        page.goto("/videos")
        # A function, not an expression: Playwright polls an expression with eval(),
        # which the page's Content-Security-Policy forbids.
        page.wait_for_function(
            "() => window.clipsyncMyVideos.source.readyState === EventSource.OPEN"
        )
        # Signed out elsewhere (another tab): this page's stream hears of it.
        page.evaluate(
            "fetch('/api/auth/logout', {method: 'POST', headers: ClipSync.csrfHeaders()})"
        )
        expect(page.locator("#live-status")).to_have_text(
            "Live updates stopped: You have signed out. Please sign in again."
        )
        # Closed for good: EventSource does not reconnect on its own.
        assert page.evaluate("window.clipsyncMyVideos.source.readyState") == 2
    finally:
        context.close()
