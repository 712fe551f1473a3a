"""The email channel against a real SMTP server on loopback (`smtp.SmtpServer`).

The server insists on STARTTLS (a self-signed certificate the client is told to
trust with `ca_file`) and on a sign-in, so every mail that arrives came over TLS
from a client that signed in. The app runs on a real migrated SQLite file; events
are published as the app publishes them, and the deliveries' jobs are run by
calling the job's body, `notifications.send_delivery` (the retry path, with a real
consumer, is in test_notify_email_retries.py).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from clients import PASSWORD, bearer
from clipsync_notify_email import smtp
from clipsync_notify_email.compose import message
from clipsync_notify_email.settings import EmailSettings
from smtp import SmtpServer

from clipsync import db, events
from clipsync.errors import ConfigError
from clipsync.models import Delivery, DeliveryStatus, Notification, Role, Video, VideoStatus
from clipsync.services import notification_types, notifications
from clipsync.services.notification_types import INVITE, Message
from clipsync.settings import build

CATEGORIES = [
    {"name": "staff", "label": "Staff", "self_select": True, "default": True},
    {"name": "dealers", "label": "Dealers", "self_select": True},
]
PEOPLE = [
    ("admin", Role.ADMIN, "staff"),
    ("editor", Role.EDITOR, "staff"),
    ("uploader", Role.USER, "staff"),
    ("other", Role.USER, "staff"),
    ("dealer", Role.EDITOR, "dealers"),
]


def address(name: str) -> str:
    return f"{name}@example.org"


@pytest.fixture(name="smtp_server")
def smtp_server_fixture(tmp_path: Path):
    with SmtpServer(tmp_path / "smtp") as server:
        yield server


@pytest.fixture(name="make_site")
def make_site_fixture(start_app, make_settings, migrated_sqlite: Path, smtp_server: SmtpServer):
    """An app mailing through `smtp_server`, and its people (name -> (user, token))."""

    async def make(digest_minutes: float = 0, database_url: str = "", **email: object):
        settings = make_settings(
            category=CATEGORIES,
            notifications={"digest_minutes": digest_minutes},
            plugins={"notify_email": {**smtp_server.config(), **email}},
            **({"database": {"url": database_url}} if database_url else {}),
        )
        settings.data_dir.mkdir(parents=True)
        if database_url:
            await db.migrate(settings)
        else:
            (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
        app, client = await start_app(settings)
        people = {}
        for name, role, category in PEOPLE:
            user = await app.ctx.accounts.create_user(
                address(name), PASSWORD, role=role, category=category
            )
            people[name] = (user, app.ctx.accounts.start_session(user).token)
        return app, client, people

    return make


async def ready_video(owner, title: str = "Harbour tour") -> Video:
    video = await Video.create(
        owner=owner, title=title, category=owner.category, status=VideoStatus.READY
    )
    await events.publish_status(video)  # as the transcode job does
    return video


async def approve(client: httpx.AsyncClient, video: Video, token: str) -> None:
    answer = await client.post(f"/api/admin/videos/{video.id}/approve", headers=bearer(token))
    assert answer.status_code == 200, answer.text


async def run_jobs(app) -> None:
    """Run every waiting email job, as the consumer would."""
    waiting = await Delivery.filter(
        channel="email", status__in=[DeliveryStatus.PENDING, DeliveryStatus.BATCHED]
    ).order_by("id")
    for row in waiting:
        await notifications.send_delivery(app.ctx.plugins, row.id, final_attempt=False)


async def email_on(settings, user_id: int, type_name: str, channel: str = "email") -> bool:
    """Whether the person gets `type_name` on `channel` now."""
    probe = Message(user_id, type_name, "", "", "")
    return bool(await notification_types.chosen(settings, [probe], channel))


def link_paths(text: str) -> list[str]:
    """The paths of every link to the site in a mail's text."""
    return re.findall(r"http://clipsync\.test(/\S*)", text)


async def test_each_person_gets_the_right_mail_once_with_links_that_work(
    make_site, smtp_server: SmtpServer
) -> None:
    _app, client, people = await make_site()
    video = await ready_video(people["uploader"][0])
    await approve(client, video, people["editor"][1])
    await run_jobs(_app)
    await run_jobs(_app)  # a repeated job sends nothing twice

    by_person = {
        name: sorted(str(m.message["Subject"]) for m in smtp_server.mails_to(address(name)))
        for name, *_ in PEOPLE
    }
    assert by_person == {
        "uploader": ["“Harbour tour” is ready", "“Harbour tour” was approved"],
        "admin": ["“Harbour tour” awaits a decision"],
        "editor": ["“Harbour tour” awaits a decision"],
        # New videos in one's category are off by email by default; other categories
        # hear nothing.
        "other": [],
        "dealer": [],
    }
    assert len(smtp_server.mails()) == 4
    assert await Delivery.filter(channel="email").exclude(status=DeliveryStatus.SENT).count() == 0
    for mail in smtp_server.mails():
        assert mail.tls, "sent before STARTTLS"
        assert mail.login == "mailer"
        assert mail.mail_from == "videos@example.org"
        message = mail.message
        assert message["From"] == "ClipSync <videos@example.org>"
        assert message.get_content_type() == "multipart/alternative"
        assert message["Message-ID"] and message["Date"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert re.fullmatch(
            r"<http://clipsync\.test/-/notify_email/unsubscribe/[\w.-]+>",
            message["List-Unsubscribe"],
        )
    # The links work for the person mailed: the video for its uploader, the queue
    # for the editor; the HTML part links to the same places.
    [approved] = [
        m for m in smtp_server.mails_to(address("uploader")) if "approved" in m.message["Subject"]
    ]
    text = approved.part("text/plain")
    assert f"/watch/{video.id}" in link_paths(text)
    assert f'href="http://clipsync.test/watch/{video.id}"' in approved.part("text/html")
    watch = await client.get(f"/watch/{video.id}", headers=bearer(people["uploader"][1]))
    assert watch.status_code == 200 and "Harbour tour" in watch.text
    [awaiting] = smtp_server.mails_to(address("editor"))
    queue_link = link_paths(awaiting.part("text/plain"))[0]
    queue = await client.get(queue_link, headers=bearer(people["editor"][1]))
    assert queue.status_code == 200, f"{queue_link} answers {queue.status_code}"
    settings_link = "/notifications/preferences"
    assert settings_link in link_paths(text)
    page = await client.get(settings_link, headers=bearer(people["uploader"][1]))
    assert page.status_code == 200


async def test_security_mail_and_invites_have_no_unsubscribe(
    make_site, smtp_server: SmtpServer
) -> None:
    app, _client, people = await make_site()
    user = people["uploader"][0]
    await events.publish("account.password_changed", userId=user.id)
    await notifications.deliver(
        Message(
            None, INVITE, "You are invited to ClipSync", "admin@example.org invites you.",
            "/register?invite=secret-token", email="newcomer@example.org",
            data={"invitedBy": "admin@example.org", "category": "Staff", "expiresAt": "soon"},
        )
    )  # fmt: skip
    await run_jobs(app)
    [security] = smtp_server.mails_to(address("uploader"))
    assert security.message["Subject"] == "Your password was changed"
    assert security.message["List-Unsubscribe"] is None
    assert "always sent" in security.part("text/plain")
    [invite] = smtp_server.mails_to("newcomer@example.org")
    assert invite.message["List-Unsubscribe"] is None
    text = invite.part("text/plain")
    assert "http://clipsync.test/register?invite=secret-token" in text
    assert "admin@example.org invited this address" in text


async def test_a_title_with_line_breaks_and_html_injects_no_header_and_no_markup(
    make_site, smtp_server: SmtpServer
) -> None:
    app, client, people = await make_site()
    title = "Tour\r\nBcc: victim@example.org\r\nX-Evil: 1\n<b>bold</b><script>x()</script>"
    video = await ready_video(people["uploader"][0], title=title)
    await approve(client, video, people["editor"][1])
    await run_jobs(app)
    [mail] = [m for m in smtp_server.mails_to(address("uploader")) if "approved" in str(m.message)]
    assert mail.rcpt_tos == (address("uploader"),)
    message = mail.message
    assert message["Bcc"] is None and message["X-Evil"] is None
    subject = str(message["Subject"])
    assert "\r" not in subject and "\n" not in subject
    assert (
        subject
        == "“Tour Bcc: victim@example.org X-Evil: 1 <b>bold</b><script>x()</script>” was approved"
    )
    html = mail.part("text/html")
    assert "<b>bold</b>" not in html and "<script>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;&lt;script&gt;" in html
    # No other mail slipped out to the address in the title.
    assert smtp_server.mails_to("victim@example.org") == []


async def test_only_an_active_persons_address_is_mailed(make_site, smtp_server: SmtpServer) -> None:
    app, _client, people = await make_site()
    user = people["other"][0]
    user.is_active = False
    await user.save(update_fields=["is_active"])
    await notifications.deliver(Message(user.id, "video.ready", "Ready", "Body", "/videos"))
    assert await Delivery.filter(channel="email").count() == 0
    # An address-only message to something that is not an address is dropped.
    await notifications.deliver(
        Message(None, INVITE, "Hi", "Body", "/", email="not an address\r\nBcc: x@y.org")
    )
    assert await Delivery.filter(channel="email").count() == 0
    await run_jobs(app)
    assert smtp_server.mails() == []


async def test_digest_sends_at_most_one_mail_per_window_listing_every_item(
    make_site, smtp_server: SmtpServer
) -> None:
    # A window of 6 seconds.
    app, _client, people = await make_site(digest_minutes=0.1)
    editor = people["editor"][0]
    await ready_video(people["uploader"][0], "First")
    [row] = await Delivery.filter(user_id=editor.id, channel="email")
    assert (row.type, row.status) == ("video.awaiting", DeliveryStatus.BATCHED)
    # The first item goes at once: nothing was sent to the editor before.
    [first_job] = [t for t in app.ctx.jobs.huey.pending() if t.args == (row.id,)]
    assert first_job.eta is None
    await notifications.send_delivery(app.ctx.plugins, row.id, final_attempt=False)
    [mail] = smtp_server.mails_to(address("editor"))
    assert mail.message["Subject"] == "“First” awaits a decision"

    # Two more within the window wait for its end, and go out as one mail.
    await ready_video(people["uploader"][0], "Second")
    await ready_video(people["other"][0], "Third")
    later = await Delivery.filter(
        user_id=editor.id, channel="email", status=DeliveryStatus.BATCHED
    ).order_by("id")
    assert len(later) == 2
    # Their jobs wait for the window's end (Huey keeps a delayed job's ETA on it).
    queued = {
        t.args[0]: t.eta for t in app.ctx.jobs.huey.pending() if t.name == "deliver_notification"
    }
    for job in later:
        assert queued[job.id] is not None, "a digest item's job was not delayed"
        wait = (queued[job.id] - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
        assert 0 < wait <= 6
    for job in later:
        await notifications.send_delivery(app.ctx.plugins, job.id, final_attempt=False)
    digests = smtp_server.mails_to(address("editor"))[1:]
    assert len(digests) == 1, [str(m.message["Subject"]) for m in digests]
    digest = digests[0]
    assert digest.message["Subject"] == "“Second” awaits a decision and 1 more"
    text = digest.part("text/plain")
    assert "“Second” awaits a decision" in text and "“Third” awaits a decision" in text
    assert "“First”" not in text
    assert digest.message["List-Unsubscribe"]
    assert await Delivery.filter(user_id=editor.id, status=DeliveryStatus.SENT).count() == 3
    # The admin's mails were batched the same way, on their own clock.
    assert len(smtp_server.mails_to(address("admin"))) == 0
    await run_jobs(app)
    assert [len(re.findall("awaits a decision", m.part("text/plain")))
            for m in smtp_server.mails_to(address("admin"))] == [3]  # fmt: skip


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_digest_jobs_running_at_once_send_one_mail(
    make_site, smtp_server: SmtpServer, database: str, request
) -> None:
    url = ""
    if database == "postgres":  # a pool of connections: the jobs really run at once
        url = request.getfixturevalue("postgres_server").create_database("digest_at_once")
    app, _client, people = await make_site(digest_minutes=0.05, database_url=url)
    editor = people["editor"][0]
    for title in ("First", "Second", "Third"):
        await ready_video(people["uploader"][0], title)
    rows = await Delivery.filter(user_id=editor.id, channel="email").order_by("id")
    # Every job of the digest at once, as a consumer with several workers may run them.
    await asyncio.gather(
        *(notifications.send_delivery(app.ctx.plugins, row.id, final_attempt=False) for row in rows)
    )
    [mail] = smtp_server.mails_to(address("editor"))
    assert "and 2 more" in mail.message["Subject"]
    assert await Delivery.filter(user_id=editor.id, status=DeliveryStatus.SENT).count() == 3


async def test_a_failed_digest_gives_its_items_back_for_the_retry(
    make_site, smtp_server: SmtpServer
) -> None:
    app, _client, people = await make_site(digest_minutes=0.05)
    editor = people["editor"][0]
    await ready_video(people["uploader"][0], "First")
    await ready_video(people["uploader"][0], "Second")
    rows = await Delivery.filter(user_id=editor.id, channel="email").order_by("id")
    smtp_server.stop()
    with pytest.raises(notifications.DeliveryFailed):
        await notifications.send_delivery(app.ctx.plugins, rows[0].id, final_attempt=False)
    statuses = [r.status for r in await Delivery.filter(user_id=editor.id).order_by("id")]
    assert statuses == [DeliveryStatus.BATCHED, DeliveryStatus.BATCHED]
    smtp_server.start()
    await notifications.send_delivery(app.ctx.plugins, rows[0].id, final_attempt=False)
    await notifications.send_delivery(app.ctx.plugins, rows[1].id, final_attempt=False)
    [mail] = smtp_server.mails_to(address("editor"))
    assert "and 1 more" in mail.message["Subject"]


async def test_smtp_down_records_each_attempt_and_the_last_one_fails_with_the_reason(
    make_site, smtp_server: SmtpServer
) -> None:
    app, client, people = await make_site()
    video = await ready_video(people["uploader"][0])
    smtp_server.stop()
    await approve(client, video, people["editor"][1])
    row = await Delivery.get(channel="email", type="video.approved")
    with pytest.raises(notifications.DeliveryFailed):
        await notifications.send_delivery(app.ctx.plugins, row.id, final_attempt=False)
    await row.refresh_from_db()
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    assert "Connect call failed" in row.last_error or "refused" in row.last_error
    await notifications.send_delivery(app.ctx.plugins, row.id, final_attempt=True)
    await row.refresh_from_db()
    assert (row.status, row.attempts) == (DeliveryStatus.FAILED, 2)
    assert f"127.0.0.1:{smtp_server.port}" in row.last_error
    assert "mail password" not in row.last_error
    # Never again, even when the server is back; the in-app item is there, once.
    smtp_server.start()
    await notifications.send_delivery(app.ctx.plugins, row.id, final_attempt=True)
    assert smtp_server.mails_to(address("uploader")) == []
    uploader = people["uploader"][0]
    assert await Notification.filter(user_id=uploader.id, type="video.approved").count() == 1


async def test_a_server_refusing_the_recipient_is_retried(
    make_site, smtp_server: SmtpServer
) -> None:
    app, _client, people = await make_site()
    await events.publish("account.password_changed", userId=people["other"][0].id)
    row = await Delivery.get(channel="email")
    smtp_server.refusing = True
    with pytest.raises(notifications.DeliveryFailed, match="451"):
        await notifications.send_delivery(app.ctx.plugins, row.id, final_attempt=False)
    smtp_server.refusing = False
    await notifications.send_delivery(app.ctx.plugins, row.id, final_attempt=False)
    assert len(smtp_server.mails_to(address("other"))) == 1


async def test_starttls_is_required_never_skipped(tmp_path: Path) -> None:
    # A server that offers no STARTTLS: the mail must not go out in clear.
    with SmtpServer(tmp_path / "plain", starttls=False) as plain:
        table = {**plain.config(), "security": "starttls"}
        config = build(EmailSettings, table, "test", "plugins.notify_email")
        mail = message(
            sender=config.sender, recipient="a@example.org", subject="Hi", text="t",
            html="<p>h</p>", unsubscribe_url=None,
        )  # fmt: skip
        with pytest.raises(smtp.MailNotSent, match="STARTTLS"):
            await smtp.send(config, mail)
        assert plain.mails() == []
    # TLS from the first byte ("tls") works too, and is TLS.
    with SmtpServer(tmp_path / "tls", implicit_tls=True) as server:
        config = build(EmailSettings, server.config(), "test", "plugins.notify_email")
        assert config.security == "tls"
        await smtp.send(config, mail)
        [received] = server.mails()
        assert received.tls and received.login == "mailer"
    # A certificate nobody vouches for is refused.
    with SmtpServer(tmp_path / "untrusted") as server:
        table = {**server.config(), "ca_file": ""}
        config = build(EmailSettings, table, "test", "plugins.notify_email")
        with pytest.raises(smtp.MailNotSent, match="CERTIFICATE_VERIFY_FAILED"):
            await smtp.send(config, mail)


# --- settings and the doctor -----------------------------------------------------------------


def test_settings_name_the_key_that_is_wrong(make_settings, monkeypatch) -> None:
    from clipsync.plugins import create_plugin_host

    def host(**email: object):
        return create_plugin_host(
            make_settings(plugins={"notify_email": email}), load_entry_points=False
        )

    cases = [
        ({"host": "smtp.example.org"}, "[plugins.notify_email] sender is required"),
        ({"host": "smtp.example.org", "sender": "nobody"}, "[plugins.notify_email] sender must be"),
        ({"host": "smtp.example.org", "sender": "a@example.org\r\nBcc: x@y.z"}, "sender must not"),
        ({"security": "ssl"}, "[plugins.notify_email] security: expected one of"),
        ({"port": 0}, "[plugins.notify_email] port must be between 1 and 65535"),
        ({"host": "smtp://x"}, "[plugins.notify_email] host must be a host name"),
        ({"password": "p"}, "[plugins.notify_email] password is set but username is empty"),
    ]
    for table, expected in cases:
        with pytest.raises(ConfigError) as caught:
            host(**table)
        assert expected in str(caught.value), (table, str(caught.value))
    # The password may come from the environment, and never shows.
    monkeypatch.setenv("SMTP_PASSWORD", "from the environment")
    plugins = host(
        host="smtp.example.org", sender="a@example.org", username="u",
        password={"$env": "SMTP_PASSWORD"},
    )  # fmt: skip
    config = plugins.plugin_config("notify_email")
    assert config.password.reveal() == "from the environment"
    assert "from the environment" not in repr(config)
    # Defaults: off, port 587, STARTTLS.
    default = host().plugin_config("notify_email")
    assert (default.host, default.port, default.security, default.enabled) == (
        "",
        587,
        "starttls",
        False,
    )


async def test_with_no_host_email_is_off_and_writes_nothing(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = make_settings()
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, _client = await start_app(settings)
    user = await app.ctx.accounts.create_user("a@example.org", PASSWORD, role=Role.USER)
    await notifications.deliver(Message(user.id, "video.ready", "Ready", "Body", "/videos"))
    assert await Delivery.filter(channel="email").count() == 0
    assert await Notification.filter(user_id=user.id).count() == 1
    assert not notifications.email_enabled()


def doctor_config(tmp_path: Path, migrated: Path, email: str) -> str:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "clipsync.sqlite3").write_bytes(migrated.read_bytes())
    path = tmp_path / "config.toml"
    path.write_text(
        '[paths]\ndata_dir = "data"\n[plugins.auth_local]\nbcrypt_rounds = 4\n'
        f"[plugins.notify_email]\n{email}\n"
    )
    return str(path)


def test_doctor_says_email_is_off_without_failing(
    tmp_path: Path, migrated_sqlite: Path, capsys
) -> None:
    from clipsync.cli import main

    config = doctor_config(tmp_path, migrated_sqlite, "")
    main(["--config", config, "doctor"])
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "notify email" in line)
    assert line.split()[0] == "--", out
    assert "off: no SMTP host in [plugins.notify_email]" in line
    assert "notify email" not in out.rsplit("\n", 2)[-2]  # not among the problems


def test_doctor_greets_the_configured_server(tmp_path: Path, migrated_sqlite: Path, capsys) -> None:
    from clipsync.cli import main

    with SmtpServer(tmp_path / "smtp") as server:
        table = server.config()
        toml = "\n".join(
            f"{key} = {value!r}".replace("'", '"') if isinstance(value, str) else f"{key} = {value}"
            for key, value in table.items()
        )
        config = doctor_config(tmp_path, migrated_sqlite, toml)
        main(["--config", config, "doctor"])
        out = capsys.readouterr().out
        line = next(line for line in out.splitlines() if "notify email" in line)
        assert line.split()[0] == "ok", out
        assert "(starttls) answers, signed in as mailer" in line
        server.stop()
        assert main(["--config", config, "doctor"]) == 1
        out = capsys.readouterr().out
        line = next(line for line in out.splitlines() if "notify email" in line)
        assert line.split()[0] == "FAIL" and "does not accept mail" in line, out
        assert "mail password" not in out


async def test_an_admin_invites_by_email_from_the_console_api(
    make_site, smtp_server: SmtpServer
) -> None:
    app, client, people = await make_site()
    admin = bearer(people["admin"][1])
    answer = await client.post(
        "/api/admin/invites",
        json={"email": " Newcomer@Example.org ", "role": "editor", "categoryRole": "staff"},
        headers=admin,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["sentTo"] == "newcomer@example.org"
    await run_jobs(app)
    [mail] = smtp_server.mails_to("newcomer@example.org")
    link = f"http://clipsync.test/register?invite={answer.json()['token']}"
    assert link in mail.part("text/plain")
    page = await client.get(link.removeprefix("http://clipsync.test"))
    assert page.status_code == 200 and answer.json()["token"] in page.text
    # An address that already has an account is not invited, and nothing is made.
    taken = await client.post(
        "/api/admin/invites", json={"email": address("uploader")}, headers=admin
    )
    assert taken.status_code == 409 and "already has an account" in taken.text
    listed = (await client.get("/api/admin/invites", headers=admin)).json()["items"]
    assert len(listed) == 1
