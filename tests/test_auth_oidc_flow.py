"""Single sign-on against a real OpenID provider (npm's oidc-provider, tests/oidc.py).

ClipSync runs in-process (the ASGI client is the browser for ClipSync); httpx plays
the person at the provider, filling its login and consent forms. The provider
requires PKCE, so every sign-in that works here sent it. Failures must show a
reason and leave no account, link or session behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from clients import PASSWORD, bearer
from conftest import AppFactory, SettingsFactory
from oidc import OidcProvider, sign_in_at_provider

from clipsync.context import ClipSyncApp
from clipsync.models import AuditEntry, AuthSession, ExternalIdentity, PasswordReset, Role, User
from clipsync.services import passwords
from clipsync.sessions import REFRESH_COOKIE, SESSION_COOKIE

REDIRECT = "http://clipsync.test/-/auth_oidc/callback"
CATEGORIES = [
    {"name": "general", "label": "General", "self_select": True, "default": True},
    {"name": "sales", "label": "Sales"},
    {"name": "staff", "label": "Staff"},
]
MAPPING = {
    "button_label": "Sign in with Example ID",
    "category_claim": "department",
    "category_values": {"Sales": "sales", "Engineering": "staff"},
    "role_groups": {"video-editors": "editor", "clipsync-admins": "admin"},
}
ROOT = "root@example.org"


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with OidcProvider([REDIRECT]) as server:
        yield server


Site = tuple[ClipSyncApp, httpx.AsyncClient]


@pytest.fixture
def start_site(
    start_app: AppFactory,
    make_settings: SettingsFactory,
    migrated_sqlite: Path,
    provider: OidcProvider,
):
    async def start(**changes: Any) -> Site:
        settings = make_settings(
            category=CATEGORIES,
            plugins={"auth_oidc": provider.config(**(MAPPING | changes))},
            quotas={"registrations_per_address_per_hour": 0},
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_sqlite, settings.data_dir / "clipsync.sqlite3")
        app, client = await start_app(settings)
        await app.ctx.accounts.create_user(ROOT, PASSWORD, role=Role.ADMIN)  # set up
        return app, client

    return start


@pytest.fixture
async def site(start_site) -> Site:
    return await start_site()


async def begin(client: httpx.AsyncClient, next_path: str | None = None) -> str:
    """Press the button: the provider's authorization URL ClipSync sends the browser to."""
    query = f"?{urlencode({'next': next_path})}" if next_path else ""
    response = await client.get(f"/-/auth_oidc/login{query}")
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def sso(
    client: httpx.AsyncClient, login: str, next_path: str | None = None, **at_provider: Any
) -> httpx.Response:
    """A whole single sign-on as `login`; ClipSync's answer to the callback."""
    back = await sign_in_at_provider(await begin(client, next_path), REDIRECT, login, **at_provider)
    return await client.get(back)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


async def nothing_made(email: str) -> None:
    assert not await User.filter(email=email).exists()
    assert await ExternalIdentity.all().count() == 0


async def test_the_sign_in_page_shows_the_providers_button(site: Site) -> None:
    _app, client = site
    page = await client.get("/login?next=/watch/7")
    assert "Sign in with Example ID" in page.text
    assert 'href="/-/auth_oidc/login?next=/watch/7"' in page.text
    assert "<details" not in page.text  # passwords are for everyone here


async def test_a_first_sign_in_creates_the_person_in_the_mapped_category_with_a_session(
    site: Site, provider: OidcProvider
) -> None:
    _app, client = site
    provider.set_account(
        "ann", email="Ann@Example.org", email_verified=True, name="Ann Example",
        groups=["video-editors"], department="Sales",
    )  # fmt: skip
    authorize = await begin(client, "/watch/42")
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["state"][0] and query["nonce"][0] and query["redirect_uri"] == [REDIRECT]
    back = await sign_in_at_provider(authorize, REDIRECT, "ann")
    answer = await client.get(back)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/watch/42"
    cookies = answer.headers.get_list("set-cookie")
    assert any(c.startswith(f"{SESSION_COOKIE}=") for c in cookies)
    assert any(c.startswith(f"{REFRESH_COOKIE}=") for c in cookies)
    user = await User.get(email="ann@example.org")
    assert (user.category, user.role, user.display_name) == ("sales", Role.EDITOR, "Ann Example")
    identity = await ExternalIdentity.get(user_id=user.id)
    assert (identity.issuer, identity.subject, identity.provider) == (
        provider.issuer, "ann", "auth_oidc",
    )  # fmt: skip
    # An ordinary ClipSync session: the API knows them, and lists the session.
    me = await client.get("/api/auth/me")
    assert me.json()["user"]["categoryRole"] == "sales"
    assert len((await client.get("/api/auth/sessions")).json()["sessions"]) == 1
    # The callback cannot be used twice: its cookie is gone.
    again = await client.get(back)
    assert again.status_code == 403 and "expired or was started" in again.text


async def test_a_second_sign_in_follows_the_changed_claims_and_ends_the_old_sessions(
    site: Site, provider: OidcProvider
) -> None:
    _app, client = site
    provider.set_account(
        "bo", email="bo@example.org", email_verified=True, groups=["video-editors"],
        department="Sales",
    )  # fmt: skip
    assert (await sso(client, "bo")).status_code == 303
    first = client.cookies.get(SESSION_COOKIE)
    first_refresh = client.cookies.get(REFRESH_COOKIE)
    assert (await client.get("/api/auth/me", headers=bearer(first))).status_code == 200
    provider.set_account(
        "bo", email="bo@example.org", email_verified=True, department="Engineering"
    )
    assert (await sso(client, "bo")).status_code == 303
    user = await User.get(email="bo@example.org")
    assert (user.category, user.role) == ("staff", Role.USER)
    refused = await client.get("/api/auth/me", headers=bearer(first))
    assert refused.status_code == 401  # the old session ended with the change
    second = client.cookies.get(SESSION_COOKIE)
    client.cookies.clear()  # a script now, holding the first sign-in's refresh token
    renewed = await client.post("/api/auth/refresh", json={"refreshToken": first_refresh})
    assert renewed.status_code == 401  # and cannot be renewed either
    assert (await client.get("/api/auth/me", headers=bearer(second))).json()["user"][
        "categoryRole"
    ] == "staff"
    entry = await AuditEntry.filter(target_user_id=user.id, action="user_update").get()
    assert entry.reason == "single sign-on"
    assert entry.details["categoryRole"] == {"old": "sales", "new": "staff"}
    # Unchanged claims change nothing: the session goes on.
    assert (await sso(client, "bo")).status_code == 303
    assert (await client.get("/api/auth/me", headers=bearer(second))).status_code == 200
    assert await AuditEntry.filter(target_user_id=user.id).count() == 1


async def test_an_existing_account_is_linked_only_by_a_verified_email(
    site: Site, provider: OidcProvider
) -> None:
    app, client = site
    local = await app.ctx.accounts.create_user("cy@example.org", PASSWORD, category="sales")
    provider.set_account("cy", email="cy@example.org", email_verified=False, department="Sales")
    refused = await sso(client, "cy")
    assert refused.status_code == 403 and "has not confirmed" in refused.text
    assert SESSION_COOKIE not in client.cookies
    assert await ExternalIdentity.all().count() == 0
    provider.set_account("cy", email="cy@example.org", email_verified=True, department="Sales")
    assert (await sso(client, "cy")).status_code == 303
    assert (await ExternalIdentity.get(subject="cy")).user_id == local.id
    assert await User.filter(email="cy@example.org").count() == 1
    # Their password still works as before (local passwords are allowed here).
    client.cookies.clear()  # a script, not this browser
    login = await client.post(
        "/api/auth/login", json={"email": "cy@example.org", "password": PASSWORD}
    )
    assert login.status_code == 200


async def test_a_wrong_state_or_issuer_or_a_lost_cookie_is_refused_and_changes_nothing(
    site: Site, provider: OidcProvider
) -> None:
    _app, client = site
    provider.set_account("di", email="di@example.org", email_verified=True, department="Sales")
    back = await sign_in_at_provider(await begin(client), REDIRECT, "di")
    wrong_state = await client.get(with_query(back, state="not-the-one-sent"))
    assert wrong_state.status_code == 403 and "wrong state" in wrong_state.text
    wrong_issuer = await client.get(with_query(back, iss="https://evil.example.org"))
    assert wrong_issuer.status_code == 403 and "wrong issuer" in wrong_issuer.text
    client.cookies.clear()  # another browser brings the callback
    lost = await client.get(back)
    assert lost.status_code == 403 and "expired or was started" in lost.text
    await nothing_made("di@example.org")


async def test_an_error_from_the_provider_is_shown_and_changes_nothing(
    site: Site, provider: OidcProvider
) -> None:
    _app, client = site
    provider.set_account("ed", email="ed@example.org", email_verified=True, department="Sales")
    answer = await sso(client, "ed", abort=True)
    assert answer.status_code == 403
    assert "did not sign you in: End-User aborted interaction" in answer.text
    await nothing_made("ed@example.org")


async def test_a_category_value_with_no_mapping_and_no_default_is_refused(
    site: Site, provider: OidcProvider
) -> None:
    _app, client = site
    provider.set_account("fa", email="fa@example.org", email_verified=True, department="Legal")
    answer = await sso(client, "fa")
    assert answer.status_code == 403 and "department = &#39;Legal&#39;" in answer.text
    await nothing_made("fa@example.org")


async def test_a_deactivated_account_cannot_sign_in(site: Site, provider: OidcProvider) -> None:
    _app, client = site
    provider.set_account("gu", email="gu@example.org", email_verified=True, department="Sales")
    assert (await sso(client, "gu")).status_code == 303
    await User.filter(email="gu@example.org").update(is_active=False)
    client.cookies.clear()
    answer = await sso(client, "gu")
    assert answer.status_code == 403 and "deactivated" in answer.text
    assert SESSION_COOKIE not in client.cookies


async def test_claims_never_demote_the_last_administrator(
    site: Site, provider: OidcProvider
) -> None:
    _app, client = site
    provider.set_account("root", email=ROOT, email_verified=True, groups=[], department="Sales")
    assert (await sso(client, "root")).status_code == 303
    root = await User.get(email=ROOT)
    assert (root.role, root.category) == (Role.ADMIN, "sales")


async def test_a_provider_that_is_not_the_configured_issuer_is_refused(
    start_site, provider: OidcProvider
) -> None:
    # The same provider under another name: its discovery document names its issuer.
    _app, client = await start_site(issuer=provider.issuer.replace("127.0.0.1", "localhost"))
    answer = await client.get("/-/auth_oidc/login")
    assert answer.status_code == 503, answer.text
    assert "calls itself" in answer.text
    await nothing_made("nobody@example.org")


async def test_hook_local_password_refused_keeps_passwords_for_administrators(
    start_site, provider: OidcProvider
) -> None:
    app, client = await start_site(allow_local_passwords=False)
    await app.ctx.accounts.create_user("hal@example.org", PASSWORD, category="sales")
    page = await client.get("/login")
    assert "<details" in page.text and "Administrators: sign in with a password" in page.text
    assert "Create an account" not in page.text
    wrong = await client.post(
        "/api/auth/login", json={"email": "hal@example.org", "password": "x" * 12}
    )
    assert wrong.status_code == 401  # a wrong password tells nothing more
    right = await client.post(
        "/api/auth/login", json={"email": "hal@example.org", "password": PASSWORD}
    )
    assert (
        right.status_code == 403 and "Sign in with Example ID" in right.json()["error"]["message"]
    )
    registered = await client.post(
        "/api/auth/register", json={"email": "new@example.org", "password": PASSWORD}
    )
    assert registered.status_code == 403
    assert not await User.filter(email="new@example.org").exists()
    admin = await client.post("/api/auth/login", json={"email": ROOT, "password": PASSWORD})
    assert admin.status_code == 200  # the way in when the provider is down
    assert await AuthSession.filter(user__email="hal@example.org").count() == 0


async def test_without_local_passwords_change_and_reset_are_refused_too(start_site) -> None:
    app, client = await start_site(allow_local_passwords=False)
    hal = await app.ctx.accounts.create_user("hal@example.org", PASSWORD, category="sales")
    before = hal.password_hash
    token = app.ctx.accounts.start_session(hal).token
    changed = await client.post(
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "a much longer secret 42"},
        headers=bearer(token),
    )
    assert changed.status_code == 403, changed.text
    # A link made before the setting changed no longer works either.
    await PasswordReset.create(
        token_hash=passwords.hash_token("old-link"),
        user_id=hal.id,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        address="127.0.0.1",
    )
    reset = await client.post(
        "/api/auth/password/reset",
        json={"token": "old-link", "password": "a much longer secret 42"},
    )
    assert reset.status_code == 403, reset.text
    # Asking for a link answers as always, and makes none.
    asked = await client.post("/api/auth/password/forgot", json={"email": "hal@example.org"})
    assert asked.status_code == 202
    assert await PasswordReset.filter(user_id=hal.id).count() == 1
    assert (await User.get(id=hal.id)).password_hash == before


async def test_the_doctor_says_whether_the_provider_answers(
    make_settings: SettingsFactory, provider: OidcProvider
) -> None:
    from clipsync_auth_oidc import doctor_checks

    from clipsync.plugins import create_plugin_host

    def host(**changes: Any):
        settings = make_settings(plugins={"auth_oidc": provider.config(**changes)})
        return create_plugin_host(settings, load_entry_points=False)

    [good] = await doctor_checks(host())
    assert good.ok and "http://clipsync.test/-/auth_oidc/callback" in good.detail
    [bad] = await doctor_checks(host(issuer=provider.issuer.replace("127.0.0.1", "localhost")))
    assert not bad.ok and bad.required and "calls itself 'http://127.0.0.1" in bad.detail
    [away] = await doctor_checks(host(issuer=provider.issuer + "/elsewhere"))
    assert not away.ok and "HTTP 404" in away.detail and "/elsewhere/.well-known/" in away.detail
