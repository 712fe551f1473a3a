"""The webhooks console in Chromium: add one, see its secret once, delete it."""

from __future__ import annotations

import re

import pytest
from browser import LiveServer, Watcher, reported, set_up_admin
from playwright.sync_api import Page, expect

from clipsync.services.webhooks import EVENTS

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "correct horse battery"


@pytest.fixture
def live_server_toml() -> str:
    return "[plugins.notify_webhook]\nallow_private = true\n"


def test_an_admin_adds_a_webhook_sees_the_secret_once_and_deletes_it(
    page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, ADMIN_PASSWORD)
        page.goto("/admin/webhooks")
        expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
        nav = page.get_by_role("navigation", name="Moderation console")
        expect(page.locator("#webhooks-empty")).to_be_visible()
        form = page.locator("#webhook-form")
        expect(form.locator('input[name="events"]')).to_have_count(len(EVENTS))

        # A refused URL says why, and adds nothing.
        form.get_by_label("URL").fill("ftp://files.example.org/hook")
        form.get_by_role("button", name="Add webhook").click()
        expect(page.locator("#webhook-error")).to_contain_text("http:// or https://")
        expect(page.locator("#webhooks-empty")).to_be_visible()

        form.get_by_label("URL").fill("http://127.0.0.1:9/hook")
        form.get_by_label("Description").fill("chat bot")
        form.get_by_label("Format").select_option("slack")
        form.get_by_label("Uploaded").check()
        form.get_by_role("button", name="Add webhook").click()

        secret = page.locator("#webhook-secret")
        expect(secret).to_be_visible()
        expect(secret).to_have_value(re.compile(r"^[0-9a-f]{64}$"))
        shown = secret.input_value()
        row = page.locator("#webhook-rows tr")
        expect(row).to_have_count(1)
        expect(row.locator('[data-role="url"]')).to_have_text("http://127.0.0.1:9/hook")
        expect(row.locator('[data-role="events"]')).to_have_text("Uploaded, Ready, Approved")
        expect(row.locator('[data-role="format"]')).to_have_text("Slack")

        # Shown once: after a reload the webhook is listed, its secret is nowhere.
        page.reload()
        expect(page.locator("#webhook-rows tr")).to_have_count(1)
        expect(page.locator("#webhook-created")).to_be_hidden()
        assert shown not in page.content()
        assert nav.count() == 1

        # Deleting asks first; dismissing keeps it.
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.locator('#webhook-rows button[data-action="delete"]').click()
        expect(page.locator("#webhook-rows tr")).to_have_count(1)
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator('#webhook-rows button[data-action="delete"]').click()
        expect(page.locator("#webhook-rows tr")).to_have_count(0)
        expect(page.locator("#webhooks-empty")).to_be_visible()
        page.reload()
        expect(page.locator("#webhooks-empty")).to_be_visible()
    assert not [line for line in watcher.console if "Content Security Policy" in line]
