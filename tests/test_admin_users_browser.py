"""Role and category changes in /admin/users, in Chromium: drafted, confirmed, then saved.

A closed <select> reports a change at each arrow key, so saving on "change" would save
(and sign the person out) while an administrator merely scrolls through the list.
"""

from __future__ import annotations

import httpx
import pytest
from browser import LiveServer, set_up_admin
from playwright.sync_api import Dialog, Page, expect

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def saved(live_server: LiveServer) -> dict:
    with httpx.Client(base_url=live_server.base_url) as http:
        admin = http.post(
            "/api/auth/login", json={"email": "admin@example.org", "password": PASSWORD}
        ).json()["token"]
        found = http.get(
            "/api/admin/users?q=person", headers={"Authorization": f"Bearer {admin}"}
        ).json()["items"]
    return found[0]


def test_arrow_keys_draft_and_only_a_confirmed_save_changes_the_role(
    page: Page, live_server: LiveServer
) -> None:
    set_up_admin(page, live_server, "admin@example.org", PASSWORD)
    with httpx.Client(base_url=live_server.base_url) as http:
        person = http.post(
            "/api/auth/register", json={"email": "person@example.org", "password": PASSWORD}
        ).json()["user"]
    before = saved(live_server)
    assert before["role"] == "user"

    page.goto("/admin/users")
    row = page.locator(f"tr[data-user-id='{person['id']}']")
    role = page.locator(f"#role-{person['id']}")
    save = row.get_by_role("button", name="Save changes…")
    expect(save).to_be_hidden()

    role.focus()
    role.press("ArrowUp")
    role.press("ArrowUp")
    page.wait_for_timeout(300)
    assert role.input_value() != "user"
    assert saved(live_server)["role"] == "user"  # arrow keys saved nothing
    expect(save).to_be_visible()

    # Back to the saved value: nothing is drafted any more.
    role.select_option("user")
    expect(save).to_be_hidden()

    role.select_option("editor")
    questions: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    save.click()
    page.wait_for_timeout(300)
    assert "from user to editor" in questions[0]
    assert "person@example.org" in questions[0]
    assert saved(live_server)["role"] == "user"  # refused at the confirmation

    page.once("dialog", lambda dialog: dialog.accept())
    save.click()
    expect(row.locator("[data-role=message]")).to_contain_text("the role is now editor")
    expect(save).to_be_hidden()
    assert saved(live_server)["role"] == "editor"

    # Cancel puts back what is saved.
    role.select_option("user")
    row.get_by_role("button", name="Cancel").click()
    expect(role).to_have_value("editor")
    expect(save).to_be_hidden()


def test_deactivating_asks_first(page: Page, live_server: LiveServer) -> None:
    set_up_admin(page, live_server, "admin@example.org", PASSWORD)
    with httpx.Client(base_url=live_server.base_url) as http:
        person = http.post(
            "/api/auth/register", json={"email": "person@example.org", "password": PASSWORD}
        ).json()["user"]

    page.goto("/admin/users")
    active = page.locator(f"#active-{person['id']}")
    page.once("dialog", lambda dialog: dialog.dismiss())
    active.click()
    expect(active).to_be_checked()
    page.wait_for_timeout(200)
    assert saved(live_server)["active"] is True

    page.once("dialog", lambda dialog: dialog.accept())
    active.click()
    row = page.locator(f"tr[data-user-id='{person['id']}']")
    expect(row.locator("[data-role=message]")).to_contain_text("deactivated")
    assert saved(live_server)["active"] is False
