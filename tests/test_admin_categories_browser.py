"""A person's other categories in /admin/users ("Also in"), in Chromium: ticking a box
only drafts the change; it is saved with the row's button after confirmation, like a
role or category change, and signs the person out."""

from __future__ import annotations

import httpx
import pytest
from browser import LiveServer, set_up_admin
from playwright.sync_api import Dialog, Page, expect
from test_admin_users_browser import PASSWORD, saved
from test_browser_moderation import CONFIG

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


def test_other_categories_are_drafted_then_saved_after_confirmation(
    page: Page, live_server: LiveServer
) -> None:
    set_up_admin(page, live_server, "admin@example.org", PASSWORD)
    with httpx.Client(base_url=live_server.base_url) as http:
        person = http.post(
            "/api/auth/register",
            json={"email": "person@example.org", "password": PASSWORD, "categoryRole": "staff"},
        ).json()["user"]
    assert saved(live_server)["categories"] == ["staff"]

    page.goto("/admin/users")
    row = page.locator(f"tr[data-user-id='{person['id']}']")
    others = row.get_by_role("group", name="Other categories of person@example.org")
    dealers = others.get_by_role("checkbox", name="Dealers")
    save = row.get_by_role("button", name="Save changes…")
    expect(save).to_be_hidden()
    dealers.check()
    expect(save).to_be_visible()
    page.wait_for_timeout(300)
    assert saved(live_server)["categories"] == ["staff"]  # a tick saves nothing
    dealers.uncheck()
    expect(save).to_be_hidden()

    dealers.check()
    questions: list[str] = []

    def accept(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    save.click()
    expect(row.locator("[data-role=message]")).to_contain_text(
        "the other categories are now Dealers"
    )
    assert "other categories from none to Dealers" in questions[0]
    assert saved(live_server)["categories"] == ["staff", "dealers"]
    expect(save).to_be_hidden()
    expect(dealers).to_be_checked()
