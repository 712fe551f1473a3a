"""Sign-in sessions in the browser's cookies and on the account's sessions page.

The Set-Cookie lines asserted are the ones Sanic really sends; the forms are posted
as a browser without JavaScript would.
"""

from __future__ import annotations

import re

import httpx
import pytest
from clients import PASSWORD

from clipsync.context import ClipSyncApp
from clipsync.models import Role
from clipsync.models.auth_sessions import AuthSession
from clipsync.sessions import (
    CSRF_COOKIE,
    EXPIRY_COOKIE,
    REFRESH_COOKIE,
    REFRESH_PATH,
    SESSION_COOKIE,
)

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def set_cookies(response: httpx.Response) -> dict[str, str]:
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


def cookie_value(line: str) -> str:
    return line.split(";", 1)[0].split("=", 1)[1].strip('"')


def attributes(line: str) -> dict[str, str]:
    parts = [p.strip() for p in line.split(";")[1:]]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "") for p in parts}


async def form_token(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, f"{path} has no CSRF field"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, base: str = "") -> httpx.Response:
    token = await form_token(client, f"{base}/login")
    answer = await client.post(
        f"{base}/login",
        data={"csrf_token": token, "email": "ann@example.org", "password": PASSWORD},
        headers={"User-Agent": CHROME},
    )
    assert answer.status_code == 303, answer.text
    return answer


async def set_up(app: ClipSyncApp) -> None:
    """An administrator (the pages wait for one), and Ann, whose sessions these are."""
    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    await app.ctx.accounts.create_user("ann@example.org", PASSWORD)


@pytest.fixture
async def ann(app: ClipSyncApp) -> None:
    await set_up(app)


async def refresh_with_cookies(client: httpx.AsyncClient, base: str = "") -> httpx.Response:
    # httpx sends a path-scoped cookie only to its path, as a browser does.
    return await client.post(
        f"{base}{REFRESH_PATH}", headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE]}
    )


@pytest.mark.parametrize("secure", [False, True])
async def test_signing_in_sets_the_access_refresh_and_expiry_cookies(
    start_app, make_settings, settings, secure: bool
) -> None:
    app, client = await start_app(make_settings(server={"secure_cookies": secure}))
    await set_up(app)
    base = "https://clipsync.test" if secure else ""
    cookies = set_cookies(await sign_in(client, base))
    session, refresh, expiry = (cookies[n] for n in (SESSION_COOKIE, REFRESH_COOKIE, EXPIRY_COOKIE))
    assert attributes(refresh)["path"] == "/api/auth/refresh"
    assert attributes(refresh)["samesite"] == "Strict"
    assert "httponly" in attributes(refresh) and "httponly" in attributes(session)
    assert "httponly" not in attributes(expiry)  # session.js reads it
    for line in (session, refresh, expiry):
        assert ("secure" in attributes(line)) is secure
        # The cookies last as long as the session (30 days), not the access token.
        assert 29 * 86400 < int(attributes(line)["max-age"]) <= 30 * 86400
    row = await AuthSession.get()
    assert row.device == "Chrome 131 on Linux"
    at, lifetime = (int(x) for x in cookie_value(expiry).split(":"))
    # What the access token had left as the cookie was set: a second may have ticked.
    assert 15 * 60 - 5 <= lifetime <= 15 * 60 and at > 0


async def test_a_page_refreshes_with_its_cookie_and_the_tokens_stay_in_cookies(
    client: httpx.AsyncClient, ann: None
) -> None:
    await sign_in(client)
    old_access = client.cookies[SESSION_COOKIE]
    old_refresh = client.cookies[REFRESH_COOKIE]
    csrf = client.cookies[CSRF_COOKIE]
    response = await refresh_with_cookies(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"user", "expiresIn", "expiresAt"}
    assert old_refresh not in response.text and "token" not in body
    cookies = set_cookies(response)
    assert cookie_value(cookies[SESSION_COOKIE]) not in ("", old_access)
    assert cookie_value(cookies[REFRESH_COOKIE]) not in ("", old_refresh)
    # Forms open in other tabs keep working: the CSRF token is not replaced.
    assert CSRF_COOKIE not in cookies and client.cookies[CSRF_COOKIE] == csrf
    assert (await client.get("/api/auth/me")).status_code == 200


async def test_a_refresh_from_a_page_needs_the_csrf_header(
    client: httpx.AsyncClient, ann: None
) -> None:
    await sign_in(client)
    response = await client.post(REFRESH_PATH)
    assert response.status_code == 403


async def test_a_failed_cookie_refresh_signs_the_browser_out(
    client: httpx.AsyncClient, ann: None
) -> None:
    await sign_in(client)
    await AuthSession.all().update(revoked_at=(await AuthSession.first()).created_at)
    response = await refresh_with_cookies(client)
    assert response.status_code == 401
    assert response.json()["error"]["requestId"]
    cookies = set_cookies(response)
    for name in (SESSION_COOKIE, REFRESH_COOKIE, EXPIRY_COOKIE):
        assert cookie_value(cookies[name]) == "" and "Max-Age=0" in cookies[name], name
    assert SESSION_COOKIE not in client.cookies and REFRESH_COOKIE not in client.cookies


async def test_signing_out_from_the_page_ends_the_session(
    client: httpx.AsyncClient, ann: None
) -> None:
    await sign_in(client)
    refresh_token = client.cookies[REFRESH_COOKIE]
    token = client.cookies[CSRF_COOKIE]
    answer = await client.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert (await AuthSession.get()).revoked_at is not None
    for name in (SESSION_COOKIE, REFRESH_COOKIE, EXPIRY_COOKIE):
        assert cookie_value(set_cookies(answer)[name]) == ""
    again = await client.post(REFRESH_PATH, json={"refreshToken": refresh_token})
    assert again.status_code == 401


# --- the sessions page -----------------------------------------------------------------


async def test_the_sessions_page_lists_sessions_and_signs_one_out_without_javascript(
    app: ClipSyncApp, client: httpx.AsyncClient, ann: None
) -> None:
    other = await client.post(
        "/api/auth/login",
        json={"email": "ann@example.org", "password": PASSWORD},
        headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0; rv:133.0) Firefox/133.0"},
    )
    other_sid = (await AuthSession.get(device__startswith="Firefox")).id
    await sign_in(client)
    page = await client.get("/account/sessions")
    assert page.status_code == 200
    assert 'href="/account/sessions"' in page.text  # the header links to it
    assert "Chrome 131 on Linux" in page.text and "Firefox 133" in page.text
    assert page.text.count('action="/account/sessions/end"') == 2
    assert "This browser" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    ended = await client.post(
        "/account/sessions/end", data={"csrf_token": token, "session": other_sid}
    )
    assert ended.status_code == 303 and ended.headers["location"] == "/account/sessions?ended=one"
    gone = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {other.json()['token']}"}
    )
    assert gone.status_code == 401
    after = await client.get("/account/sessions?ended=one")
    assert "Firefox 133" not in after.text and "was signed out" in after.text


async def test_the_sessions_page_forms_need_the_csrf_token(
    client: httpx.AsyncClient, ann: None
) -> None:
    await sign_in(client)
    sid = (await AuthSession.get()).id
    refused = await client.post("/account/sessions/end", data={"session": sid})
    assert refused.status_code == 403
    assert (await AuthSession.get()).revoked_at is None


async def test_ending_this_browsers_session_from_the_page_signs_it_out(
    client: httpx.AsyncClient, ann: None
) -> None:
    await sign_in(client)
    sid = (await AuthSession.get()).id
    token = client.cookies[CSRF_COOKIE]
    ended = await client.post("/account/sessions/end", data={"csrf_token": token, "session": sid})
    assert ended.status_code == 303 and ended.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/account/sessions")).headers["location"].startswith("/login")


async def test_signing_out_every_other_session_from_the_page(
    client: httpx.AsyncClient, ann: None
) -> None:
    for _ in range(2):
        await client.post(
            "/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}
        )
    await sign_in(client)
    token = client.cookies[CSRF_COOKIE]
    ended = await client.post("/account/sessions/end-others", data={"csrf_token": token})
    assert ended.status_code == 303
    live = await AuthSession.filter(revoked_at__isnull=True)
    assert len(live) == 1 and live[0].device == "Chrome 131 on Linux"
    assert (await client.get("/account/sessions")).status_code == 200


async def test_someone_elses_session_cannot_be_ended_from_the_page(
    app: ClipSyncApp, client: httpx.AsyncClient, ann: None
) -> None:
    await app.ctx.accounts.create_user("bob@example.org", PASSWORD)
    await client.post("/api/auth/login", json={"email": "bob@example.org", "password": PASSWORD})
    bobs = (await AuthSession.get()).id
    await sign_in(client)
    token = client.cookies[CSRF_COOKIE]
    answer = await client.post("/account/sessions/end", data={"csrf_token": token, "session": bobs})
    assert answer.status_code == 404
    assert (await AuthSession.get(id=bobs)).revoked_at is None


async def test_the_sessions_page_needs_a_signed_in_person(
    client: httpx.AsyncClient, ann: None
) -> None:
    answer = await client.get("/account/sessions")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
