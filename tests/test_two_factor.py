"""Two-factor sign-in (TOTP, RFC 6238) through the API, with pyotp as the person's
authenticator app: enrolling, the second step at sign-in, recovery codes, wrong and
reused codes, the `mfaToken`, roles that must enrol, turning off and an admin's reset."""

from __future__ import annotations

import shutil
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from clients import PASSWORD, bearer, error_of, register
from conftest import AppFactory, SettingsFactory

from clipsync import generated_keys
from clipsync.context import ClipSyncApp
from clipsync.events import Event
from clipsync.models import AuditEntry, Role, User
from clipsync.models.two_factor import RecoveryCode
from clipsync.services.notification_audience import account_message
from clipsync.services.two_factor import NOT_A_SESSION, RECOVERY_ALPHABET, TOKEN_EXPIRED

EMAIL = "ann@example.org"


async def login(client: httpx.AsyncClient, email: str = EMAIL) -> dict[str, Any]:
    response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


async def enrol(client: httpx.AsyncClient, token: str) -> tuple[pyotp.TOTP, list[str]]:
    """Set up two-factor for the holder of `token`; the app and the recovery codes."""
    setup = await client.post("/api/auth/mfa/totp/setup", headers=bearer(token))
    assert setup.status_code == 200, setup.text
    body = setup.json()
    assert body["qrSvg"].startswith("<svg") and body["otpauthUrl"].startswith("otpauth://totp/")
    app = pyotp.TOTP(body["secret"])
    # A code from 30 seconds ago: confirming leaves the current step for signing in.
    confirm = await client.post(
        "/api/auth/mfa/totp/confirm",
        json={"code": app.at(time.time() - 30)},
        headers=bearer(token),
    )
    assert confirm.status_code == 200, confirm.text
    return app, confirm.json()["recoveryCodes"]


async def verify(client: httpx.AsyncClient, mfa_token: str, code: str) -> httpx.Response:
    return await client.post("/api/auth/mfa/verify", json={"mfaToken": mfa_token, "code": code})


@pytest.fixture
async def limited(
    start_app: AppFactory, make_settings: SettingsFactory, migrated_sqlite: Path
) -> tuple[ClipSyncApp, httpx.AsyncClient]:
    """An app where three wrong codes make the account wait, and admins must enrol."""
    settings = make_settings(auth={"max_failed_logins": 3, "require_mfa_for": ["admin"]})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
    return await start_app(settings)


async def test_with_two_factor_on_a_password_alone_gives_only_an_mfa_token(
    client: httpx.AsyncClient,
) -> None:
    token = (await register(client, EMAIL))["token"]
    totp, codes = await enrol(client, token)
    assert len(codes) == 10 and len(set(codes)) == 10

    step = await login(client)
    assert step["mfaRequired"] is True and "token" not in step and "refreshToken" not in step

    done = await verify(client, step["mfaToken"], totp.now())
    assert done.status_code == 200, done.text
    session = done.json()
    assert {"user", "token", "refreshToken", "expiresIn", "expiresAt"} <= set(session)
    assert (await client.get("/api/auth/me", headers=bearer(session["token"]))).status_code == 200
    refreshed = await client.post(
        "/api/auth/refresh", json={"refreshToken": session["refreshToken"]}
    )
    assert refreshed.status_code == 200, refreshed.text


async def test_the_mfa_token_is_refused_as_an_access_token(client: httpx.AsyncClient) -> None:
    token = (await register(client, EMAIL))["token"]
    await enrol(client, token)
    mfa_token = (await login(client))["mfaToken"]
    response = await client.get("/api/auth/me", headers=bearer(mfa_token))
    assert response.status_code == 401
    assert error_of(response)["message"] == NOT_A_SESSION
    # Nor as the session cookie of a page's script.
    client.cookies.set("clipsync_session", mfa_token)
    response = await client.get("/api/auth/me")
    client.cookies.clear()
    assert response.status_code == 401
    assert error_of(response)["message"] == NOT_A_SESSION


async def test_a_code_works_once_within_one_step_either_side(client: httpx.AsyncClient) -> None:
    token = (await register(client, EMAIL))["token"]
    totp, _ = await enrol(client, token)
    mfa_token = (await login(client))["mfaToken"]
    too_far = await verify(client, mfa_token, totp.at(time.time() + 60))
    assert too_far.status_code == 401
    code = totp.now()
    assert (await verify(client, mfa_token, code)).status_code == 200
    # The same code again, even from a fresh password step, is refused.
    again = await verify(client, (await login(client))["mfaToken"], code)
    assert again.status_code == 401
    assert "already used" in error_of(again)["message"]
    # The next step's code (a phone clock a little ahead) still works.
    ahead = await verify(client, (await login(client))["mfaToken"], totp.at(time.time() + 30))
    assert ahead.status_code == 200, ahead.text


async def test_a_recovery_code_signs_in_once(client: httpx.AsyncClient) -> None:
    token = (await register(client, EMAIL))["token"]
    _, codes = await enrol(client, token)
    first = await verify(client, (await login(client))["mfaToken"], codes[0].upper())
    assert first.status_code == 200, first.text
    again = await verify(client, (await login(client))["mfaToken"], codes[0])
    assert again.status_code == 401
    user = await User.get(email=EMAIL)
    assert await RecoveryCode.filter(user_id=user.id, used_at__isnull=True).count() == 9
    # Only hashes are kept.
    stored = await RecoveryCode.filter(user_id=user.id).values_list("code_hash", flat=True)
    assert not {c.replace("-", "") for c in codes} & set(stored)


async def test_wrong_codes_make_the_account_wait(
    limited: tuple[ClipSyncApp, httpx.AsyncClient],
) -> None:
    _, client = limited
    token = (await register(client, EMAIL))["token"]
    totp, _ = await enrol(client, token)
    mfa_token = (await login(client))["mfaToken"]
    wrong = "000000" if totp.now() != "000000" else "111111"
    statuses = [(await verify(client, mfa_token, wrong)).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    # Now even the right code waits: guessing cannot go on at full speed.
    held = await verify(client, mfa_token, totp.now())
    assert held.status_code == 429
    assert int(held.headers["retry-after"]) > 0


async def test_the_secret_is_sealed_at_rest_with_a_key_kept_mode_600(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    token = (await register(client, EMAIL))["token"]
    setup = (await client.post("/api/auth/mfa/totp/setup", headers=bearer(token))).json()
    user = await User.get(email=EMAIL)
    assert user.totp_secret and setup["secret"] not in user.totp_secret
    assert user.totp_enabled_at is None  # not on until a code confirms it
    key = app.ctx.settings.data_dir / "secrets" / "two_factor.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


async def test_turning_off_needs_the_password_and_a_code(client: httpx.AsyncClient) -> None:
    token = (await register(client, EMAIL))["token"]
    totp, _ = await enrol(client, token)
    wrong = await client.request(
        "DELETE",
        "/api/auth/mfa/totp",
        json={"password": "not the password", "code": totp.now()},
        headers=bearer(token),
    )
    assert wrong.status_code == 401
    assert (await User.get(email=EMAIL)).totp_enabled_at is not None
    off = await client.request(
        "DELETE",
        "/api/auth/mfa/totp",
        json={"password": PASSWORD, "code": totp.now()},
        headers=bearer(token),
    )
    assert off.status_code == 204, off.text
    user = await User.get(email=EMAIL)
    assert user.totp_enabled_at is None and user.totp_secret is None
    assert not await RecoveryCode.filter(user_id=user.id).exists()
    assert "token" in await login(client)


async def test_a_required_role_enrols_at_sign_in_with_its_token_only(
    limited: tuple[ClipSyncApp, httpx.AsyncClient],
) -> None:
    app, client = limited
    await app.ctx.accounts.create_user("root@example.org", PASSWORD, role=Role.ADMIN)
    step = await login(client, "root@example.org")
    assert step == {"mfaEnrolmentRequired": True, "mfaToken": step["mfaToken"]}
    # The enrolment token is no code step, and no session either.
    wrong_step = await verify(client, step["mfaToken"], "123456")
    assert error_of(wrong_step)["message"] == TOKEN_EXPIRED
    assert (await client.get("/api/auth/me", headers=bearer(step["mfaToken"]))).status_code == 401
    body = {"mfaToken": step["mfaToken"]}
    setup = await client.post("/api/auth/mfa/totp/setup", json=body)
    assert setup.status_code == 200, setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    done = await client.post("/api/auth/mfa/totp/confirm", json={**body, "code": totp.now()})
    assert done.status_code == 200, done.text
    assert len(done.json()["recoveryCodes"]) == 10
    token = done.json()["token"]
    assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 200
    # From now on the admin signs in with a code, and may not turn it off.
    step = await login(client, "root@example.org")
    assert step["mfaRequired"] is True
    # A code step's token does not open enrolment either.
    again = await client.post("/api/auth/mfa/totp/setup", json={"mfaToken": step["mfaToken"]})
    assert again.status_code == 401
    off = await client.request(
        "DELETE",
        "/api/auth/mfa/totp",
        json={"password": PASSWORD, "code": totp.at(time.time() + 30)},
        headers=bearer(token),
    )
    assert off.status_code == 403


async def test_an_admin_resets_two_factor_audited_and_ends_the_sessions(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    token = (await register(client, EMAIL))["token"]
    await enrol(client, token)
    user = await User.get(email=EMAIL)
    admin = await app.ctx.accounts.create_user("root@example.org", PASSWORD, role=Role.ADMIN)
    admin_token = (await login(client, "root@example.org"))["token"]

    refused = await client.delete(f"/api/admin/users/{admin.id}/mfa", headers=bearer(token))
    assert refused.status_code == 403
    reset = await client.delete(f"/api/admin/users/{user.id}/mfa", headers=bearer(admin_token))
    assert reset.status_code == 204, reset.text

    assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 401
    assert "token" in await login(client)  # the password alone signs in again
    entry = await AuditEntry.get(action="two_factor_reset")
    assert entry.target_user_id == user.id and entry.actor_id == admin.id  # type: ignore[attr-defined]


def test_turning_two_factor_on_or_off_is_a_security_message() -> None:
    on = account_message(Event("account.two_factor_changed", {"userId": 7, "enabled": True}))
    off = account_message(Event("account.two_factor_changed", {"userId": 7, "enabled": False}))
    assert on is not None and off is not None
    assert "turned on" in on.title and "turned off" in off.title


def test_a_generated_key_is_made_once_mode_600_and_the_first_writer_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secrets" / "some.key"
    first = generated_keys.load_or_create(path, 32)
    assert len(first) >= 43 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert generated_keys.load_or_create(path, 32) == first
    # A process that found no file, but another wrote one meanwhile: the first key stays.
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda p: p != path and real_exists(p))
    assert generated_keys.load_or_create(path, 32) == first
    assert [p.name for p in path.parent.iterdir()] == ["some.key"]  # no draft left


async def test_recovery_codes_are_ten_characters_that_survive_cleaning(
    client: httpx.AsyncClient,
) -> None:
    # They were base64 once: a "-" in one was dropped as typing noise, and it never worked.
    token = (await register(client, EMAIL))["token"]
    _, codes = await enrol(client, token)
    assert len(codes) == 10
    for code in codes:
        plain = code.replace("-", "", 1)  # shown as two groups of five
        assert len(plain) == 10 and set(plain) <= set(RECOVERY_ALPHABET), code
