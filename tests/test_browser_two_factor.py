"""Two-factor sign-in in a real browser: enrol from the account page by reading the
secret from it (pyotp plays the authenticator app), save the recovery codes, sign
out, and sign in again with the password and then a code."""

from __future__ import annotations

import time

import pyotp
import pytest
from browser import LiveServer, url_is
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

EMAIL = "admin@example.org"
PASSWORD = "correct horse battery"


def test_enrol_then_sign_in_with_a_code_in_chromium(page: Page, live_server: LiveServer) -> None:
    page.goto("/setup")
    setup = page.locator("form[action='/setup']")
    setup.locator("[name=email]").fill(EMAIL)
    setup.locator("[name=password]").fill(PASSWORD)
    setup.locator("[name=password_confirm]").fill(PASSWORD)
    setup.get_by_role("button", name="Create administrator").click()
    expect(page).to_have_url(url_is(live_server, "/"))

    page.get_by_role("banner").get_by_role("link", name="Two-factor").click()
    expect(page.locator("#two-factor-state")).to_have_text("off")
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    expect(page.locator("#two-factor-qr svg")).to_be_visible()
    totp = pyotp.TOTP(page.locator("#two-factor-secret").inner_text())
    # Last step's code: this step's stays unused for signing in below.
    page.locator("[name=code]").fill(totp.at(time.time() - 30))
    page.get_by_role("button", name="Turn on").click()

    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.get_by_label("I saved them").check()
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(url_is(live_server, "/account/two-factor"))
    expect(page.locator("#two-factor-state")).to_have_text("on")

    page.get_by_role("banner").get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(url_is(live_server, "/login"))
    login = page.locator("form[action='/login']")
    login.locator("[name=email]").fill(EMAIL)
    login.locator("[name=password]").fill(PASSWORD)
    login.get_by_role("button", name="Sign in").click()

    # The password alone does not sign in: the code step comes first.
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    assert not [c for c in page.context.cookies() if c["name"] == "clipsync_session"]
    code_form = page.locator("#login-code-form")
    code_form.locator("[name=code]").fill("000000" if totp.now() != "000000" else "111111")
    code_form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")

    code_form.locator("[name=code]").fill(totp.now())
    code_form.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(url_is(live_server, "/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    assert [c for c in page.context.cookies() if c["name"] == "clipsync_session"]
