"""Finding 5: every answer carries the security headers, and private answers are not stored.

The headers are read off real responses of the app (pages, API, static files, media,
errors); the browser side (the pages still work under the policy, and Back after
signing out does not show a private page) is in test_headers_in_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, bearer, register
from services import S3Server

from clipsync.context import ClipSyncApp
from clipsync.models import Role

THEMES = Path(__file__).resolve().parents[2] / "themes"


def directives(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers.get("content-security-policy")
    assert policy, f"{response.request.url} has no Content-Security-Policy"
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_security_headers(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url} ({response.status_code})"
    csp = directives(response)
    assert csp["script-src"] == ["'self'"], where
    assert csp["style-src"] == ["'self'"], where
    assert csp["default-src"] == ["'self'"], where
    assert csp["frame-ancestors"] == ["'none'"], where
    assert csp["object-src"] == ["'none'"], where
    # The player: hls.js plays through Media Source Extensions (blob: URLs).
    assert "blob:" in csp["media-src"], where
    assert not any("unsafe" in v for values in csp.values() for v in values), where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "same-origin", where
    permissions = response.headers.get("permissions-policy", "")
    for denied in ("camera=()", "microphone=()", "geolocation=()"):
        assert denied in permissions, where
    for kept in ("fullscreen=(self)", "picture-in-picture=(self)"):
        assert kept in permissions, where


async def admin_token(app: ClipSyncApp) -> str:
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    return app.ctx.accounts.start_session(admin).token


async def test_every_kind_of_answer_carries_the_security_headers(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    token = await admin_token(app)
    answers = [
        await client.get("/login"),  # a page
        await client.get("/", headers=bearer(token)),  # a signed-in page
        await client.get("/api/auth/me", headers=bearer(token)),  # API data
        await client.get("/api/auth/me"),  # an API error
        await client.get("/no/such/page"),  # the error page
        await client.get("/static/css/clipsync.css"),  # a static file
        await client.get("/healthz"),
        await client.post("/api/auth/login", json={"email": "x@example.org", "password": "y"}),
    ]
    for answer in answers:
        assert_security_headers(answer)


async def test_signed_in_pages_and_api_answers_are_never_stored(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    token = await admin_token(app)
    for path in ("/", "/videos", "/upload", "/admin", "/admin/users", "/-/plugins"):
        page = await client.get(path, headers=bearer(token))
        assert page.status_code == 200, path
        assert page.headers.get("cache-control") == "no-store", path
    me = await client.get("/api/auth/me", headers=bearer(token))
    assert me.headers.get("cache-control") == "no-store"
    # The answer to a sign-in holds the token itself.
    session = await register(client, "ann@example.org")
    signed_in = await client.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}
    )
    assert signed_in.status_code == 200 and signed_in.json()["token"]
    assert signed_in.headers.get("cache-control") == "no-store"
    mine = await client.get("/api/videos?mine=1", headers=bearer(session["token"]))
    assert mine.headers.get("cache-control") == "no-store"


async def test_static_files_keep_their_own_caching(client: httpx.AsyncClient) -> None:
    css = await client.get("/static/css/clipsync.css")
    assert css.status_code == 200
    assert "max-age" in css.headers["cache-control"]
    assert "no-store" not in css.headers["cache-control"]


@pytest.mark.parametrize("playback", ["presigned", "proxy"])
async def test_media_from_the_object_store_is_allowed_only_with_presigned_playback(
    start_app, make_settings, migrated_sqlite: Path, s3_server: S3Server, playback: str
) -> None:
    settings = make_settings(
        storage={"backend": "s3", "playback": playback},
        plugins={"storage_s3": s3_server.plugin_table(bucket="csp-origin")},
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    _, client = await start_app(settings)
    csp = directives(await client.get("/login"))
    store = s3_server.url  # http://127.0.0.1:<port>, where presigned segments point
    for name in ("media-src", "connect-src", "img-src"):
        assert (store in csp[name]) is (playback == "presigned"), name
    assert store not in csp["script-src"] and store not in csp["default-src"]


# Markup the policy blocks: a <script> with code in it (data blocks of type
# application/json are not run, so they are fine), on…= handlers, style attributes,
# <style> elements and javascript: URLs.
INLINE = {
    "inline script": re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE
    ),
    "event handler attribute": re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE),
    "style attribute": re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE),
    "style element": re.compile(r"<style[\s>]", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


def page_templates() -> list[Path]:
    """Every template of a page. Mails (`emails/`) are not pages: mail clients ignore
    stylesheets, so mail templates style inline, and no browser policy applies."""
    return sorted(
        path for path in THEMES.glob("*/templates/**/*.html") if path.parent.name != "emails"
    )


@pytest.mark.parametrize(
    "template",
    page_templates(),
    ids=lambda p: str(p.relative_to(THEMES)),
)
def test_templates_have_nothing_inline_that_the_policy_blocks(template: Path) -> None:
    text = template.read_text()
    for what, pattern in INLINE.items():
        match = pattern.search(text)
        assert match is None, (
            f"{template}: {what} {match.group(0)!r}: the Content-Security-Policy blocks it; "
            "move it into the theme's static JS or CSS"
        )
