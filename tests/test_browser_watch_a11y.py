"""axe-core finds no accessibility violation on the watch page and the embed page.

axe-core (a devDependency in package.json, never shipped) is read from node_modules and
injected into the page; the pages are checked as a viewer sees them, the player loaded
and its bar shown, in the light and the dark colour scheme. Runs `clipsync serve` for
real (`browser.LiveServer`), which transcodes the upload, and headless Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import DEFAULT_TIMEOUT_MS, LiveServer, Watcher, reported, set_up_admin
from clips import make_clip
from playwright.sync_api import Browser, Page
from test_browser_moderation import PASSWORD
from test_browser_player import ADMIN_EMAIL, CONFIG, upload_ready, wait_for_manifest

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG


@pytest.fixture
def axe_page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A page whose Content-Security-Policy (script-src 'self') lets axe-core in."""
    context = browser.new_context(base_url=live_server.base_url, bypass_csp=True)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def violations(page: Page) -> list[dict[str, Any]]:
    """What axe-core reports as violations on `page` (WCAG 2.x A/AA and best practice)."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm install` (axe-core is a devDependency)")
    page.add_script_tag(content=AXE.read_text())
    return page.evaluate(
        """async () => {
            const result = await window.axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
            }));
        }"""
    )


def summary(found: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in found
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_violation_on_the_watch_and_embed_pages(
    axe_page: Page, live_server: LiveServer, scheme: str
) -> None:
    page = axe_page
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        page.emulate_media(color_scheme=scheme)
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        video_id = upload_ready(live_server, make_clip("landscape"), "Harbour at dawn")

        for path in (f"/watch/{video_id}", f"/embed/{video_id}"):
            page.goto(path)
            wait_for_manifest(page)
            page.locator("#player").hover()  # the bar shown, as when someone looks at it
            found = violations(page)
            assert not found, f"axe-core on {path} ({scheme}):\n{summary(found)}"
