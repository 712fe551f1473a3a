from __future__ import annotations

import base64
import json
import time

import bcrypt
import httpx
import jwt
import pytest
from clients import PASSWORD, bearer, error_of, register

from clipsync.context import ClipSyncApp
from clipsync.models import RevokedToken, Role, User

CATEGORIES = [
    {"name": "employees", "label": "Employees", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
    {"name": "board", "label": "Board"},
]


def signing_key(app: ClipSyncApp) -> str:
    return (app.ctx.settings.data_dir / "secrets" / "jwt.key").read_text().strip()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# --- registration -------------------------------------------------------------------


async def test_register_returns_user_and_token_never_the_hash(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": "  Ann@Example.ORG ", "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["user"] == {
        "id": body["user"]["id"],
        "email": "ann@example.org",
        "role": "user",
        "categoryRole": "general",
        "displayName": "ann",
        "avatarUrl": None,
    }
    assert "hash" not in response.text and "$2b$" not in response.text
    claims = claims_of(body["token"])
    assert {"id", "email", "role", "categoryRole", "tokenVersion", "exp"} <= set(claims)
    assert claims["email"] == "ann@example.org" and claims["tokenVersion"] == 1


async def test_password_is_stored_as_a_bcrypt_hash_with_the_configured_cost(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "cost@example.org")
    user = await User.get(email="cost@example.org")
    assert user.password_hash.startswith("$2b$04$")  # tests configure 4 rounds
    assert PASSWORD not in user.password_hash


async def test_duplicate_email_is_a_conflict_whatever_its_case(client: httpx.AsyncClient) -> None:
    await register(client, "dup@example.org")
    response = await client.post(
        "/api/auth/register", json={"email": "DUP@example.org", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert await User.filter(email="dup@example.org").count() == 1


@pytest.mark.parametrize(
    "email", ["", "no-at-sign", "a@b", "two@@example.org", "sp ace@example.org", 42, None]
)
async def test_malformed_email_is_refused(client: httpx.AsyncClient, email: object) -> None:
    response = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "email"
    assert await User.all().count() == 0


async def test_short_password_is_refused_with_the_minimum(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": "s@example.org", "password": "short"}
    )
    assert response.status_code == 422
    assert "at least 8 characters" in response.json()["error"]["message"]
    assert await User.all().count() == 0


async def test_registration_picks_only_self_selectable_categories(
    start_app, make_settings, migrated_sqlite
) -> None:
    settings = make_settings(category=CATEGORIES)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    _, client = await start_app(settings)
    assert (await register(client, "d@example.org", categoryRole="dealers"))["user"][
        "categoryRole"
    ] == "dealers"
    assert (await register(client, "e@example.org"))["user"]["categoryRole"] == "employees"
    refused = await client.post(
        "/api/auth/register",
        json={"email": "b@example.org", "password": PASSWORD, "categoryRole": "board"},
    )
    assert refused.status_code == 422
    assert "employees, dealers" in refused.json()["error"]["message"]
    unknown = await client.post(
        "/api/auth/register",
        json={"email": "u@example.org", "password": PASSWORD, "categoryRole": "nope"},
    )
    assert unknown.status_code == 422


async def test_closed_registration_refuses_sign_ups(
    start_app, make_settings, migrated_sqlite
) -> None:
    settings = make_settings(auth={"registration": "closed"})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    _, client = await start_app(settings)
    response = await client.post(
        "/api/auth/register", json={"email": "x@example.org", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "closed" in response.json()["error"]["message"]


# --- signing in ----------------------------------------------------------------------


async def test_login_me_and_logout(client: httpx.AsyncClient) -> None:
    await register(client, "ann@example.org")
    login = await client.post(
        "/api/auth/login", json={"email": "ANN@example.org", "password": PASSWORD}
    )
    assert login.status_code == 200
    token = login.json()["token"]
    me = await client.get("/api/auth/me", headers=bearer(token))
    assert me.json() == {"user": login.json()["user"]}
    assert (await client.post("/api/auth/logout", headers=bearer(token))).status_code == 204
    after = await client.get("/api/auth/me", headers=bearer(token))
    assert after.status_code == 401
    assert await RevokedToken.all().count() == 1
    # Signing out ends that session only.
    other = await client.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}
    )
    assert (
        await client.get("/api/auth/me", headers=bearer(other.json()["token"]))
    ).status_code == 200


async def test_failed_login_does_not_say_which_part_was_wrong(client: httpx.AsyncClient) -> None:
    await register(client, "ann@example.org")
    wrong_password = await client.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": "nope nope"}
    )
    unknown_email = await client.post(
        "/api/auth/login", json={"email": "bob@example.org", "password": PASSWORD}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert error_of(wrong_password) == error_of(unknown_email)


async def test_repeated_failures_make_that_address_wait(client: httpx.AsyncClient) -> None:
    # No account is locked any more (tests/security/test_lockout_privacy.py): the
    # address that failed waits `login_delay_seconds` (30) before its next try.
    await register(client, "ann@example.org")
    for _ in range(5):
        r = await client.post(
            "/api/auth/login", json={"email": "ann@example.org", "password": "wrong pass"}
        )
        assert r.status_code == 401
    waiting = await client.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}
    )
    assert waiting.status_code == 429
    assert 0 < int(waiting.headers["Retry-After"]) <= 31
    assert "wait" in waiting.json()["error"]["message"]
    user = await User.get(email="ann@example.org")
    assert user.locked_until is not None and user.failed_logins == 5


async def test_lock_expires_and_success_resets_the_count(client: httpx.AsyncClient) -> None:
    await register(client, "ann@example.org")
    for _ in range(4):
        await client.post(
            "/api/auth/login", json={"email": "ann@example.org", "password": "wrong pass"}
        )
    ok = await client.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}
    )
    assert ok.status_code == 200
    assert (await User.get(email="ann@example.org")).failed_logins == 0
    await User.filter(email="ann@example.org").update(locked_until=None, failed_logins=0)


async def test_repeated_failures_from_one_address_are_rate_limited(
    client: httpx.AsyncClient,
) -> None:
    for n in range(20):
        r = await client.post(
            "/api/auth/login", json={"email": f"u{n}@example.org", "password": "wrong pass"}
        )
        assert r.status_code == 401
    limited = await client.post(
        "/api/auth/login", json={"email": "u@example.org", "password": "wrong pass"}
    )
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0


async def test_inactive_account_cannot_sign_in_or_use_its_token(client: httpx.AsyncClient) -> None:
    token = (await register(client, "ann@example.org"))["token"]
    await User.filter(email="ann@example.org").update(is_active=False)
    assert (await client.get("/api/auth/me", headers=bearer(token))).status_code == 401
    login = await client.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}
    )
    assert login.status_code == 403


# --- tokens ---------------------------------------------------------------------------


async def test_missing_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_tampered_token_is_refused(client: httpx.AsyncClient) -> None:
    token = (await register(client, "ann@example.org"))["token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    response = await client.get("/api/auth/me", headers=bearer(f"{header}.{forged}.{signature}"))
    assert response.status_code == 401


async def test_expired_token_is_refused(app: ClipSyncApp, client: httpx.AsyncClient) -> None:
    token = (await register(client, "ann@example.org"))["token"]
    claims = claims_of(token) | {"exp": int(time.time()) - 10}
    expired = jwt.encode(claims, signing_key(app), algorithm="HS256")
    response = await client.get("/api/auth/me", headers=bearer(expired))
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


async def test_alg_none_token_is_refused(client: httpx.AsyncClient) -> None:
    token = (await register(client, "ann@example.org"))["token"]
    unsigned = jwt.encode(claims_of(token), key=None, algorithm="none")
    assert (await client.get("/api/auth/me", headers=bearer(unsigned))).status_code == 401


async def test_token_signed_with_another_algorithm_is_refused(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    token = (await register(client, "ann@example.org"))["token"]
    other = jwt.encode(claims_of(token), signing_key(app), algorithm="HS512")
    assert (await client.get("/api/auth/me", headers=bearer(other))).status_code == 401


async def test_token_missing_a_claim_is_refused(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    token = (await register(client, "ann@example.org"))["token"]
    claims = claims_of(token)
    del claims["tokenVersion"]
    partial = jwt.encode(claims, signing_key(app), algorithm="HS256")
    assert (await client.get("/api/auth/me", headers=bearer(partial))).status_code == 401


async def test_token_of_a_previous_version_is_refused(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    token = (await register(client, "ann@example.org"))["token"]
    user = await User.get(email="ann@example.org")
    await app.ctx.accounts.end_all_sessions(user)
    response = await client.get("/api/auth/me", headers=bearer(token))
    assert response.status_code == 401
    assert "sign in again" in response.json()["error"]["message"]
    fresh = await client.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}
    )
    assert claims_of(fresh.json()["token"])["tokenVersion"] == 2


async def test_signing_key_is_generated_once_with_mode_600(app: ClipSyncApp) -> None:
    key_file = app.ctx.settings.data_dir / "secrets" / "jwt.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_text().strip()) >= 64


async def test_long_passphrases_count_in_full(app: ClipSyncApp) -> None:
    auth = app.ctx.backends.auth
    base = "x" * 80
    hashed = auth.hash_password(base + "1")
    assert auth.check_password(base + "1", hashed)
    assert not auth.check_password(base + "2", hashed)
    assert bcrypt.checkpw  # the hash is real bcrypt
    assert hashed.startswith("$2b$")


async def test_cli_created_admin_has_the_admin_role(app: ClipSyncApp) -> None:
    user = await app.ctx.accounts.create_user("root@example.org", PASSWORD, role=Role.ADMIN)
    assert user.role == Role.ADMIN and user.category == "general"


# --- request bodies ----------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"text"'])
async def test_malformed_bodies_are_400_not_500(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/api/auth/login", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "requestId"}


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/login",
        content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_unknown_api_address_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_wrong_method_is_json_405(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/login")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
