"""Single sign-on in Chromium: `clipsync serve` and a real OpenID provider on loopback.

A person presses the provider's button on the sign-in page, signs in at the provider
(oidc-provider's own login and consent forms) and lands home in the category their
claim maps to. The provider then moves them to another department; their next
sign-in, from another browser, puts them in the new category and ends the first
browser's session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import LiveServer, Watcher, reported, set_up_admin, url_is
from oidc import CLIENT_ID, CLIENT_SECRET, OidcProvider
from playwright.sync_api import Browser, BrowserContext, Page, expect

pytestmark = pytest.mark.browser

ROOT = "root@example.org"
PASSWORD = "correct horse battery"
LABEL = "Sign in with Example ID"


def site_toml(provider: OidcProvider) -> str:
    return f"""
[[category]]
name = "general"
label = "General"
self_select = true
default = true

[[category]]
name = "sales"
label = "Sales"

[[category]]
name = "staff"
label = "Staff"

[plugins.auth_oidc]
issuer = "{provider.issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
scopes = ["openid", "email", "profile", "department"]
button_label = "{LABEL}"
category_claim = "department"
category_values = {{ "Sales" = "sales", "Engineering" = "staff" }}
"""


@pytest.fixture
def sso_site(tmp_path: Path) -> Iterator[tuple[LiveServer, OidcProvider]]:
    server = LiveServer(tmp_path / "live")  # its port is chosen now: the provider needs it
    provider = OidcProvider([server.url("/-/auth_oidc/callback")])
    server.extra_toml = site_toml(provider)
    with provider, server:
        yield server, provider


def new_page(browser: Browser, server: LiveServer, watcher: Watcher) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=server.base_url)
    context.set_default_timeout(10_000)
    return context, watcher.watch(context.new_page())


def sign_in_with_the_button(page: Page, server: LiveServer, login: str) -> None:
    page.goto("/login")
    page.get_by_role("link", name=LABEL).click()
    # The provider's own pages: its login form, then its consent form.
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(url_is(server, "/"))


def test_sign_in_with_the_providers_button_and_follow_the_provider_moving_them(
    browser: Browser, sso_site: tuple[LiveServer, OidcProvider]
) -> None:
    server, provider = sso_site
    watcher = Watcher()
    with reported(server, watcher):
        admin_context, admin = new_page(browser, server, watcher)
        set_up_admin(admin, server, ROOT, PASSWORD)
        admin_context.close()

        provider.set_account(
            "ann", email="ann@example.org", email_verified=True, name="Ann Example",
            department="Sales",
        )  # fmt: skip
        first_context, first = new_page(browser, server, watcher)
        sign_in_with_the_button(first, server, "ann")
        expect(first.locator("#nav-profile")).to_contain_text("Ann Example")
        expect(first.locator("#feed-scope strong")).to_have_text("Sales")

        # The organisation moves Ann; she signs in again from another browser.
        provider.set_account(
            "ann", email="ann@example.org", email_verified=True, name="Ann Example",
            department="Engineering",
        )  # fmt: skip
        second_context, second = new_page(browser, server, watcher)
        sign_in_with_the_button(second, server, "ann")
        expect(second.locator("#feed-scope strong")).to_have_text("Staff")

        # The first browser's session ended with the change.
        assert first.request.get(server.url("/api/auth/me")).status == 401
        first.goto("/")
        expect(first).to_have_url(url_is(server, "/login"))
        first_context.close()
        second_context.close()
