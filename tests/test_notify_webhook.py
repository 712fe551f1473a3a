"""Webhooks administered: the API and page (admins only), URL checks, what gets queued.

Sending them to a real receiver is in `test_notify_webhook_delivery.py`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from pathlib import Path

import pytest
from clients import PASSWORD, bearer

from clipsync import events
from clipsync.errors import BadRequest
from clipsync.models import AuditEntry, Delivery, DeliveryStatus, Role, Video, VideoStatus, Webhook
from clipsync.services import webhooks

API = "/api/admin/webhooks"


async def start_site(start_app, make_settings, migrated_sqlite: Path, **plugin_settings):
    settings = make_settings(plugins={"notify_webhook": plugin_settings})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    people = {}
    for name, role in [("admin", Role.ADMIN), ("editor", Role.EDITOR), ("user", Role.USER)]:
        user = await app.ctx.accounts.create_user(f"{name}@example.org", PASSWORD, role=role)
        people[name] = (user, app.ctx.accounts.start_session(user).token)
    return app, client, people


@pytest.fixture
async def site(start_app, make_settings, migrated_sqlite: Path):
    """A site whose webhooks may point at private addresses (no request is sent here)."""
    return await start_site(start_app, make_settings, migrated_sqlite, allow_private=True)


@pytest.fixture
async def strict_site(start_app, make_settings, migrated_sqlite: Path):
    """The default: webhooks go to public addresses only."""
    return await start_site(start_app, make_settings, migrated_sqlite)


async def add(client, token: str, **body) -> dict:
    body = {"url": "http://127.0.0.1:9/hook", "events": ["video.approved"]} | body
    answer = await client.post(API, json=body, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    return answer.json()


# --- the API -------------------------------------------------------------------------


async def test_an_admin_adds_a_webhook_and_gets_its_secret_only_once(site) -> None:
    _app, client, people = site
    token = people["admin"][1]
    created = await add(
        client,
        token,
        url="http://127.0.0.1:9/hook",
        events=["video.ready", "video.approved", "video.ready"],
        format="slack",
        description="  #videos channel ",
    )
    secret = created["secret"]
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    webhook = created["webhook"]
    assert webhook["events"] == ["video.ready", "video.approved"]
    assert (webhook["format"], webhook["description"]) == ("slack", "#videos channel")
    assert "secret" not in webhook
    assert (await Webhook.get(id=webhook["id"])).secret == secret

    listed = await client.get(API, headers=bearer(token))
    assert listed.status_code == 200
    assert secret not in listed.text and '"secret"' not in listed.text
    [item] = listed.json()["items"]
    assert item["url"] == "http://127.0.0.1:9/hook" and item["recentDeliveries"] == []
    assert "video.status" not in listed.json()["events"]
    assert not any(name.startswith("account.") for name in listed.json()["events"])

    entry = await AuditEntry.get(action="webhook_create")
    assert entry.actor_email == "admin@example.org"
    assert entry.details["host"] == "127.0.0.1" and secret not in str(entry.details)


async def test_only_admins_manage_webhooks(site) -> None:
    _app, client, people = site
    created = await add(client, people["admin"][1])
    path = f"{API}/{created['webhook']['id']}"
    body = {"url": "http://127.0.0.1:9/x", "events": ["video.ready"]}
    for name in ("editor", "user"):
        headers = bearer(people[name][1])
        assert (await client.get(API, headers=headers)).status_code == 403
        assert (await client.post(API, json=body, headers=headers)).status_code == 403
        assert (await client.delete(path, headers=headers)).status_code == 403
        assert (await client.get(f"{path}/deliveries", headers=headers)).status_code == 403
        assert (await client.get("/admin/webhooks", headers=headers)).status_code == 403
    assert (await client.get(API)).status_code == 401
    assert (await client.post(API, json=body)).status_code == 401
    assert (await client.delete(path)).status_code == 401
    assert await Webhook.all().count() == 1


async def test_deleting_a_webhook_forgets_it_and_its_deliveries(site) -> None:
    _app, client, people = site
    token = people["admin"][1]
    webhook_id = (await add(client, token))["webhook"]["id"]
    await Delivery.create(
        channel="webhook", type="video.ready", recipient="x", webhook_id=webhook_id
    )
    answer = await client.delete(f"{API}/{webhook_id}", headers=bearer(token))
    assert answer.status_code == 204
    assert await Webhook.all().count() == 0 and await Delivery.all().count() == 0
    assert await AuditEntry.filter(action="webhook_delete").count() == 1
    again = await client.delete(f"{API}/{webhook_id}", headers=bearer(token))
    assert again.status_code == 404
    assert (await client.delete(f"{API}/99999999999", headers=bearer(token))).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": ["account.signed_out"]}, "events"),
        ({"events": ["video.status"]}, "events"),
        ({"events": "video.ready"}, "events"),
        ({"format": "xml"}, "format"),
        ({"description": "x" * 201}, "description"),
    ],
)
async def test_bad_fields_are_refused_naming_the_field(site, body: dict, field: str) -> None:
    _app, client, people = site
    request = {"url": "http://127.0.0.1:9/hook", "events": ["video.ready"]} | body
    answer = await client.post(API, json=request, headers=bearer(people["admin"][1]))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field
    assert await Webhook.all().count() == 0


# --- URL checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://localhost/hook", "a loopback address"),
        ("http://[::1]/hook", "a loopback address"),
        ("http://[::ffff:127.0.0.1]/hook", "a loopback address"),
        ("http://2130706433/hook", "127.0.0.1, a loopback address"),  # a decimal IPv4
        ("http://10.1.2.3/hook", "a private address"),
        ("https://192.168.1.20/hook", "a private address"),
        ("http://169.254.169.254/latest/meta-data", "a link-local address"),
        ("http://0.0.0.0/hook", "an unspecified address"),
        ("http://224.0.0.1/hook", "a multicast address"),
        ("http://240.0.0.1/hook", "a reserved address"),
        ("http://100.64.0.1/hook", "not a public address"),
        ("ftp://example.org/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https:///nohost", "no host name"),
        ("http://example.org:99999/", "not a valid URL"),
        ("http://exa mple.org/", "spaces or control characters"),
        ("http://nothing-here.invalid/hook", "could not be resolved"),
        ("", "Give the webhook's URL"),
    ],
)
async def test_urls_that_are_not_public_http_are_refused(strict_site, url: str, words: str) -> None:
    _app, client, people = strict_site
    answer = await client.post(
        API, json={"url": url, "events": ["video.ready"]}, headers=bearer(people["admin"][1])
    )
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]["message"]
    assert await Webhook.all().count() == 0


async def test_credentials_in_a_refused_url_are_never_echoed(strict_site) -> None:
    _app, client, people = strict_site
    for url in (
        "http://admin:hunter2@127.0.0.1/hook",
        "http://admin:hunter2@nothing-here.invalid/hook",
        "http://admin:hunter2@example.org:99999/",
    ):
        answer = await client.post(
            API, json={"url": url, "events": ["video.ready"]}, headers=bearer(people["admin"][1])
        )
        assert answer.status_code == 400
        assert "hunter2" not in answer.text and "admin:" not in answer.text, answer.text


async def test_a_private_url_is_accepted_when_allowed(site) -> None:
    _app, client, people = site
    created = await add(client, people["admin"][1], url="http://localhost:9/hook")
    assert created["webhook"]["url"] == "http://localhost:9/hook"


async def test_every_address_of_a_name_must_be_public(monkeypatch) -> None:
    async def two_addresses(host, port, **kwargs):
        return [
            (2, 1, 6, "", ("93.184.215.14", port)),
            (2, 1, 6, "", ("10.0.0.7", port)),
        ]

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", two_addresses)
    with pytest.raises(BadRequest, match=r"10\.0\.0\.7, a private address"):
        await webhooks.check_url("https://hooks.example.org/x", allow_private=False)
    target = await webhooks.check_url("https://hooks.example.org/x", allow_private=True)
    assert (target.host, target.port, target.address) == ("hooks.example.org", 443, "93.184.215.14")


def test_public_addresses_pass_and_others_are_named() -> None:
    assert webhooks.address_problem(ipaddress.ip_address("93.184.215.14")) is None
    assert webhooks.address_problem(ipaddress.ip_address("2606:4700::1111")) is None
    assert webhooks.address_problem(ipaddress.ip_address("fe80::1")) == "a link-local address"
    assert webhooks.address_problem(ipaddress.ip_address("fc00::1")) == "a private address"


def test_redact_drops_credentials_only() -> None:
    assert webhooks.redact("https://u:p@h.example/x?y=1") == "https://h.example/x?y=1"
    assert webhooks.redact("https://h.example:8443/x") == "https://h.example:8443/x"


# --- what is queued -------------------------------------------------------------------


async def test_an_event_queues_one_delivery_per_webhook_that_asked_for_it(site) -> None:
    app, client, people = site
    token = people["admin"][1]
    approved = (await add(client, token, events=["video.approved"]))["webhook"]["id"]
    await add(client, token, events=["video.ready"])
    off = (await add(client, token, events=["video.approved"]))["webhook"]["id"]
    await Webhook.filter(id=off).update(active=False)
    owner = people["user"][0]
    video = await Video.create(
        owner=owner, title="Launch", category=owner.category, status=VideoStatus.APPROVED
    )
    pending = app.ctx.jobs.huey.pending_count()

    await events.publish_video("video.approved", video)
    await events.publish_video("video.status", video, progress=40)
    await events.publish("account.signed_out", userId=owner.id)

    [delivery] = await Delivery.filter(channel="webhook")
    assert (delivery.webhook_id, delivery.type, delivery.status) == (
        approved,
        "video.approved",
        DeliveryStatus.PENDING,
    )
    assert delivery.recipient == "http://127.0.0.1:9/hook"
    payload = delivery.payload
    assert payload["event"] == "video.approved" and payload["occurredAt"]
    data = payload["data"]
    assert data["videoId"] == str(video.id)
    assert (data["title"], data["status"], data["category"]) == (
        "Launch",
        "APPROVED",
        owner.category,
    )
    assert data["url"] == f"http://clipsync.test/watch/{video.id}"
    # Its job is queued (the consumer sends it; see test_notify_webhook_delivery.py).
    assert app.ctx.jobs.huey.pending_count() == pending + 1


# --- the page ---------------------------------------------------------------------------


async def test_the_page_lists_webhooks_and_their_last_deliveries(site) -> None:
    _app, client, people = site
    token = people["admin"][1]
    created = await add(
        client, token, url="http://bot:pw@127.0.0.1:9/hook", description="<b>chat</b>"
    )
    webhook_id = created["webhook"]["id"]
    await Delivery.create(
        channel="webhook", type="video.ready", recipient="x", webhook_id=webhook_id,
        status=DeliveryStatus.PENDING, attempts=2, response_status=503,
        last_error="the webhook answered 503: <i>busy</i>",
    )  # fmt: skip
    await Delivery.create(
        channel="webhook", type="video.approved", recipient="x", webhook_id=webhook_id,
        status=DeliveryStatus.SENT, attempts=1, response_status=204,
    )  # fmt: skip

    page = await client.get("/admin/webhooks", headers=bearer(token))
    assert page.status_code == 200, page.text
    text = page.text
    assert "http://127.0.0.1:9/hook" in text and "bot:pw" not in text
    assert created["secret"] not in text
    assert "&lt;b&gt;chat&lt;/b&gt;" in text and "<b>chat</b>" not in text
    rows = re.findall(r'<tr role="row" class="delivery-row".*?</tr>', text, re.S)
    assert len(rows) == 2
    failed = next(r for r in rows if 'data-status="pending"' in r)
    assert ">2<" in failed and ">503<" in failed
    assert "the webhook answered 503: &lt;i&gt;busy&lt;/i&gt;" in failed
    sent = next(r for r in rows if 'data-status="sent"' in r)
    assert "Delivered" in sent and ">204<" in sent
    for name in webhooks.EVENTS:
        assert f'name="events" value="{name}"' in text
    for name in webhooks.FORMATS:
        assert f'<option value="{name}"' in text
    assert "js/admin_webhooks.js" in text

    api = await client.get(f"{API}/{webhook_id}/deliveries", headers=bearer(token))
    items = api.json()["items"]
    assert [(i["event"], i["attempts"], i["responseStatus"]) for i in items] == [
        ("video.approved", 1, 204),
        ("video.ready", 2, 503),
    ]
    missing = await client.get(f"{API}/{webhook_id + 1}/deliveries", headers=bearer(token))
    assert missing.status_code == 404


async def test_with_the_plugin_disabled_no_webhook_can_be_added(
    start_app, make_settings, migrated_sqlite: Path
) -> None:
    settings = make_settings(plugins={"disabled": ["notify_webhook"]})
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "clipsync.sqlite3").write_bytes(migrated_sqlite.read_bytes())
    app, client = await start_app(settings)
    admin = await app.ctx.accounts.create_user("a@example.org", PASSWORD, role=Role.ADMIN)
    headers = bearer(app.ctx.accounts.start_session(admin).token)
    body = {"url": "https://hooks.example.org/x", "events": ["video.ready"]}
    answer = await client.post(API, json=body, headers=headers)
    assert answer.status_code == 409
    assert "notify_webhook plugin is disabled" in answer.json()["error"]["message"]
    page = await client.get("/admin/webhooks", headers=headers)
    assert page.status_code == 200 and "Webhooks are off" in page.text
