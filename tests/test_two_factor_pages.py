"""Two-factor on the pages, posted as a browser without JavaScript would: a role that
must enrol does so as the second step of signing in, and turning off needs the
password and a code. (The whole enrol-and-sign-in path in Chromium is
test_browser_two_factor.py.)"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import httpx
import pyotp
import pytest
from clients import PASSWORD
from conftest import AppFactory, SettingsFactory

from clipsync.context import ClipSyncApp
from clipsync.models import Role, User
from clipsync.sessions import SESSION_COOKIE


def field(page: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert found, f"no {name} field in {page.text[:2000]}"
    return found.group(1)


def secret_of(page: httpx.Response) -> str:
    found = re.search(r'<code id="two-factor-secret">([A-Z2-7]+)</code>', page.text)
    assert found, page.text[:2000]
    return found.group(1)


async def submit_login(client: httpx.AsyncClient, email: str) -> httpx.Response:
    csrf = field(await client.get("/login"), "csrf_token")
    return await client.post(
        "/login", data={"csrf_token": csrf, "email": email, "password": PASSWORD}
    )


@pytest.fixture
async def required(
    start_app: AppFactory, make_settings: SettingsFactory, migrated_sqlite: Path
) -> tuple[ClipSyncApp, httpx.AsyncClient]:
    settings = make_settings(auth={"require_mfa_for": ["editor"]})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    return await start_app(settings)


async def test_a_required_role_enrols_as_the_second_step_of_signing_in(
    required: tuple[ClipSyncApp, httpx.AsyncClient],
) -> None:
    app, client = required
    await app.ctx.accounts.create_user("root@example.org", PASSWORD, role=Role.ADMIN)  # set up
    await app.ctx.accounts.create_user("ed@example.org", PASSWORD, role=Role.EDITOR)
    page = await submit_login(client, "ed@example.org")
    assert page.status_code == 200 and "<svg" in page.text
    assert SESSION_COOKIE not in page.headers.get("set-cookie", "")
    totp = pyotp.TOTP(secret_of(page))
    form = {
        "csrf_token": field(page, "csrf_token"),
        "mfa_token": field(page, "mfa_token"),
        "next": "/",
    }
    wrong = await client.post("/account/two-factor/confirm", data={**form, "code": "12"})
    assert wrong.status_code == 401 and secret_of(wrong) == totp.secret  # the same QR again
    done = await client.post("/account/two-factor/confirm", data={**form, "code": totp.now()})
    assert done.status_code == 200, done.text
    assert done.text.count("<li><code>") == 10
    assert f"{SESSION_COOKIE}=" in done.headers.get("set-cookie", "")
    assert (await User.get(email="ed@example.org")).totp_enabled_at is not None


async def test_turning_off_on_the_page_needs_the_password_and_a_code(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await app.ctx.accounts.create_user("root@example.org", PASSWORD, role=Role.ADMIN)  # set up
    await app.ctx.accounts.create_user("ann@example.org", PASSWORD)
    assert (await submit_login(client, "ann@example.org")).status_code == 303
    page = await client.post(
        "/account/two-factor/setup",
        data={"csrf_token": field(await client.get("/account/two-factor"), "csrf_token")},
    )
    totp = pyotp.TOTP(secret_of(page))
    csrf = field(page, "csrf_token")
    confirmed = await client.post(
        "/account/two-factor/confirm", data={"csrf_token": csrf, "code": totp.at(time.time() - 30)}
    )
    assert confirmed.status_code == 200, confirmed.text

    wrong = await client.post(
        "/account/two-factor/off",
        data={"csrf_token": csrf, "password": "not it", "code": totp.now()},
    )
    assert wrong.status_code == 401 and "Password or code is incorrect." in wrong.text
    off = await client.post(
        "/account/two-factor/off",
        data={"csrf_token": csrf, "password": PASSWORD, "code": totp.now()},
    )
    assert off.status_code == 303 and off.headers["location"] == "/account/two-factor?done=off"
    assert (await User.get(email="ann@example.org")).totp_enabled_at is None
