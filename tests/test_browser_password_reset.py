"""A forgotten password in a real browser: "Forgot password?" → the mail → a new one.

A real `clipsync serve` mails the link through the loopback SMTP server of
`smtp.py` (STARTTLS and a sign-in required), sent by its own job consumer. The
person opens the link, chooses a new password and signs in with it; the old one no
longer works, and the browser that was signed in before (another context: another
device) is signed out: its next request is refused and its page shows it signed out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import DEFAULT_TIMEOUT_MS, LiveServer, Watcher, reported, set_up_admin, url_is
from playwright.sync_api import Browser, Page, expect
from smtp import Received, SmtpServer

pytestmark = pytest.mark.browser

EMAIL = "admin@example.org"
OLD_PASSWORD = "correct horse battery"
NEW_PASSWORD = "tram lines at dusk"
MAIL_TIMEOUT_S = 30


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
def live_server_toml(smtp: SmtpServer) -> str:
    table = "\n".join(
        f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"'
        for key, value in smtp.config().items()
    )
    return f"[plugins.notify_email]\n{table}\n"


def reset_mail(smtp: SmtpServer) -> Received:
    deadline = time.monotonic() + MAIL_TIMEOUT_S
    while time.monotonic() < deadline:
        found = [m for m in smtp.mails_to(EMAIL) if "new password" in m.message["Subject"]]
        if found:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no reset mail to {EMAIL}: {smtp.mails()}")


def api_status(page: Page, method: str, path: str) -> int:
    """What the page's own script gets asking `path` (with its cookies and CSRF header)."""
    return page.evaluate(
        """async ([method, path]) => {
            const response = await fetch(path, {
                method,
                credentials: "same-origin",
                headers: window.ClipSync.csrfHeaders({Accept: "application/json"}),
            });
            return response.status;
        }""",
        [method, path],
    )


def sign_in_form(page: Page, password: str) -> None:
    form = page.locator("form[action='/login']")
    form.locator("[name=email]").fill(EMAIL)
    form.locator("[name=password]").fill(password)
    form.get_by_role("button", name="Sign in").click()


def test_a_mailed_reset_link_sets_a_new_password_and_signs_every_browser_out(
    page: Page, browser: Browser, live_server: LiveServer, smtp: SmtpServer
) -> None:
    watcher = Watcher()
    with reported(live_server, watcher):
        # The person is signed in on one device (this context) ...
        watcher.watch(page)
        set_up_admin(page, live_server, EMAIL, OLD_PASSWORD)
        assert api_status(page, "GET", "/api/auth/me") == 200

        # ... and on another has forgotten the password.
        context = browser.new_context(base_url=live_server.base_url)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        other = watcher.watch(context.new_page())
        other.goto("/login")
        other.get_by_role("link", name="Forgot password?").click()
        expect(other).to_have_url(url_is(live_server, "/password/forgot"))
        other.get_by_label("Email").fill(EMAIL)
        other.get_by_role("button", name="Send the link").click()
        expect(other.locator("#reset-sent")).to_be_visible()

        mail = reset_mail(smtp)
        assert mail.tls
        link = re.search(r"https?://\S+/password/reset\?token=[\w-]+", mail.part("text/plain"))
        assert link and link.group(0).startswith(live_server.base_url), mail.part("text/plain")
        other.goto(link.group(0))
        other.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        other.get_by_label("Repeat new password").fill(NEW_PASSWORD)
        other.get_by_role("button", name="Set the new password").click()
        expect(other.locator("#reset-done")).to_be_visible()

        # The old password no longer works; the new one signs in.
        other.get_by_role("link", name="Sign in").last.click()
        expect(other).to_have_url(url_is(live_server, "/login"))
        sign_in_form(other, OLD_PASSWORD)
        expect(other.locator(".form-error")).to_contain_text("incorrect")
        expect(other).to_have_url(url_is(live_server, "/login"))
        sign_in_form(other, NEW_PASSWORD)
        expect(other).to_have_url(url_is(live_server, "/"))
        expect(other.locator(".nav-user")).to_have_attribute("title", f"Signed in as {EMAIL}")
        assert api_status(other, "GET", "/api/auth/me") == 200
        # The link worked once.
        other.goto(link.group(0))
        expect(other.locator(".form-error")).to_be_visible()

        # The first device's session is gone: its requests are refused, its refresh
        # token renews nothing, and a page shows it signed out.
        assert api_status(page, "GET", "/api/auth/me") == 401
        assert api_status(page, "POST", "/api/auth/refresh") == 401
        page.goto("/account/sessions")
        expect(page).to_have_url(re.compile(re.escape(live_server.url("/login"))))
        expect(page.locator(".nav-user")).to_have_count(0)
        # The new sign-in is the only session the account has.
        other.goto("/account/sessions")
        expect(other.locator(".session-row")).to_have_count(1)
        context.close()
