"""Accounts in a real browser: first-run set-up, registration, sign-out and sign-in.

Runs `clipsync serve` for real (see `browser.LiveServer`) and drives it with headless
Chromium through the server-rendered forms, as a person would.
"""

from __future__ import annotations

import re

import pytest
from browser import LiveServer, url_is
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery"
USER_EMAIL = "viewer@example.org"
USER_PASSWORD = "staple-7-staple"


def account_detail(page: Page, term: str) -> Locator:
    """The <dd> next to the <dt> reading `term` in the home page's account summary."""
    term_cell = page.locator("dt").filter(has_text=re.compile(f"^{re.escape(term)}$"))
    return page.locator("dl.summary > div").filter(has=term_cell).locator("dd")


def expect_signed_in(page: Page, email: str, role: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {email.split('@')[0]}")
    expect(account_detail(page, "Email")).to_have_text(email)
    expect(account_detail(page, "Role")).to_have_text(role)


def sign_out(page: Page, live_server: LiveServer) -> None:
    page.get_by_role("banner").get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(url_is(live_server, "/login"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert not [c for c in page.context.cookies() if c["name"] == "clipsync_session"]


def test_fresh_install_setup_then_register_and_sign_in_in_chromium(
    page: Page, live_server: LiveServer
) -> None:
    # A fresh install sends every visitor to the first-run set-up.
    page.goto("/")
    expect(page).to_have_url(url_is(live_server, "/setup"))
    # No sign-in or register links in the header: they would only lead back here.
    banner = page.get_by_role("banner")
    expect(banner.get_by_role("link", name="Sign in")).to_have_count(0)
    expect(banner.get_by_role("link", name="Register")).to_have_count(0)

    setup = page.locator("form[action='/setup']")
    setup.locator("[name=email]").fill(ADMIN_EMAIL)
    setup.locator("[name=password]").fill(ADMIN_PASSWORD)
    setup.locator("[name=password_confirm]").fill(ADMIN_PASSWORD)
    setup.get_by_role("button", name="Create administrator").click()

    expect(page).to_have_url(url_is(live_server, "/"))
    expect_signed_in(page, ADMIN_EMAIL, "admin")

    # The session cookie is out of reach of scripts and of cross-site form posts.
    sessions = [c for c in page.context.cookies() if c["name"] == "clipsync_session"]
    assert len(sessions) == 1, page.context.cookies()
    assert sessions[0]["httpOnly"] is True
    assert sessions[0]["sameSite"] == "Lax"

    sign_out(page, live_server)

    # Anyone may register while registration is open (the default).
    page.goto("/register")
    register = page.locator("form[action='/register']")
    register.locator("[name=email]").fill(USER_EMAIL)
    register.locator("[name=password]").fill(USER_PASSWORD)
    register.locator("[name=password_confirm]").fill(USER_PASSWORD)
    register.get_by_role("button").click()

    expect(page).to_have_url(url_is(live_server, "/"))
    expect_signed_in(page, USER_EMAIL, "user")

    sign_out(page, live_server)

    # A wrong password keeps the person on the sign-in page and says why.
    login = page.locator("form[action='/login']")
    login.locator("[name=email]").fill(USER_EMAIL)
    login.locator("[name=password]").fill(USER_PASSWORD + "-wrong")
    login.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect.")
    expect(page).to_have_url(url_is(live_server, "/login"))
    expect(login.locator("[name=email]")).to_have_value(USER_EMAIL)

    # The right one signs in.
    login.locator("[name=password]").fill(USER_PASSWORD)
    login.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(url_is(live_server, "/"))
    expect_signed_in(page, USER_EMAIL, "user")
