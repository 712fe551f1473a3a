"""Finding 9: links are built from `[server] public_url`, and unknown Host names are refused.

An invite link used to be built from the request's Host header, so `Host:
evil.example` handed the invitee `http://evil.example/register?invite=…`. Now every
absolute link starts with the configured public URL, and a request for a name
outside `[server] allowed_hosts` is refused with 400 before anything else runs:
through the app, and through a real `clipsync serve` on a socket.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import httpx
import pytest
from browser import LiveServer
from clients import PASSWORD, bearer

from clipsync.context import ClipSyncApp
from clipsync.errors import ConfigError
from clipsync.models import Role
from clipsync.settings import load_settings, parse_settings


async def admin_headers(app: ClipSyncApp) -> dict[str, str]:
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    return bearer(app.ctx.accounts.start_session(admin).token)


def with_database(settings, migrated_sqlite: Path):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    return settings


async def test_invite_links_start_with_the_public_url_not_the_host_header(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    # localhost is an allowed name: the request is served, and its Host is not used.
    headers = await admin_headers(app) | {"Host": "localhost:5555"}
    created = await client.post("/api/admin/invites", json={}, headers=headers)
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert created.json()["url"] == f"http://clipsync.test/register?invite={token}"


async def test_invite_links_use_the_public_url_whatever_the_host_header_says(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    # Every Host allowed, so only the way the link is built is on trial here.
    settings = with_database(
        make_settings(server={"public_url": "https://videos.example.org", "allowed_hosts": ["*"]}),
        migrated_sqlite,
    )
    app, client = await start_app(settings)
    headers = await admin_headers(app) | {"Host": "evil.example"}
    created = await client.post("/api/admin/invites", json={}, headers=headers)
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert created.json()["url"] == f"https://videos.example.org/register?invite={token}"
    assert "evil.example" not in created.text


async def test_requests_for_an_unknown_host_are_refused_with_400(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    headers = await admin_headers(app)
    forged = {"Host": "evil.example"}
    api = await client.post("/api/admin/invites", json={}, headers=headers | forged)
    assert api.status_code == 400
    assert api.json()["error"]["code"] == "unknown_host"
    assert "evil.example" in api.json()["error"]["message"]
    assert "allowed_hosts" in api.json()["error"]["message"]
    # Pages too, before any redirect is built (a fresh install would send to /setup).
    page = await client.get("/login", headers=forged)
    assert page.status_code == 400 and "location" not in page.headers
    assert "allowed_hosts" in page.text
    for host in ("clipsync.test.evil.example", "evil.example:80", "clipsync.test@evil.example"):
        answer = await client.get("/api/auth/me", headers=headers | {"Host": host})
        assert answer.status_code == 400, host
    # The configured name itself is served.
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:8000", "localhost", "localhost:9999", "[::1]", "[::1]:8000",
     "CLIPSYNC.TEST", "clipsync.test:8443", "clipsync.test."],
)  # fmt: skip
async def test_the_public_name_and_loopback_names_are_allowed_by_default(
    client: httpx.AsyncClient, host: str
) -> None:
    answer = await client.get("/healthz", headers={"Host": host})
    assert answer.status_code == 200, answer.text


async def test_allowed_hosts_replaces_the_default_list(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = with_database(
        make_settings(server={"allowed_hosts": ["videos.example.org", "clipsync.test:80"]}),
        migrated_sqlite,
    )
    _, client = await start_app(settings)
    assert (await client.get("/healthz", headers={"Host": "videos.example.org"})).status_code == 200
    assert (await client.get("/healthz", headers={"Host": "clipsync.test:80"})).status_code == 200
    assert (await client.get("/healthz", headers={"Host": "clipsync.test:81"})).status_code == 400
    assert (await client.get("/healthz", headers={"Host": "127.0.0.1"})).status_code == 400


def test_the_public_url_defaults_to_the_address_served_on() -> None:
    def server(**table: object):
        return parse_settings({"server": table}, where="test").server

    assert server().base_url == "http://127.0.0.1:8000"
    assert server(host="0.0.0.0", port=9000).base_url == "http://127.0.0.1:9000"
    assert server(host="::1", port=80).base_url == "http://[::1]"
    assert server(public_url="https://videos.example.org/").base_url == (
        "https://videos.example.org"
    )
    assert server(public_url="https://videos.example.org").host_names == (
        "videos.example.org",
        "127.0.0.1",
        "localhost",
        "[::1]",
    )


@pytest.mark.parametrize(
    "toml",
    [
        'public_url = "videos.example.org"',
        'public_url = "ftp://videos.example.org"',
        'public_url = "https://videos.example.org/clips"',
        'public_url = "https://user@videos.example.org"',
        'public_url = "http://[::1"',
        'allowed_hosts = ["videos.example.org/x"]',
        'allowed_hosts = ["evil example"]',
    ],
)
def test_bad_public_url_or_allowed_hosts_stop_start_up(tmp_path: Path, toml: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[server]\n{toml}\n")
    key = toml.split()[0]
    with pytest.raises(ConfigError, match=rf"\[server\] {key}"):
        load_settings(path, environ={})


def raw_request(server: LiveServer, host: str, path: str = "/healthz") -> tuple[int, str]:
    """GET `path` from the real server with exactly this Host header."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def test_a_real_server_refuses_a_forged_host_and_serves_its_own_names(
    live_server: LiveServer,
) -> None:
    status, body = raw_request(live_server, "evil.example")
    assert status == 400 and "allowed_hosts" in body, body
    status, body = raw_request(live_server, "evil.example", "/api/auth/me")
    assert status == 400 and json.loads(body)["error"]["code"] == "unknown_host", body
    for host in (f"127.0.0.1:{live_server.port}", f"localhost:{live_server.port}"):
        status, body = raw_request(live_server, host)
        assert status == 200, (host, body)
