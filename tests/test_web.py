from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, register

from clipsync.context import ClipSyncApp
from clipsync.models import Role, User
from clipsync.sessions import CSRF_COOKIE, SESSION_COOKIE


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    """Open a form page as a browser would and return the form's CSRF token."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "the form has no CSRF field"
    assert client.cookies.get(CSRF_COOKIE) == token.group(1)
    return token.group(1)


async def make_admin(app: ClipSyncApp) -> None:
    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)


async def test_a_fresh_install_sends_every_page_to_set_up(client: httpx.AsyncClient) -> None:
    for path in ("/", "/login", "/register"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/setup"


async def test_set_up_creates_the_first_admin_and_signs_in(client: httpx.AsyncClient) -> None:
    token = await csrf(client, "/setup")
    response = await client.post(
        "/setup",
        data={
            "csrf_token": token,
            "email": "Boss@Example.org",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    admin = await User.get(email="boss@example.org")
    assert admin.role == Role.ADMIN
    home = await client.get("/")
    assert "Welcome, boss" in home.text
    # Once an admin exists, set-up is closed.
    again = await client.get("/setup")
    assert again.status_code == 303 and again.headers["location"] == "/login"


async def test_set_up_refuses_when_an_admin_exists(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    token = await csrf(client, "/setup")
    await make_admin(app)
    response = await client.post(
        "/setup",
        data={
            "csrf_token": token,
            "email": "late@example.org",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert response.status_code == 409
    assert "already set up" in response.text
    assert not await User.exists(email="late@example.org")


async def test_set_up_form_keeps_the_email_and_explains_a_mismatch(
    client: httpx.AsyncClient,
) -> None:
    token = await csrf(client, "/setup")
    response = await client.post(
        "/setup",
        data={
            "csrf_token": token,
            "email": "boss@example.org",
            "password": PASSWORD,
            "password_confirm": "other password",
        },
    )
    assert response.status_code == 422
    assert "do not match" in response.text
    assert 'value="boss@example.org"' in response.text
    assert PASSWORD not in response.text


async def test_forms_without_the_csrf_token_are_refused(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await make_admin(app)
    await client.get("/login")  # the browser has a CSRF cookie, but the post lacks the field
    response = await client.post(
        "/login", data={"email": "admin@example.org", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "expired" in response.text
    forged = await client.post(
        "/login", data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": "guess"}
    )
    assert forged.status_code == 403


async def test_cookie_authenticated_api_calls_need_the_csrf_header(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await make_admin(app)
    token = await csrf(client, "/login")
    await client.post(
        "/login", data={"csrf_token": token, "email": "admin@example.org", "password": PASSWORD}
    )
    assert (await client.get("/api/auth/me")).status_code == 200  # reads need no token
    assert (await client.post("/api/auth/logout")).status_code == 403
    # Signing in replaced the token; the page's scripts read the new one from the cookie.
    fresh = client.cookies[CSRF_COOKIE]
    assert (
        await client.post("/api/auth/logout", headers={"X-CSRF-Token": fresh})
    ).status_code == 204


async def test_register_sign_out_and_sign_in_through_the_pages(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await make_admin(app)
    token = await csrf(client, "/register")
    registered = await client.post(
        "/register",
        data={
            "csrf_token": token,
            "email": "ann@example.org",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert registered.status_code == 303
    assert "Welcome, ann" in (await client.get("/")).text

    signed_out = await client.post("/logout", data={"csrf_token": client.cookies[CSRF_COOKIE]})
    assert signed_out.headers["location"] == "/login"
    assert (await client.get("/")).headers["location"] == "/login?next=/"

    token = await csrf(client, "/login?next=/")
    wrong = await client.post(
        "/login",
        data={"csrf_token": token, "email": "ann@example.org", "password": "not it at all"},
    )
    assert wrong.status_code == 401
    assert 'role="alert"' in wrong.text and "Email or password is incorrect." in wrong.text

    right = await client.post(
        "/login",
        data={
            "csrf_token": token,
            "email": "ann@example.org",
            "password": PASSWORD,
            "next": "/-/plugins",
        },
    )
    assert right.headers["location"] == "/-/plugins"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
async def test_sign_in_never_redirects_off_site(
    app: ClipSyncApp, client: httpx.AsyncClient, target: str
) -> None:
    await make_admin(app)
    token = await csrf(client, "/login")
    response = await client.post(
        "/login",
        data={
            "csrf_token": token,
            "email": "admin@example.org",
            "password": PASSWORD,
            "next": target,
        },
    )
    assert response.headers["location"] == "/"


async def test_a_stale_cookie_sends_pages_to_sign_in(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await make_admin(app)
    client.cookies.set(SESSION_COOKIE, "not-a-token")
    response = await client.get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


async def test_unknown_pages_get_the_friendly_error_page(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await make_admin(app)
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text


async def test_the_registration_page_lists_self_selectable_categories(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = make_settings(
        category=[
            {"name": "staff", "label": "Staff", "self_select": True, "default": True},
            {"name": "dealers", "label": "Dealers", "self_select": True},
            {"name": "board", "label": "Board"},
        ]
    )
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    await make_admin(app)
    page = (await client.get("/register")).text
    assert 'name="categoryRole"' in page and "Dealers" in page and "Board" not in page


async def test_static_files_are_served_with_cache_headers(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    await make_admin(app)
    css = await client.get("/static/css/clipsync.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "max-age" in css.headers["cache-control"]
    vendor = await client.get("/static/vendor/hls.min.js")
    assert vendor.status_code == 200, "run `make assets` (npm) to bundle hls.js"
    assert (await client.get("/static/../../config.toml")).status_code == 404
    assert (await client.get("/static/%2e%2e/%2e%2e/pyproject.toml")).status_code == 404


async def test_a_theme_overrides_only_what_it_changes(
    start_app, make_settings, migrated_sqlite: Path, tmp_path: Path
) -> None:
    theme = tmp_path / "themes" / "bright"
    (theme / "templates").mkdir(parents=True)
    (theme / "static" / "css").mkdir(parents=True)
    (theme / "theme.toml").write_text('name = "bright"\nlabel = "Bright"\n')
    (theme / "templates" / "base.html").write_text(
        '{% extends "default:base.html" %}'
        '{% block head %}<meta name="theme" content="bright">{% endblock %}'
    )
    (theme / "static" / "css" / "clipsync.css").write_text("body { color: orange; }")
    settings = make_settings(web={"theme": "bright", "themes_dirs": [str(tmp_path / "themes")]})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    await make_admin(app)
    login = (await client.get("/login")).text
    assert '<meta name="theme" content="bright">' in login  # the theme's base
    assert 'name="password"' in login  # the default theme's login form
    assert (await client.get("/static/css/clipsync.css")).text == "body { color: orange; }"


async def test_pages_work_on_a_phone(app: ClipSyncApp, client: httpx.AsyncClient) -> None:
    await make_admin(app)
    page = (await client.get("/login")).text
    assert 'name="viewport"' in page and 'lang="en"' in page
    for field in ("email", "password"):
        assert f'for="{field}"' in page, f"{field} has no label"


async def test_api_users_are_not_sent_to_set_up(client: httpx.AsyncClient) -> None:
    await register(client, "early@example.org")
    assert (await client.get("/healthz")).status_code == 200
