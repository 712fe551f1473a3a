"""The reset link by real email: "Forgot password?" → the mail → a new password.

The email channel sends through the loopback SMTP server of `smtp.py` (STARTTLS and a
sign-in required); the delivery's job is run by calling its body, as in
test_notify_email.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clients import PASSWORD, bearer, register
from smtp import SmtpServer

from clipsync.models import Delivery, DeliveryStatus, PasswordReset, Role
from clipsync.services import notifications

NEW_PASSWORD = "tram lines at dusk"


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
    return await start_app(settings)


async def run_jobs(app) -> None:
    """Run every waiting email job, as the consumer would."""
    for row in await Delivery.filter(channel="email", status=DeliveryStatus.PENDING):
        await notifications.send_delivery(app.ctx.plugins, row.id, final_attempt=False)


async def test_the_mailed_link_sets_a_new_password_and_ends_every_session(
    mailing_app, smtp_server: SmtpServer
) -> None:
    app, client = mailing_app
    await app.ctx.accounts.create_user("admin@example.org", PASSWORD, role=Role.ADMIN)
    session = (await register(client, "ann@example.org"))["token"]
    assert notifications.email_enabled()
    page = await client.get("/password/forgot")
    assert 'action="/password/forgot"' in page.text  # email is on: the form is there

    for email in ("ann@example.org", "nobody@example.org"):
        answer = await client.post("/api/auth/password/forgot", json={"email": email})
        assert answer.status_code == 202
    [delivery] = await Delivery.filter(channel="email")
    assert delivery.recipient == "ann@example.org" and delivery.user_id is None
    await run_jobs(app)

    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ("ann@example.org",) and mail.tls
    assert mail.message["Subject"] == "Choose a new password for Harbour Videos"
    assert "List-Unsubscribe" not in mail.message  # a security mail: always sent
    text = mail.part("text/plain")
    html = mail.part("text/html")
    [link] = re.findall(r"http://clipsync\.test(/password/reset\?token=[\w-]+)", text)
    # The type's own templates, not the generic mail.
    for part in (text, html):
        assert "To choose a new password for your account on Harbour Videos" in part
    assert link in html and ">Choose a new password</a>" in html
    assert "60 minutes" in text and "203.0.113.7" in text

    form = await client.get(link)
    assert form.status_code == 200 and 'name="password"' in form.text
    token = link.split("token=", 1)[1]
    done = await client.post(
        "/api/auth/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text
    assert (await client.get("/api/auth/me", headers=bearer(session))).status_code == 401
    old = await client.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": PASSWORD}
    )
    assert old.status_code == 401
    new = await client.post(
        "/api/auth/login", json={"email": "ann@example.org", "password": NEW_PASSWORD}
    )
    assert new.status_code == 200
    assert await PasswordReset.filter(used_at__isnull=True).count() == 0
    # The change itself is told by email too (account.password_changed, security).
    await run_jobs(app)
    changed = smtp_server.wait_for(2)[1]
    assert changed.rcpt_tos == ("ann@example.org",)
    assert "password" in changed.message["Subject"].lower()
