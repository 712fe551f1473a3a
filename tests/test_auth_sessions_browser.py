"""A page opened after its access token ran out is renewed and shown, not signed out.

Access tokens live three seconds here (`[auth] access_token_minutes = 0.05`: the
setting takes a fraction for exactly this). Two tabs renewing one sign-in across
many tokens, with their live streams, are test_browser_session_refresh.py.
"""

from __future__ import annotations

import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, url_is
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
PASSWORD = "correct horse battery"
LIFETIME_SECONDS = 3


@pytest.fixture
def live_server_toml() -> str:
    return f"[auth]\naccess_token_minutes = {LIFETIME_SECONDS / 60}\n"


def signed_in_here(page: Page) -> None:
    """What the person sees and does: their name in the header, an API call that works."""
    expect(page.locator(".nav-user")).to_have_attribute("title", f"Signed in as {ADMIN_EMAIL}")
    answer = page.evaluate(
        """async () => {
            const response = await fetch("/api/auth/me", {credentials: "same-origin"});
            return {status: response.status, body: await response.json()};
        }"""
    )
    assert answer["status"] == 200, answer
    assert answer["body"]["user"]["email"] == ADMIN_EMAIL


def test_a_page_opened_after_the_access_token_expired_is_renewed_and_shown(
    page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    with reported(live_server, watcher):
        watcher.watch(page)
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        # No page is open to renew it (as with a laptop that slept): the token expires.
        page.goto("about:blank")
        page.wait_for_timeout((LIFETIME_SECONDS + 1.5) * 1000)
        page.goto("/account/sessions")
        # The server sent the expired visit to sign in; the page renewed and went on.
        expect(page).to_have_url(url_is(live_server, "/account/sessions"))
        signed_in_here(page)
