"""Unsubscribing from mail without signing in: the link in every mail a person can
turn off, its confirmation page, the one-click POST of RFC 8058, and forged tokens.

The site, the SMTP server and the helpers are test_notify_email.py's.
"""

from __future__ import annotations

import base64
import re

import httpx
import pytest
from clients import bearer
from smtp import SmtpServer
from test_notify_email import (  # noqa: F401  (the `make_site` and `smtp_server` fixtures)
    address,
    approve,
    email_on,
    make_site_fixture,
    ready_video,
    run_jobs,
    smtp_server_fixture,
)


def forge(token: str, user_id: int) -> str:
    """The same signature on a body naming someone else."""
    body, _, mac = token.partition(".")
    padded = body + "=" * (-len(body) % 4)
    parts = base64.urlsafe_b64decode(padded).split(b"\0")
    parts[0] = str(user_id).encode()
    forged = base64.urlsafe_b64encode(b"\0".join(parts)).rstrip(b"=").decode()
    return f"{forged}.{mac}"


async def unsubscribe_path(smtp_server: SmtpServer, to: str, subject_part: str) -> str:
    [mail] = [m for m in smtp_server.mails_to(to) if subject_part in str(m.message["Subject"])]
    header = mail.message["List-Unsubscribe"]
    assert header in mail.part("text/html").replace("&amp;", "&") or header.strip("<>") in (
        mail.part("text/plain")
    )
    return header.strip("<>").removeprefix("http://clipsync.test")


async def test_one_click_unsubscribe_works_without_signing_in_and_only_for_that_type(
    make_site, smtp_server: SmtpServer, app_transport
) -> None:
    app, client, people = await make_site()
    uploader, token = people["uploader"]
    await approve(client, await ready_video(uploader, "One"), people["editor"][1])
    await run_jobs(app)
    path = await unsubscribe_path(smtp_server, address("uploader"), "approved")
    settings = app.ctx.settings

    async with app_transport(app) as stranger:  # no cookie, no token
        # GET only asks: a mail scanner following the link changes nothing.
        page = await stranger.get(path)
        assert page.status_code == 200, page.text
        assert "Unsubscribe" in page.text and 'method="post"' in page.text
        assert "My video was approved" in page.text
        assert await email_on(settings, uploader.id, "video.approved", "email")
        # A forged token, or one re-addressed to another person, is not found.
        token_part = path.rsplit("/", 1)[1]
        other_id = people["other"][0].id
        for bad in (forge(token_part, other_id), token_part[:-2] + "AA", "x", "a.b"):
            bad_path = path.rsplit("/", 1)[0] + "/" + bad
            assert (await stranger.get(bad_path)).status_code == 404
            assert (
                await stranger.post(bad_path, data={"List-Unsubscribe": "One-Click"})
            ).status_code == 404
        assert await email_on(settings, other_id, "video.approved", "email")
        # The mail client's one-click POST (RFC 8058): no cookie, no CSRF token.
        done = await stranger.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200, done.text
        assert "unsubscribed" in done.text
    assert not await email_on(settings, uploader.id, "video.approved", "email")
    # Only that type, only email.
    assert await email_on(settings, uploader.id, "video.ready", "email")
    assert await email_on(settings, uploader.id, "video.approved", "inapp")

    # The next approval: the in-app item, and no mail.
    before = len(smtp_server.mails_to(address("uploader")))
    await approve(client, await ready_video(uploader, "Two"), people["editor"][1])
    await run_jobs(app)
    subjects = [
        str(m.message["Subject"]) for m in smtp_server.mails_to(address("uploader"))[before:]
    ]
    assert subjects == ["“Two” is ready"]
    inbox = await client.get("/api/notifications", headers=bearer(token))
    titles = [item["title"] for item in inbox.json()["items"]]
    assert "“Two” was approved" in titles and "“One” was approved" in titles


async def test_the_confirmation_page_button_unsubscribes_in_a_browser(
    make_site, smtp_server: SmtpServer, app_transport
) -> None:
    app, client, people = await make_site()
    uploader, _token = people["uploader"]
    await approve(client, await ready_video(uploader), people["editor"][1])
    await run_jobs(app)
    path = await unsubscribe_path(smtp_server, address("uploader"), "ready")
    async with app_transport(app) as browser:
        page = await browser.get(path)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
        assert action == path
        done = await browser.post(action, data={"csrf_token": csrf})
        assert done.status_code == 200, done.text
    assert not await email_on(app.ctx.settings, uploader.id, "video.ready")


@pytest.fixture
def app_transport():
    """A fresh client for an app: no cookies, no token, like a mail client."""

    def make(app) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("198.51.100.9", 5000)),
            base_url="http://clipsync.test",
        )

    return make
