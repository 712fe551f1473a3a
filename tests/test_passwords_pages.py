"""The password pages: change it, "Forgot password?", and the reset link's form.

Plain form posts with their CSRF token, as a browser sends them (see test_web.py).
Email is off here; the link is read from the message handed to the notification core.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from clients import PASSWORD, bearer, register

from clipsync.context import ClipSyncApp
from clipsync.models import Role
from clipsync.services import notifications, passwords
from clipsync.services.notification_types import Message
from clipsync.sessions import CSRF_COOKIE, SESSION_COOKIE

NEW_PASSWORD = "tram lines at dusk"


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    sent: list[Message] = []
    real = notifications.deliver

    async def deliver(message: Message) -> None:
        sent.append(message)
        await real(message)

    monkeypatch.setattr(notifications, "deliver", deliver)
    return sent


@pytest.fixture
async def site(app: ClipSyncApp, client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A set-up site (an administrator exists) with Ann's account."""
    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    await register(client, "ann@example.org")
    client.cookies.clear()
    return client


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has no form with a CSRF field"
    return found.group(1)


async def sign_in_page(client: httpx.AsyncClient, password: str = PASSWORD) -> None:
    token = csrf_of(await client.get("/login"))
    answer = await client.post(
        "/login", data={"csrf_token": token, "email": "ann@example.org", "password": password}
    )
    assert answer.status_code == 303, answer.text


async def test_sign_in_links_to_forgot_password_and_the_header_to_the_change_page(
    site: httpx.AsyncClient,
) -> None:
    login = await site.get("/login")
    assert '<a href="/password/forgot">Forgot password?</a>' in login.text
    assert 'href="/account/password"' not in login.text
    await sign_in_page(site)
    home = await site.get("/")
    assert 'href="/account/password"' in home.text


async def test_the_change_page_needs_a_signed_in_person(site: httpx.AsyncClient) -> None:
    answer = await site.get("/account/password")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/account/password"


async def test_changing_the_password_on_its_page_keeps_this_browser_and_ends_the_others(
    site: httpx.AsyncClient,
) -> None:
    elsewhere = (
        await site.post("/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD})
    ).json()["token"]
    site.cookies.clear()
    await sign_in_page(site)
    old_cookie = site.cookies[SESSION_COOKIE]
    [mine] = [s for s in (await site.get("/api/auth/sessions")).json()["sessions"] if s["current"]]
    page = await site.get("/account/password")
    assert page.status_code == 200 and "Change password" in page.text
    token = csrf_of(page)

    async def post(current: str, new: str, confirm: str) -> httpx.Response:
        return await site.post(
            "/account/password",
            data={
                "csrf_token": token,
                "current_password": current,
                "password": new,
                "password_confirm": confirm,
            },
        )

    wrong = await post("not my password", NEW_PASSWORD, NEW_PASSWORD)
    assert wrong.status_code == 400
    assert passwords.WRONG_CURRENT in wrong.text and "not my password" not in wrong.text
    mismatch = await post(PASSWORD, NEW_PASSWORD, "something else")
    assert mismatch.status_code == 422 and "do not match" in mismatch.text
    common = await post(PASSWORD, "monkey123", "monkey123")
    assert common.status_code == 422 and "list of common passwords" in common.text

    changed = await post(PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    assert changed.status_code == 303
    assert changed.headers["location"] == "/account/password?changed=1"
    assert site.cookies[SESSION_COOKIE] != old_cookie
    done = await site.get("/account/password?changed=1")
    assert done.status_code == 200 and 'id="password-changed"' in done.text
    assert (await site.get("/api/auth/me", headers=bearer(elsewhere))).status_code == 401
    # This browser's sign-in session goes on (new tokens, the same session); the other ended.
    sessions = (await site.get("/api/auth/sessions")).json()["sessions"]
    assert [(s["id"], s["current"]) for s in sessions] == [(mine["id"], True)]
    # The new cookie came with a CSRF token of its own: the next form works.
    again = await site.post(
        "/account/password",
        data={
            "csrf_token": site.cookies[CSRF_COOKIE],
            "current_password": NEW_PASSWORD,
            "password": "harbour lights again",
            "password_confirm": "harbour lights again",
        },
    )
    assert again.status_code == 303


async def test_forgot_then_the_link_sets_a_new_password_once(
    site: httpx.AsyncClient, mailbox: list[Message]
) -> None:
    page = await site.get("/password/forgot")
    assert page.status_code == 200
    # No SMTP host here: the page says so instead of promising a mail.
    assert 'id="reset-no-email"' in page.text and 'action="/password/forgot"' not in page.text
    token = csrf_of(await site.get("/login"))
    asked = await site.post(
        "/password/forgot", data={"csrf_token": token, "email": "ann@example.org"}
    )
    assert asked.status_code == 303 and asked.headers["location"] == "/password/forgot/sent"
    sent = await site.get("/password/forgot/sent")
    assert "Check your email" in sent.text and "60 minutes" in sent.text
    # An address with no account gets exactly the same pages.
    unknown = await site.post(
        "/password/forgot", data={"csrf_token": token, "email": "nobody@example.org"}
    )
    assert unknown.headers["location"] == "/password/forgot/sent"

    [message] = mailbox
    link = message.url
    reset_token = parse_qs(urlsplit(link).query)["token"][0]
    form = await site.get(link)
    assert form.status_code == 200
    assert f'name="token" value="{reset_token}"' in form.text
    mismatch = await site.post(
        "/password/reset",
        data={
            "csrf_token": token,
            "token": reset_token,
            "password": NEW_PASSWORD,
            "password_confirm": "something else",
        },
    )
    assert mismatch.status_code == 422 and f'value="{reset_token}"' in mismatch.text
    done = await site.post(
        "/password/reset",
        data={
            "csrf_token": token,
            "token": reset_token,
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
    )
    assert done.status_code == 200 and 'id="reset-done"' in done.text
    await sign_in_page(site, NEW_PASSWORD)

    used = await site.get(link)
    assert used.status_code == 400
    assert passwords.LINK_USED in used.text and 'href="/password/forgot"' in used.text
    assert 'name="password"' not in used.text
    replay = await site.post(
        "/password/reset",
        data={
            "csrf_token": site.cookies[CSRF_COOKIE],
            "token": reset_token,
            "password": "another fine phrase",
            "password_confirm": "another fine phrase",
        },
    )
    assert replay.status_code == 400 and passwords.LINK_USED in replay.text


async def test_a_bad_link_shows_why_and_no_form(site: httpx.AsyncClient) -> None:
    answer = await site.get("/password/reset?token=made-up")
    assert answer.status_code == 400
    assert passwords.LINK_UNKNOWN in answer.text and 'name="password"' not in answer.text


async def test_the_forgot_form_needs_its_csrf_token(site: httpx.AsyncClient) -> None:
    answer = await site.post(
        "/password/forgot", data={"csrf_token": "guess", "email": "ann@example.org"}
    )
    assert answer.status_code == 403


async def test_a_page_script_changing_it_with_the_cookie_stays_signed_in(
    site: httpx.AsyncClient,
) -> None:
    await sign_in_page(site)
    old_cookie = site.cookies[SESSION_COOKIE]
    answer = await site.post(
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers={"X-CSRF-Token": site.cookies[CSRF_COOKIE]},
    )
    assert answer.status_code == 200, answer.text
    assert site.cookies[SESSION_COOKIE] == answer.json()["token"] != old_cookie
    assert (await site.get("/api/auth/me")).status_code == 200
