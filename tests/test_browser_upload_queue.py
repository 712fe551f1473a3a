"""The upload page's queue in a real browser: several files at once, each with its own
details, progress and outcome; the category of someone who belongs to several;
captions attached once a video is registered; a file that is not a video failing on
its own; Retry resuming a tus upload that stopped; and "or drag them here" only where
dragging exists.

Runs `clipsync serve` for real (`browser.LiveServer`) and headless Chromium; accounts
are made through the JSON API, everything else on the page.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from browser import DEFAULT_TIMEOUT_MS, LiveServer, Watcher, reported, set_up_admin, sign_in
from clients import bearer
from clips import make_clip
from playwright.sync_api import Browser, Locator, Page, Route, expect
from test_browser_moderation import CONFIG, PASSWORD, log_in, register
from test_browser_site_points import axe_violations

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.org"
UPLOADER = "uploader@example.org"
# Registering and transcoding a tiny clip takes a second or two; CI machines are slower.
DONE_TIMEOUT_MS = 60_000
CAPTIONS = "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nBonjour tout le monde\n"


@pytest.fixture
def live_server_toml() -> str:
    return CONFIG + "\n[quotas]\nregistrations_per_address_per_hour = 0\n"


def entry(page: Page, file_name: str) -> Locator:
    return page.locator("#upload-queue > li").filter(has_text=file_name)


def video_of(page: Page, item: Locator) -> dict[str, Any]:
    """The video an entry links to, from the API (as its uploader sees it)."""
    href = item.get_by_role("link", name="Watch").get_attribute("href")
    assert href and href.startswith("/watch/"), href
    answer = page.request.get(f"/api/videos/{href.removeprefix('/watch/')}")
    assert answer.ok, answer.text()
    return answer.json()["video"]


def add_person(live_server: LiveServer, email: str, categories: list[str]) -> None:
    """A person of categories[0], put in the others too by the administrator."""
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
        person = register(http, email, categories[0])
        if len(categories) > 1:
            changed = http.patch(
                f"/api/admin/users/{person['user']['id']}",
                json={"categories": categories},
                headers=bearer(log_in(http, ADMIN_EMAIL)),
            )
            assert changed.status_code == 200, changed.text


def test_several_files_upload_each_with_its_details_progress_and_outcome(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    first, second = make_clip("landscape"), make_clip("portrait")
    not_a_video = make_clip("text")  # notes.mp4: text with a video's name
    captions = tmp_path / "bonjour.vtt"
    captions.write_text(CAPTIONS)
    # The first PATCH of portrait.mp4 is refused once: its entry fails, and Retry goes
    # on with the same tus upload (no second POST for it).
    created: list[str] = []
    names: dict[str, str] = {}
    refused: list[str] = []

    def uploads(route: Route) -> None:
        request = route.request
        if request.method == "POST":
            name = filename_of(request.headers.get("upload-metadata", ""))
            created.append(name)
            answer = route.fetch()
            names[answer.headers["location"]] = name
            route.fulfill(response=answer)
        elif (
            request.method == "PATCH"
            and not refused
            and names.get(path_of(request.url)) == second.name
        ):
            refused.append(request.url)
            route.fulfill(
                status=403,
                json={"error": {"code": "forbidden", "message": "Refused once."}},
                headers={"Tus-Resumable": "1.0.0"},
            )
        else:
            route.continue_()

    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        add_person(live_server, UPLOADER, ["staff", "dealers"])
        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        sign_in(page, live_server, UPLOADER, PASSWORD)
        page.route("**/api/uploads/**", uploads)
        page.goto("/upload")

        # --- two files at once: two entries, the first one's details shown ---------------
        category = page.get_by_label("Category")
        expect(category).to_have_value("staff")  # the primary one
        expect(page.locator("#drop-hint")).to_be_visible()  # a mouse: dragging exists
        page.set_input_files("#file", [first, second])
        expect(page.locator("#upload-queue > li")).to_have_count(2)
        expect(page.locator("#file-name")).to_contain_text("2 files")
        expect(page.locator("#title")).to_have_value("landscape")
        page.fill("#title", "Harbour by day")
        category.select_option("dealers")

        entry(page, "portrait.mp4").locator("[data-role=pick]").click()
        expect(page.locator("#upload-details-title")).to_have_text("Details of “portrait.mp4”")
        expect(page.locator("#title")).to_have_value("portrait")
        expect(category).to_have_value("staff")  # this one was never moved
        page.fill("#title", "Harbour by night")
        page.set_input_files("#caption-file", captions)
        page.fill("#caption-language", "fr")
        entry(page, "landscape.mp4").locator("[data-role=pick]").click()
        expect(entry(page, "landscape.mp4").locator("[data-role=pick]")).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(page.locator("#title")).to_have_value("Harbour by day")
        expect(category).to_have_value("dealers")

        page.click("#upload-submit")
        expect(page.locator("#upload-submit")).to_have_text("Uploading…")
        # A third file joins the queue while it runs; it is not a video.
        page.set_input_files("#file", not_a_video)
        expect(page.locator("#upload-queue > li")).to_have_count(3)

        # --- each entry ends on its own -------------------------------------------------
        day, night, notes = (
            entry(page, "landscape.mp4"),
            entry(page, "portrait.mp4"),
            entry(page, "notes.mp4"),
        )
        expect(night.locator("[data-role=error]")).to_have_text("Refused once.")
        expect(night.get_by_role("button", name="Retry “portrait.mp4”")).to_be_visible()
        expect(notes.locator("[data-role=error]")).to_be_visible(timeout=DONE_TIMEOUT_MS)
        expect(notes.locator("[data-role=error]")).to_contain_text("not")
        expect(notes.get_by_role("button", name="Retry “notes.mp4”")).to_be_hidden()
        expect(day.get_by_role("link", name="Watch")).to_be_visible(timeout=DONE_TIMEOUT_MS)

        night.get_by_role("button", name="Retry “portrait.mp4”").click()
        expect(night.get_by_role("link", name="Watch")).to_be_visible(timeout=DONE_TIMEOUT_MS)
        assert refused and sorted(created) == sorted(["landscape.mp4", "portrait.mp4", "notes.mp4"])
        # (one POST each: the retry went on with the same upload)

        for item in (day, night):
            progress = item.locator("progress")
            expect(progress).to_have_attribute("aria-label", "Upload of " + item_file(item))
            assert progress.evaluate("(bar) => bar.value") == 100
            expect(item.locator("[data-role=status]")).to_contain_text("Uploaded")
            expect(item.locator("[data-role=error]")).to_be_hidden()
        expect(page).to_have_url(live_server.url("/upload"))  # several files: it stays
        expect(page.locator("#upload-summary")).to_contain_text("2 of 3 videos uploaded.")

        # --- what the server has ---------------------------------------------------------
        by_day, by_night = video_of(page, day), video_of(page, night)
        assert (by_day["title"], by_day["category"]) == ("Harbour by day", "dealers")
        assert (by_night["title"], by_night["category"]) == ("Harbour by night", "staff")
        edit = day.get_by_role("link", name="Edit")
        expect(edit).to_have_attribute("href", f"/videos/{by_day['id']}/edit")
        listed = page.request.get(f"/api/videos/{by_night['id']}/captions")
        assert listed.ok, listed.text()
        assert [c["language"] for c in listed.json()["items"]] == ["fr"]
        assert page.request.get(f"/api/videos/{by_day['id']}/captions").json()["items"] == []


def filename_of(metadata: str) -> str:
    """The decoded `filename` of a tus Upload-Metadata header."""
    for pair in metadata.split(","):
        key, _, value = pair.strip().partition(" ")
        if key == "filename":
            return base64.b64decode(value).decode()
    return ""


def path_of(url: str) -> str:
    return urlsplit(url).path


def item_file(item: Locator) -> str:
    return (item.locator("[data-role=file]").text_content() or "").split(" · ")[0]


def test_one_category_shows_no_choice_and_a_touch_screen_no_dragging(
    browser: Browser, page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        set_up_admin(page, live_server, ADMIN_EMAIL, PASSWORD)
        add_person(live_server, UPLOADER, ["dealers"])
        page.get_by_role("banner").get_by_role("button", name="Sign out").click()
        sign_in(page, live_server, UPLOADER, PASSWORD)
        page.goto("/upload")
        expect(page.locator("#category")).to_have_count(0)
        expect(page.locator("#upload-category")).to_have_text("Category: Dealers")
        expect(page.locator("#drop-hint")).to_be_visible()

        # A phone: the drop zone opens the file chooser and says nothing of dragging.
        phone = browser.new_context(
            base_url=live_server.base_url, is_mobile=True, has_touch=True, bypass_csp=True
        )
        phone.set_default_timeout(DEFAULT_TIMEOUT_MS)
        try:
            touch = watcher.watch(phone.new_page())
            sign_in(touch, live_server, UPLOADER, PASSWORD)
            touch.goto("/upload")
            expect(touch.locator("#upload-submit")).to_be_enabled()  # the script ran
            expect(touch.locator("#drop-hint")).to_be_hidden()
            expect(touch.locator(".dropzone-text")).to_have_text(
                "Choose videos", use_inner_text=True
            )
            # With a queue shown, axe-core finds nothing wrong with the page.
            touch.set_input_files("#file", [make_clip("landscape"), make_clip("portrait")])
            expect(touch.locator("#upload-queue > li")).to_have_count(2)
            assert axe_violations(touch, "main") == []
        finally:
            phone.close()
