"""Finding 11, the cookie points: the CSRF token rotates at sign-in, the `csrf` query
parameter counts only where `navigator.sendBeacon` needs it, and signing out deletes
the session cookie over plain HTTP too.

The Set-Cookie headers asserted are the ones Sanic really sends.
"""

from __future__ import annotations

import re

import httpx
import pytest
from clients import PASSWORD

from clipsync.context import ClipSyncApp
from clipsync.models import Role
from clipsync.sessions import CSRF_COOKIE, EXPIRY_COOKIE, REFRESH_COOKIE, SESSION_COOKIE


async def form_token(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, f"{path} has no CSRF field"
    return found.group(1)


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each cookie the response sets, by name: the whole Set-Cookie line."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


def cookie_value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1].strip('"')


async def make_admin(app: ClipSyncApp) -> None:
    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)


async def sign_in(client: httpx.AsyncClient, base: str = "") -> tuple[str, httpx.Response]:
    """Sign in through the page at `base`; the token the form had, and the answer."""
    before = await form_token(client, f"{base}/login")
    answer = await client.post(
        f"{base}/login",
        data={"csrf_token": before, "email": "admin@example.org", "password": PASSWORD},
    )
    assert answer.status_code == 303, answer.text
    return before, answer


def assert_rotated(before: str, answer: httpx.Response) -> str:
    cookies = set_cookies(answer)
    assert SESSION_COOKIE in cookies, "no session cookie was set"
    assert CSRF_COOKIE in cookies, "the session cookie came without a new CSRF token"
    after = cookie_value(cookies[CSRF_COOKIE])
    assert after and after != before
    return after


async def test_signing_in_replaces_the_csrf_token(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await make_admin(app)
    before, answer = await sign_in(client)
    after = assert_rotated(before, answer)
    # The token from before signing in no longer works; the new one does.
    stale = await client.post("/api/auth/logout", headers={"X-CSRF-Token": before})
    assert stale.status_code == 403
    fresh = await client.post("/api/auth/logout", headers={"X-CSRF-Token": after})
    assert fresh.status_code == 204


async def test_registering_and_setting_up_replace_the_csrf_token(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    before = await form_token(client, "/setup")
    answer = await client.post(
        "/setup",
        data={
            "csrf_token": before,
            "email": "boss@example.org",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert answer.status_code == 303, answer.text
    assert_rotated(before, answer)

    client.cookies.clear()
    before = await form_token(client, "/register")
    answer = await client.post(
        "/register",
        data={
            "csrf_token": before,
            "email": "ann@example.org",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert answer.status_code == 303, answer.text
    assert_rotated(before, answer)


@pytest.mark.parametrize("secure", [False, True])
async def test_signing_out_deletes_the_session_cookie_with_the_attributes_it_was_set_with(
    start_app, make_settings, settings, secure: bool
) -> None:
    """A Secure deletion is ignored by browsers over plain HTTP: it must match the set."""
    tables = make_settings(server={"secure_cookies": secure})
    assert tables.data_dir == settings.data_dir  # the same migrated database
    app, client = await start_app(tables)
    await make_admin(app)
    # Secure cookies travel over HTTPS only (httpx keeps that rule too).
    base = "https://clipsync.test" if secure else ""
    _, signed_in = await sign_in(client, base)

    token = client.cookies[CSRF_COOKIE]
    signed_out = await client.post(f"{base}/logout", data={"csrf_token": token})
    assert signed_out.status_code == 303

    def attributes(line: str) -> set[str]:
        parts = {p.strip() for p in line.split(";")[1:]}
        return {p for p in parts if not p.lower().startswith(("max-age", "expires"))}

    # The access token's cookie, and the refresh token's (on its own path) with it.
    for name in (SESSION_COOKIE, REFRESH_COOKIE, EXPIRY_COOKIE):
        set_line = set_cookies(signed_in)[name]
        deleted = set_cookies(signed_out)[name]
        assert cookie_value(deleted) == ""
        assert "Max-Age=0" in deleted
        assert attributes(deleted) == attributes(set_line), (set_line, deleted)
        assert ("Secure" in deleted) is secure
    # And the browser is signed out: the cookie jar no longer holds the session.
    assert SESSION_COOKIE not in client.cookies
    assert REFRESH_COOKIE not in client.cookies
    assert (await client.get(f"{base}/")).headers["location"].startswith("/login")


async def test_signing_out_replaces_the_csrf_token(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await make_admin(app)
    await sign_in(client)
    token = client.cookies[CSRF_COOKIE]
    signed_out = await client.post("/logout", data={"csrf_token": token})
    new = set_cookies(signed_out).get(CSRF_COOKIE)
    assert new and cookie_value(new) not in ("", token)


async def test_the_csrf_query_parameter_counts_only_for_the_beacon_endpoint(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await make_admin(app)
    await sign_in(client)
    token = client.cookies[CSRF_COOKIE]
    # A token in a URL leaks through logs and history: no other endpoint takes one.
    for path in ("/api/auth/logout", "/api/admin/invites"):
        answer = await client.post(f"{path}?csrf={token}", json={})
        assert answer.status_code == 403, f"{path}: {answer.status_code}"
    # The player's sendBeacon can send no header: the event endpoint takes the query.
    beacon = await client.post(f"/api/analytics/event?csrf={token}", json=[])
    assert beacon.status_code != 403, beacon.text
    assert (await client.get("/api/auth/me")).status_code == 200  # still signed in
