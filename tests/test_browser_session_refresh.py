"""A sign-in outlives many access tokens in a real browser, in two tabs, unnoticed.

Access tokens live three seconds here (`[auth] access_token_minutes = 0.05`: the
setting takes a fraction for exactly this; the issue's one minute would make the
test last minutes), so the 21 seconds the tabs are left alone span seven of them,
and at least one of the checks every live stream's session gets (every 15 s).
session.js renews the tokens before they run out, one tab at a time (a Web Lock):
if both tabs sent the same refresh token, the second would look like a stolen copy
and end the session, so any uncoordinated renewal fails this test.

Both tabs keep working all along: their scripts' API calls, and their live streams
(the uploads list in one, the moderation queue in the other, the notification bell
shared by both), which stay the same connections and still bring news at the end.
The refresh cookie is a new one after each renewal. It runs once per session store.

test_auth_sessions_browser.py has the page opened after its token ran out.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, url_is
from clips import make_clip
from playwright.sync_api import BrowserContext, CDPSession, Page, Request, Response, expect
from services import RedisServer
from stored_sessions import STORES, redis_url, store_settings
from test_browser_moderation import CONFIG, PROCESSING_TIMEOUT_S, upload

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
PASSWORD = "correct horse battery"
LIFETIME_SECONDS = 3
# Longer than the 15 s between two checks of the live streams' sessions.
LEFT_ALONE_SECONDS = 21
STREAMS = ("/api/videos/events", "/api/admin/videos/events", "/api/notifications/stream")
LIVE_TIMEOUT_MS = 15_000


@pytest.fixture(params=STORES)
def live_server_toml(request: pytest.FixtureRequest) -> Iterator[str]:
    toml = f"{CONFIG}\n[auth]\naccess_token_minutes = {LIFETIME_SECONDS / 60}\n"
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        store_settings("redis", server)  # empties its database
        toml += f'session_store = "redis"\n[queue]\nredis_url = "{redis_url(server)}"\n'
    yield toml


def me_status(page: Page) -> int:
    """What an API call from the page's own script gets."""
    return page.evaluate(
        """async () => (await fetch("/api/auth/me", {credentials: "same-origin"})).status"""
    )


def refresh_cookie(context: BrowserContext) -> dict:
    found = [c for c in context.cookies() if c["name"] == "clipsync_refresh"]
    assert len(found) == 1, "the refresh cookie is gone: the browser was signed out"
    return found[0]


def test_a_session_outlives_many_access_tokens_in_two_tabs_with_live_streams(
    page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    refreshes: list[int] = []
    streams: Counter[str] = Counter()

    def note_refresh(response: Response) -> None:
        if response.url.endswith("/api/auth/refresh"):
            refreshes.append(response.status)

    def note_stream(request: Request) -> None:
        path = request.url.removeprefix(live_server.base_url).split("?")[0]
        if path in STREAMS:
            streams[path] += 1

    context = page.context
    context.on("response", note_refresh)
    context.on("request", note_stream)
    with reported(live_server, watcher):
        watcher.watch(page)
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        page.goto("/videos")
        expect(page.locator("#my-videos")).to_be_visible()
        other = watcher.watch(context.new_page())
        other.goto("/admin")
        expect(other.locator("#queue-section")).to_be_visible()
        for tab in (page, other):
            tab.evaluate("window.__loaded = true")  # gone if the page reloads
        waited = 0
        while set(streams) != set(STREAMS) and waited < 50:
            page.wait_for_timeout(100)
            waited += 1
        opened = dict(streams)
        assert set(opened) == set(STREAMS), opened
        cookies = [refresh_cookie(context)]
        assert cookies[0]["httpOnly"] and cookies[0]["path"] == "/api/auth/refresh"

        # Left alone but for what their scripts do: every second and a half one
        # of the tabs calls the API.
        started = time.monotonic()
        calls = []
        while time.monotonic() - started < LEFT_ALONE_SECONDS:
            tab = (page, other)[len(calls) % 2]
            tab.wait_for_timeout(1500)
            calls.append(me_status(tab))
            cookies.append(refresh_cookie(context))
        elapsed = time.monotonic() - started

        assert set(calls) == {200}, calls
        assert set(refreshes) == {200}, refreshes
        assert len(refreshes) >= LEFT_ALONE_SECONDS // LIFETIME_SECONDS - 1, refreshes
        # One tab renews for both: a token renews every 0.75 lifetime (2.25 s; about
        # 2 s as expiries are whole seconds), two tabs each renewing would double it.
        assert len(refreshes) <= elapsed / 1.4 + 1, (refreshes, elapsed)
        # Each renewal set a new refresh token, and only its renewals did.
        values = [c["value"] for c in cookies]
        changes = sum(a != b for a, b in itertools.pairwise(values))
        assert changes >= len(refreshes) - 2 and len(set(values)) >= 5, (changes, refreshes)

        # The live streams are the ones opened at the start, and news still comes.
        make_clip("landscape")  # made now: the upload's token lives three seconds
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            signed_in = http.post(
                "/api/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}
            )
            video_id = upload(http, signed_in.json()["token"], "Tide Tables")
        row = page.locator(f'.video-row[data-video-id="{video_id}"]')
        expect(row).to_have_attribute("data-status", "READY", timeout=PROCESSING_TIMEOUT_S * 1000)
        expect(other.locator("#queue-news")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        assert page.evaluate("window.clipsyncMyVideos.source.readyState") == 1  # OPEN
        assert dict(streams) == opened, (streams, opened)  # no stream had to reconnect
        for tab in (page, other):
            assert tab.evaluate("window.__loaded") is True
            expect(tab.locator(".nav-user")).to_have_attribute(
                "title", f"Signed in as {ADMIN_EMAIL}"
            )
            assert me_status(tab) == 200
        # A page loaded now is signed in too, and the browser is one session.
        other.goto("/account/sessions")
        expect(other).to_have_url(url_is(live_server, "/account/sessions"))
        expect(other.locator(".session-current")).to_have_count(1)


def slow(networks: list[CDPSession], latency_ms: int) -> None:
    conditions = {"offline": False, "downloadThroughput": -1, "uploadThroughput": -1}
    for network in networks:
        network.send("Network.emulateNetworkConditions", {**conditions, "latency": latency_ms})


def test_without_web_locks_two_tabs_on_a_slow_network_renew_one_at_a_time(
    page: Page, live_server: LiveServer
) -> None:
    """A page served over plain HTTP from another host has no Web Locks: session.js
    takes a lease in localStorage instead. On a slow network (every request 0.6 s
    late) a tab that read the expiry cookie while the other's renewal was on its way
    would send the used-up token, and the server would end the session."""
    watcher = Watcher()
    refreshes: list[int] = []
    context = page.context
    context.on(
        "response",
        lambda r: refreshes.append(r.status) if r.url.endswith("/api/auth/refresh") else None,
    )
    context.add_init_script("delete Navigator.prototype.locks;")
    with reported(live_server, watcher):
        watcher.watch(page)
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        other = watcher.watch(context.new_page())
        other.goto("/")
        networks = []
        for tab in (page, other):
            assert tab.evaluate("navigator.locks === undefined")
            networks.append(context.new_cdp_session(tab))
            networks[-1].send("Network.enable")
        slow(networks, 600)
        page.wait_for_timeout(5 * LIFETIME_SECONDS * 1000)
        # With 0.6 s each way a renewal ends after the token it renews (1.2 s later,
        # not 0.75 s before): API calls now would be refused for a moment. A fast
        # network again, and the next renewal comes in time.
        slow(networks, 0)
        page.wait_for_timeout(LIFETIME_SECONDS * 1000 + 500)

        assert len(refreshes) >= 3, refreshes
        assert set(refreshes) == {200}, refreshes
        for tab in (page, other):
            expect(tab.locator(".nav-user")).to_have_attribute(
                "title", f"Signed in as {ADMIN_EMAIL}"
            )
            assert me_status(tab) == 200
