"""The quota fields of /admin/users in Chromium: typing saves nothing, the button does."""

from __future__ import annotations

import httpx
import pytest
from browser import LiveServer, set_up_admin
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
GiB = 1024**3


def test_quotas_are_saved_with_their_button_never_while_typing(
    page: Page, live_server: LiveServer
) -> None:
    set_up_admin(page, live_server, "admin@example.org", PASSWORD)
    with httpx.Client(base_url=live_server.base_url) as http:
        person = http.post(
            "/api/auth/register", json={"email": "person@example.org", "password": PASSWORD}
        ).json()["user"]

    def saved() -> object:
        with httpx.Client(base_url=live_server.base_url) as http:
            admin = http.post(
                "/api/auth/login", json={"email": "admin@example.org", "password": PASSWORD}
            ).json()["token"]
            found = http.get(
                "/api/admin/users?q=person", headers={"Authorization": f"Bearer {admin}"}
            ).json()["items"]
        return found[0]["storageQuotaBytes"]

    page.goto("/admin/users")
    field = page.get_by_label("Storage", exact=False).and_(
        page.locator(f"#storageQuotaBytes-{person['id']}")
    )
    expect(field).to_have_value("")
    field.fill("2.5")
    field.press("ArrowUp")
    field.press("Tab")
    page.wait_for_timeout(300)
    assert saved() is None  # typing and arrow keys save nothing

    row = page.locator(f"tr[data-user-id='{person['id']}']")
    row.get_by_role("button", name="Save quotas").click()
    expect(row.locator("[data-role=message]")).to_contain_text("Saved")
    assert saved() == int(2.5 * GiB)

    field.fill("lots")
    row.get_by_role("button", name="Save quotas").click()
    expect(row.locator("[data-role=message]")).to_contain_text("number of GiB")
    assert saved() == int(2.5 * GiB)

    page.reload()
    expect(page.locator(f"#storageQuotaBytes-{person['id']}")).to_have_value("2.5")
