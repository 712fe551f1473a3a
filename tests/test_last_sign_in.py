"""Setting up, registering and signing in each count as a sign-in on /admin/users.

A person who registered (through an invite or not) was shown "Last sign-in: Never"
although registering had signed them in. Checked through the admin API that feeds
that page (`lastLoginAt`).
"""

from __future__ import annotations

import re

import httpx
from clients import PASSWORD, register

from clipsync.context import ClipSyncApp
from clipsync.sessions import CSRF_COOKIE


def other_browser(app: ClipSyncApp) -> httpx.AsyncClient:
    """A second client of the same app, with no cookies of its own."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.8", 5000)),
        base_url="http://clipsync.test",
    )


async def test_set_up_and_every_registration_record_a_last_sign_in(
    app: ClipSyncApp, client: httpx.AsyncClient
) -> None:
    form = await client.get("/setup")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    set_up = await client.post(
        "/setup",
        data={
            "csrf_token": token.group(1),
            "email": "boss@example.org",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert set_up.status_code == 303
    csrf = {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}
    invite = await client.post("/api/admin/invites", json={"role": "editor"}, headers=csrf)
    assert invite.status_code == 201, invite.text

    async with other_browser(app) as newcomer:
        await register(newcomer, "invited@example.org", invite=invite.json()["token"])
        await register(newcomer, "walk-in@example.org")

    listed = await client.get("/api/admin/users")
    assert listed.status_code == 200, listed.text
    last = {user["email"]: user["lastLoginAt"] for user in listed.json()["items"]}
    assert set(last) == {"boss@example.org", "invited@example.org", "walk-in@example.org"}
    assert all(last.values()), last
