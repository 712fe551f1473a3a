"""Finding 11, /healthz: its details are for admins and the host itself.

A monitor needs the status and its code; which check failed, the queue backend and
its depth describe the installation to anyone who asks, so a visitor from elsewhere
gets `{"status"}` only. The test client's address is 203.0.113.7 (a remote visitor)
unless a test asks for loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clients import PASSWORD, bearer, register
from services import free_port

from clipsync.models import Role


async def test_a_visitor_from_elsewhere_sees_only_the_status(client) -> None:
    answer = await client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


async def test_a_signed_in_user_who_is_not_an_admin_sees_only_the_status(client) -> None:
    session = await register(client, "ann@example.org")
    answer = await client.get("/healthz", headers=bearer(session["token"]))
    assert answer.json() == {"status": "ok"}


async def test_an_admin_sees_the_details_from_anywhere(app, client) -> None:
    admin = await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    answer = await client.get(
        "/healthz", headers=bearer(app.ctx.accounts.start_session(admin).token)
    )
    assert answer.json()["checks"]["database"] == {"ok": True}
    assert answer.json()["checks"]["queue"]["backend"] == "sqlite"


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
async def test_the_host_itself_sees_the_details(start_app, settings, address: str) -> None:
    _, client = await start_app(settings, client_address=address)
    answer = await client.get("/healthz")
    assert answer.json()["checks"]["database"] == {"ok": True}


async def test_a_failing_check_is_not_named_to_a_visitor(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(queue={"backend": "redis", "redis_url": url})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    _, client = await start_app(settings)
    answer = await client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "failing"}
