"""Passwords through the API: the common-password rule, changing one, and the reset link.

A real app on a migrated SQLite file. Email is off in these tests (no SMTP host), so
the reset link is read from the message handed to the notification core
(`notifications.deliver`, captured); test_passwords_email.py sends it for real.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from clients import PASSWORD, bearer, register

from clipsync.context import ClipSyncApp
from clipsync.errors import ValidationFailed
from clipsync.models import Delivery, Notification, PasswordReset, SignInFailures, User
from clipsync.services import notifications, password_rules, passwords
from clipsync.services.notification_types import Message

NEW_PASSWORD = "tram lines at dusk"
CLIENT_ADDRESS = "203.0.113.7"  # what `start_app`'s client calls from


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    """Every message handed to the notification core, in order."""
    sent: list[Message] = []
    real = notifications.deliver

    async def deliver(message: Message) -> None:
        sent.append(message)
        await real(message)

    monkeypatch.setattr(notifications, "deliver", deliver)
    return sent


def token_of(message: Message) -> str:
    url = urlsplit(message.url)
    assert url.path == "/password/reset"
    return parse_qs(url.query)["token"][0]


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def me(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/api/auth/me", headers=bearer(token))).status_code


async def forgot(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/api/auth/password/forgot", json={"email": email})


# --- the common-password rule -------------------------------------------------------


def test_the_shipped_list_is_large_and_read_case_insensitively() -> None:
    common = password_rules.common_passwords()
    assert len(common) > 50_000
    assert password_rules.common_passwords() is common  # read once
    for word in ("password123", "Password123", "QWERTYUIOP", "iloveyou", "trustno1"):
        assert password_rules.is_common(word), word
    assert not password_rules.is_common(PASSWORD)
    assert not password_rules.is_common(NEW_PASSWORD)


async def test_registration_refuses_a_common_password_with_a_clear_message(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post(
        "/api/auth/register", json={"email": "ann@example.org", "password": "Baseball12"}
    )
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert "list of common passwords" in error["message"]
    assert error["field"] == "password"
    assert not await User.filter(email="ann@example.org").exists()


async def test_set_up_and_create_user_refuse_a_common_password(app: ClipSyncApp) -> None:
    with pytest.raises(ValidationFailed, match="common passwords"):
        await app.ctx.accounts.set_up_first_admin("root@example.org", "superman123")
    with pytest.raises(ValidationFailed, match="common passwords"):
        await app.ctx.accounts.create_user("bob@example.org", "PASSWORD1234")
    assert await User.all().count() == 0


def test_clipsync_user_create_refuses_a_common_password(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[paths]\ndata_dir = "data"\n[plugins.auth_local]\nbcrypt_rounds = 4\n')

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clipsync", "--config", str(config), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )

    assert run("migrate").returncode == 0
    create = ("user", "create", "--email", "root@example.org", "--password-stdin")
    refused = run(*create, stdin="letmein123\n")
    assert refused.returncode == 1 and "common passwords" in refused.stderr
    assert run(*create, stdin=f"{PASSWORD}\n").returncode == 0


# --- change -------------------------------------------------------------------------


async def test_a_change_ends_other_sessions_and_the_caller_goes_on_with_a_new_token(
    client: httpx.AsyncClient,
) -> None:
    first = (await register(client, "ann@example.org"))["token"]
    second = (await sign_in(client, "ann@example.org", PASSWORD)).json()["token"]
    answer = await client.post(
        "/api/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=bearer(first),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user"]["email"] == "ann@example.org" and body["expiresAt"] > 0
    assert await me(client, body["token"]) == 200
    assert await me(client, first) == 401
    assert await me(client, second) == 401
    assert (await sign_in(client, "ann@example.org", PASSWORD)).status_code == 401
    assert (await sign_in(client, "ann@example.org", NEW_PASSWORD)).status_code == 200
    user = await User.get(email="ann@example.org")
    [notice] = await Notification.filter(user_id=user.id, type="account.password_changed")
    assert notice.title == "Your password was changed"


async def test_a_wrong_current_password_changes_nothing_and_counts_as_a_failed_sign_in(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = make_settings(auth={"max_failed_logins": 2})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    _app, client = await start_app(settings)
    token = (await register(client, "ann@example.org"))["token"]
    before = await User.get(email="ann@example.org")

    async def change(current: str) -> httpx.Response:
        return await client.post(
            "/api/auth/password",
            json={"currentPassword": current, "newPassword": NEW_PASSWORD},
            headers=bearer(token),
        )

    wrong = await change("not my password")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["message"] == passwords.WRONG_CURRENT
    assert wrong.json()["error"]["field"] == "currentPassword"
    assert (await User.get(email="ann@example.org")).failed_logins == 1
    [counted] = await SignInFailures.filter(email="ann@example.org", address=CLIENT_ADDRESS)
    assert counted.failures == 1
    assert (await change("still not it")).status_code == 400
    # The sign-in limit now holds this address back, even with the right password.
    held = await change(PASSWORD)
    assert held.status_code == 429 and int(held.headers["retry-after"]) > 0
    # Signing in is held back too: one count for both doors.
    assert (await sign_in(client, "ann@example.org", PASSWORD)).status_code == 429
    assert await me(client, token) == 200
    after = await User.get(id=before.id)
    assert after.password_hash == before.password_hash
    assert after.token_version == before.token_version
    assert not await Notification.filter(type="account.password_changed").exists()


async def test_a_change_refuses_a_weak_or_unchanged_new_password_without_counting_it(
    client: httpx.AsyncClient,
) -> None:
    token = (await register(client, "ann@example.org"))["token"]
    for new, words in (
        ("iloveyou2", "list of common passwords"),
        ("short", "at least 8"),
        (PASSWORD, "your current one"),
    ):
        answer = await client.post(
            "/api/auth/password",
            json={"currentPassword": PASSWORD, "newPassword": new},
            headers=bearer(token),
        )
        assert answer.status_code == 422, new
        assert words in answer.json()["error"]["message"]
        assert answer.json()["error"]["field"] == "newPassword"
    assert (await User.get(email="ann@example.org")).failed_logins == 0
    assert await me(client, token) == 200


async def test_a_change_needs_a_signed_in_person(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/api/auth/password", json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
    )
    assert answer.status_code == 401


# --- forgot -------------------------------------------------------------------------


async def test_forgot_answers_alike_for_every_address_and_stores_a_link_only_for_an_account(
    client: httpx.AsyncClient, mailbox: list[Message]
) -> None:
    await register(client, "ann@example.org")
    await register(client, "gone@example.org")
    await User.filter(email="gone@example.org").update(is_active=False)
    answers = [
        await forgot(client, email)
        for email in ("Ann@Example.org", "nobody@example.org", "gone@example.org", "not an email")
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.text for a in answers}) == 1
    assert "60 minutes" in answers[0].json()["message"]
    [reset] = await PasswordReset.all().select_related("user")
    assert reset.user.email == "ann@example.org" and reset.address == CLIENT_ADDRESS
    assert reset.used_at is None
    lifetime = reset.expires_at - reset.created_at
    assert timedelta(minutes=59) < lifetime <= timedelta(minutes=60)
    [message] = mailbox
    assert message.user_id is None and message.type == passwords.RESET_TYPE
    assert message.email == "ann@example.org"
    token = token_of(message)
    assert len(token) >= 43  # 32 random bytes
    assert reset.token_hash == passwords.hash_token(token) != token
    # No SMTP host: the email channel is off, and no mail is queued.
    assert not notifications.email_enabled()
    assert not await Delivery.all().exists()


async def test_forgot_sends_at_most_three_links_an_hour_per_account(
    client: httpx.AsyncClient, mailbox: list[Message]
) -> None:
    await register(client, "ann@example.org")
    answers = [await forgot(client, "ann@example.org") for _ in range(4)]
    assert len({(a.status_code, a.text) for a in answers}) == 1
    assert await PasswordReset.all().count() == passwords.MAILS_PER_ACCOUNT == 3
    assert len(mailbox) == 3
    # Links older than the window no longer count.
    await PasswordReset.all().update(created_at=datetime.now(UTC) - timedelta(minutes=61))
    assert (await forgot(client, "ann@example.org")).status_code == 202
    assert await PasswordReset.all().count() == 4


async def test_forgot_makes_at_most_five_links_an_hour_from_one_address(
    client: httpx.AsyncClient, mailbox: list[Message]
) -> None:
    people = [f"person{n}@example.org" for n in range(7)]
    for email in people:
        await register(client, email)
    answers = [await forgot(client, email) for email in people]
    assert len({(a.status_code, a.text) for a in answers}) == 1
    assert await PasswordReset.all().count() == passwords.LINKS_PER_ADDRESS == 5
    assert [m.email for m in mailbox] == people[:5]


async def test_forgot_with_no_email_at_all_is_a_plain_input_error(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/api/auth/password/forgot", json={"email": ""})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "email"


# --- reset --------------------------------------------------------------------------


async def link_for(client: httpx.AsyncClient, mailbox: list[Message], email: str) -> str:
    assert (await forgot(client, email)).status_code == 202
    return token_of(mailbox[-1])


async def reset(client: httpx.AsyncClient, token: object, password: str) -> httpx.Response:
    return await client.post(
        "/api/auth/password/reset", json={"token": token, "password": password}
    )


async def test_a_reset_link_works_once_and_ends_every_session(
    client: httpx.AsyncClient, mailbox: list[Message]
) -> None:
    first = (await register(client, "ann@example.org"))["token"]
    second = (await sign_in(client, "ann@example.org", PASSWORD)).json()["token"]
    older = await link_for(client, mailbox, "ann@example.org")
    token = await link_for(client, mailbox, "ann@example.org")
    done = await reset(client, token, NEW_PASSWORD)
    assert done.status_code == 204, done.text
    assert await me(client, first) == 401 and await me(client, second) == 401
    assert (await sign_in(client, "ann@example.org", PASSWORD)).status_code == 401
    assert (await sign_in(client, "ann@example.org", NEW_PASSWORD)).status_code == 200
    user = await User.get(email="ann@example.org")
    assert await Notification.filter(user_id=user.id, type="account.password_changed").count() == 1
    # Used once; the older link of the same account ended with it.
    again = await reset(client, token, "another fine phrase")
    assert again.status_code == 400
    assert again.json()["error"]["message"] == passwords.LINK_USED
    stale = await reset(client, older, "another fine phrase")
    assert stale.status_code == 400
    assert (await sign_in(client, "ann@example.org", NEW_PASSWORD)).status_code == 200
    assert await PasswordReset.filter(used_at__isnull=True).count() == 0


async def test_a_reset_also_lifts_the_sign_in_wait_of_the_account(
    client: httpx.AsyncClient, mailbox: list[Message]
) -> None:
    await register(client, "ann@example.org")
    for _ in range(6):
        await sign_in(client, "ann@example.org", "a wrong guess")
    assert (await sign_in(client, "ann@example.org", PASSWORD)).status_code == 429
    token = await link_for(client, mailbox, "ann@example.org")
    assert (await reset(client, token, NEW_PASSWORD)).status_code == 204
    assert (await sign_in(client, "ann@example.org", NEW_PASSWORD)).status_code == 200


async def assert_unchanged(client: httpx.AsyncClient, session: str, before: User) -> None:
    after = await User.get(id=before.id)
    assert after.password_hash == before.password_hash
    assert after.token_version == before.token_version
    assert await me(client, session) == 200
    assert not await Notification.filter(type="account.password_changed").exists()


async def test_an_expired_link_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, mailbox: list[Message]
) -> None:
    session = (await register(client, "ann@example.org"))["token"]
    before = await User.get(email="ann@example.org")
    token = await link_for(client, mailbox, "ann@example.org")
    await PasswordReset.all().update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    answer = await reset(client, token, NEW_PASSWORD)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == passwords.LINK_EXPIRED
    await assert_unchanged(client, session, before)
    assert await PasswordReset.filter(used_at__isnull=True).count() == 1


async def test_a_deactivated_account_cannot_use_its_link(
    client: httpx.AsyncClient, mailbox: list[Message]
) -> None:
    await register(client, "ann@example.org")
    before = await User.get(email="ann@example.org")
    token = await link_for(client, mailbox, "ann@example.org")
    await User.filter(id=before.id).update(is_active=False)
    answer = await reset(client, token, NEW_PASSWORD)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == passwords.ACCOUNT_DEACTIVATED
    after = await User.get(id=before.id)
    assert after.password_hash == before.password_hash
    assert after.token_version == before.token_version
    assert await PasswordReset.filter(used_at__isnull=True).count() == 1


async def test_an_unknown_or_malformed_link_is_refused(client: httpx.AsyncClient) -> None:
    for token in ("not-a-token", "", None, 12, "x" * 500):
        answer = await reset(client, token, NEW_PASSWORD)
        assert answer.status_code == 400, token
        assert answer.json()["error"]["message"] == passwords.LINK_UNKNOWN


async def test_a_reset_refuses_a_common_password_and_the_link_still_works(
    client: httpx.AsyncClient, mailbox: list[Message]
) -> None:
    session = (await register(client, "ann@example.org"))["token"]
    before = await User.get(email="ann@example.org")
    token = await link_for(client, mailbox, "ann@example.org")
    refused = await reset(client, token, "Sunshine12")
    assert refused.status_code == 422
    assert "list of common passwords" in refused.json()["error"]["message"]
    await assert_unchanged(client, session, before)
    assert (await reset(client, token, NEW_PASSWORD)).status_code == 204


async def test_two_uses_of_one_link_at_once_change_the_password_once(
    client: httpx.AsyncClient, mailbox: list[Message]
) -> None:
    await register(client, "ann@example.org")
    before = await User.get(email="ann@example.org")
    token = await link_for(client, mailbox, "ann@example.org")
    answers = await asyncio.gather(
        reset(client, token, NEW_PASSWORD), reset(client, token, "a different phrase")
    )
    assert sorted(a.status_code for a in answers) == [204, 400]
    user = await User.get(email="ann@example.org")
    assert user.token_version == before.token_version + 1
    assert await Notification.filter(type="account.password_changed").count() == 1
