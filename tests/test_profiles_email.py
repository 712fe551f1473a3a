"""Changing the email: the link mailed to the new address, then the old one is told.

Mail goes through the loopback SMTP server of `smtp.py`; each delivery's job is run
by calling its body, as in test_passwords_email.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, bearer, register
from smtp import SmtpServer

from clipsync.models import Delivery, DeliveryStatus, Notification, Role, User
from clipsync.models.email_changes import EmailChange
from clipsync.services import notifications, profiles
from clipsync.services.notification_types import EMAIL_CHANGE, INVITE, TYPES


@pytest.fixture
def smtp_server(tmp_path: Path):
    with SmtpServer(tmp_path / "smtp") as server:
        yield server


@pytest.fixture
async def mailing_app(start_app, make_settings, migrated_sqlite: Path, smtp_server: SmtpServer):
    settings = make_settings(
        web={"site_name": "Harbour Videos"},
        plugins={"notify_email": smtp_server.config()},
    )
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    return app, client


async def run_jobs(app) -> None:
    """Run every waiting email job, as the consumer would."""
    for row in await Delivery.filter(channel="email", status=DeliveryStatus.PENDING):
        await notifications.send_delivery(app.ctx.plugins, row.id, final_attempt=False)


async def ask(client: httpx.AsyncClient, token: str, new: str, password: str = PASSWORD):
    return await client.post(
        "/api/auth/me/email", json={"newEmail": new, "password": password}, headers=bearer(token)
    )


def token_of(link: str) -> str:
    return link.split("token=", 1)[1]


async def test_the_link_sent_to_the_new_address_changes_it_and_the_old_one_is_told(
    mailing_app, smtp_server: SmtpServer
) -> None:
    app, client = mailing_app
    session = (await register(client, "ann@example.org"))["token"]
    client.cookies.clear()
    answer = await ask(client, session, "  Ann.Lee@Example.ORG ")
    assert answer.status_code == 202, answer.text
    assert "ann.lee@example.org" in answer.json()["message"]
    # Nothing changes until the link is used.
    assert await User.filter(email="ann@example.org").exists()
    await run_jobs(app)

    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ("ann.lee@example.org",) and mail.tls
    assert mail.message["Subject"] == "Confirm your new email address for Harbour Videos"
    assert "List-Unsubscribe" not in mail.message
    text, html = mail.part("text/plain"), mail.part("text/html")
    for part in (text, html):
        assert "To use this address for your account on Harbour Videos" in part
    assert "24 hours" in text
    [link] = re.findall(r"http://clipsync\.test(/account/email/confirm\?token=[\w-]+)", text)
    assert link in html.replace("&amp;", "&")

    # Opening the link (a mail scanner does) shows a button and changes nothing.
    page = await client.get(link)
    assert page.status_code == 200 and "ann.lee@example.org" in page.text
    assert 'id="email-confirm"' in page.text
    assert await User.filter(email="ann@example.org").exists()

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = await client.post(link.split("?")[0], data={"csrf_token": csrf, "token": token_of(link)})
    assert done.status_code == 200, done.text
    assert 'id="email-changed"' in done.text
    ann = await User.get(email="ann.lee@example.org")
    assert not await User.filter(email="ann@example.org").exists()

    # Sessions go on (see services/profiles.py); sign-in uses the new address only.
    me = await client.get("/api/auth/me", headers=bearer(session))
    assert me.status_code == 200 and me.json()["user"]["email"] == "ann.lee@example.org"
    client.cookies.clear()
    old = await client.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}
    )
    assert old.status_code == 401
    new = await client.post(
        "/api/auth/login", json={"email": "ann.lee@example.org", "password": PASSWORD}
    )
    assert new.status_code == 200

    # The old address gets the security notice; the person sees it in the app too.
    await run_jobs(app)
    mails = smtp_server.wait_for(3)
    notice = {m.rcpt_tos[0]: m for m in mails[1:]}
    old_notice = notice["ann@example.org"]
    assert old_notice.message["Subject"] == "The email address of your account was changed"
    assert "List-Unsubscribe" not in old_notice.message
    assert "The email address of your account on Harbour Videos was changed" in (
        old_notice.part("text/plain")
    )
    assert "ann.lee@example.org" in notice  # the person's own copy, at the new address
    [item] = await Notification.filter(user_id=ann.id, type="account.email_changed")
    assert item.title == "Your email address was changed"

    # The link works once.
    used = await client.get(link)
    assert used.status_code == 400 and profiles.LINK_USED in used.text


async def test_a_wrong_password_or_a_bad_address_sends_nothing(mailing_app) -> None:
    _, client = mailing_app
    session = (await register(client, "ann@example.org"))["token"]
    client.cookies.clear()
    await register(client, "bob@example.org")
    client.cookies.clear()
    wrong = await ask(client, session, "new@example.org", "not my password")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["field"] == "currentPassword"
    for bad, status, field in (
        ("not an address", 422, "newEmail"),
        ("ann@example.org", 422, "newEmail"),
        ("new\u200b@example.org", 422, "newEmail"),
        ("BOB@example.org", 409, "newEmail"),
    ):
        answer = await ask(client, session, bad)
        assert answer.status_code == status, (bad, answer.text)
        assert answer.json()["error"]["field"] == field
    assert await EmailChange.all().count() == 0
    assert await Delivery.filter(channel="email").count() == 0
    assert (await client.post("/api/auth/me/email", json={})).status_code == 401


async def confirm(client: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return await client.post("/account/email/confirm", data={"csrf_token": csrf, "token": token})


async def test_an_expired_or_superseded_link_or_a_taken_address_changes_nothing(
    mailing_app,
) -> None:
    _, client = mailing_app
    session = (await register(client, "ann@example.org"))["token"]
    client.cookies.clear()
    tokens = []
    for new in ("first@example.org", "second@example.org", "third@example.org"):
        assert (await ask(client, session, new)).status_code == 202
        [row] = await Delivery.filter(channel="email", recipient=new)
        tokens.append(token_of(row.payload["url"]))
    # Only the latest request counts.
    superseded = await confirm(client, tokens[0])
    assert superseded.status_code == 400 and profiles.LINK_USED in superseded.text
    # Expired.
    await EmailChange.filter(new_email="second@example.org").update(
        used_at=None, expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    expired = await confirm(client, tokens[1])
    assert expired.status_code == 400 and profiles.LINK_EXPIRED in expired.text
    # Taken since it was asked: a clear error, and the link is not used up.
    await register(client, "third@example.org")
    client.cookies.clear()
    taken = await confirm(client, tokens[2])
    assert taken.status_code == 409 and profiles.ADDRESS_TAKEN in taken.text
    assert (await EmailChange.get(new_email="third@example.org")).used_at is None
    unknown = await confirm(client, "x" * 40)
    assert unknown.status_code == 400 and profiles.LINK_UNKNOWN in unknown.text
    assert await User.filter(email="ann@example.org").exists()
    assert await Notification.filter(type="account.email_changed").count() == 0


async def test_the_profile_page_asks_for_the_change(mailing_app) -> None:
    _, client = mailing_app
    await register(client, "ann@example.org")
    client.cookies.clear()
    login = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    signed_in = await client.post(
        "/login", data={"csrf_token": csrf, "email": "ann@example.org", "password": PASSWORD}
    )
    assert signed_in.status_code == 303
    page = await client.get("/account/profile")
    assert page.status_code == 200 and 'action="/account/profile/email"' in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    wrong = await client.post(
        "/account/profile/email",
        data={"csrf_token": csrf, "new_email": "new@example.org", "password": "nope nope"},
    )
    assert wrong.status_code == 400 and 'id="email-error"' in wrong.text
    assert 'value="new@example.org"' in wrong.text and "nope nope" not in wrong.text
    sent = await client.post(
        "/account/profile/email",
        data={"csrf_token": csrf, "new_email": "new@example.org", "password": PASSWORD},
    )
    assert sent.status_code == 200 and 'id="email-sent"' in sent.text
    assert await Delivery.filter(channel="email", recipient="new@example.org").count() == 1


def test_the_new_types_have_both_mails_in_the_default_theme() -> None:
    emails = Path(__file__).parent.parent / "themes/default/templates/emails"
    assert TYPES["account.email_changed"].mandatory
    assert TYPES["account.email_changed"].audience == "security"
    for name in (EMAIL_CHANGE, "account.email_changed"):
        for ext in ("txt", "html"):
            assert (emails / f"{name}.{ext}").is_file(), f"{name}.{ext}"
    assert EMAIL_CHANGE not in TYPES and INVITE not in TYPES  # addresses, not choices


async def test_email_changes_are_limited_per_hour_and_a_deactivated_account_changes_nothing(
    mailing_app,
) -> None:
    _, client = mailing_app
    session = (await register(client, "ann@example.org"))["token"]
    client.cookies.clear()
    for number in range(profiles.MAILS_PER_HOUR):
        assert (await ask(client, session, f"new{number}@example.org")).status_code == 202
    refused = await ask(client, session, "one.more@example.org")
    assert refused.status_code == 429 and refused.json()["error"]["message"] == (
        profiles.TOO_MANY_REQUESTS
    )
    assert not await EmailChange.filter(new_email="one.more@example.org").exists()
    [row] = await Delivery.filter(channel="email", recipient="new4@example.org")
    await User.filter(email="ann@example.org").update(is_active=False)
    dead = await confirm(client, token_of(row.payload["url"]))
    assert dead.status_code == 400 and profiles.ACCOUNT_DEACTIVATED in dead.text
    assert await User.filter(email="ann@example.org").exists()
