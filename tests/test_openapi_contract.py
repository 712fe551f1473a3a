"""The OpenAPI document (clipsync/openapi/, served at /api/openapi.json) against the app.

The document must be valid OpenAPI 3.1, and it and the app's router must name the
same operations: every route of the API registered in the app (the core's and the
built-in plugins' from `register_routes`) is documented, and every documented
operation is a route. A new route fails here until its operation is written down
(docs/development.md says how). The reference page at /api/docs must work under the
site's Content-Security-Policy, in Chromium.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from browser import LiveServer, Watcher, reported
from openapi_spec_validator import validate
from playwright.sync_api import Page, expect

from clipsync.api import openapi
from clipsync.context import ClipSyncApp

# Routes a program calls, whose answers are data: the JSON API, HLS playback, avatars,
# health and metrics, and `.json` reports. Pages for people are not in the document.
API_PREFIXES = ("/api/", "/hls/", "/avatars/", "/healthz", "/metrics")
# `<video_id:uuid>` in a Sanic route is `{video_id}` in the document.
SANIC_PARAMETER = re.compile(r"<([^:>]+)(?::[^>]+)?>")
IGNORED_METHODS = frozenset({"head", "options"})


def documented_path(uri: str) -> str:
    return SANIC_PARAMETER.sub(r"{\1}", "/" + uri.lstrip("/"))


def plugin_prefixes(app: ClipSyncApp) -> tuple[str, ...]:
    """Where the plugins' own routes are mounted (`register_routes`, `/-/<plugin>/`)."""
    return tuple(f"/-/{plugin}/" for plugin, _ in app.ctx.plugins.routes())


def in_contract(path: str, plugins: tuple[str, ...]) -> bool:
    return path.startswith(API_PREFIXES + plugins) or path.endswith(".json")


def routed_operations(app: ClipSyncApp) -> set[tuple[str, str]]:
    """(method, path) of every route the document must describe."""
    plugins = plugin_prefixes(app)
    operations = set()
    for route in app.router.routes:
        path = documented_path(route.path)
        if in_contract(path, plugins):
            operations |= {(method.lower(), path) for method in route.methods}
    return operations


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in openapi.METHODS
        if method in item
    }


def unexplained(operations: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """HEAD and OPTIONS are documented where they mean something (tus, HLS), but Sanic
    may answer them on its own: only GET, POST, PUT, PATCH and DELETE must match."""
    return {(method, path) for method, path in operations if method not in IGNORED_METHODS}


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi.document()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_of_the_api_is_documented(app: ClipSyncApp) -> None:
    missing = unexplained(routed_operations(app) - documented_operations(openapi.document()))
    assert not missing, (
        "routes missing from the OpenAPI document (clipsync/openapi/*.yaml; see "
        f"docs/development.md): {sorted(missing)}"
    )


def test_every_documented_operation_is_a_route(app: ClipSyncApp) -> None:
    extra = documented_operations(openapi.document()) - routed_operations(app)
    assert not extra, f"documented, but no such route: {sorted(extra)}"


def test_plugin_routes_are_part_of_the_contract(app: ClipSyncApp) -> None:
    """The built-in notify_email plugin's unsubscribe routes come from `register_routes`."""
    assert ("post", "/-/notify_email/unsubscribe/{token}") in routed_operations(app)


def test_every_operation_has_an_id_a_tag_and_a_success_answer() -> None:
    document = openapi.document()
    ids = []
    for method, path in documented_operations(document):
        operation = document["paths"][path][method]
        ids.append(operation.get("operationId"))
        assert operation.get("tags"), f"{method.upper()} {path} has no tag"
        assert any(code.startswith(("2", "3")) for code in operation["responses"]), (
            f"{method.upper()} {path} documents no success"
        )
    assert None not in ids
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_unsafe_methods_with_the_session_cookie_need_the_csrf_header() -> None:
    document = openapi.document()
    operation = document["paths"]["/api/videos/{video_id}"]["patch"]
    assert {"cookieSession": [], "csrfToken": []} in operation["security"]
    assert operation["responses"]["default"] == openapi.ERROR_RESPONSE


def test_an_area_cannot_document_a_path_twice() -> None:
    document = {"paths": {"/api/x": {}}, "components": {}}
    with pytest.raises(ValueError, match="already documented"):
        openapi.merge(document, {"paths": {"/api/x": {}}}, "twice")


async def test_the_document_and_its_page_are_served_to_anyone(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/openapi.json")
    assert answer.status_code == 200
    assert answer.json() == openapi.document()
    page = await client.get("/api/docs")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui-bundle.js" in page.text
    assert "/static/js/api_docs.js" in page.text
    for path in ("vendor/swagger-ui-bundle.js", "vendor/swagger-ui.css", "js/api_docs.js"):
        assert (await client.get(f"/static/{path}")).status_code == 200, path


@pytest.mark.browser
def test_the_reference_page_renders_under_the_content_security_policy(
    page: Page, live_server: LiveServer
) -> None:
    watcher = Watcher()
    watcher.watch(page)
    with reported(live_server, watcher):
        page.goto("/api/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("ClipSync API")
        expect(page.locator(".opblock-tag-section").first).to_be_visible()
        page.locator(".opblock-tag", has_text="videos").first.click()
        expect(page.locator("#operations-videos-listVideos")).to_be_visible()
    refused = [line for line in watcher.console if "Content Security Policy" in line]
    assert not refused, refused
    assert not [line for line in watcher.console if line.startswith("[pageerror]")]


def test_the_bundled_swagger_ui_ships_with_its_licence() -> None:
    vendor = Path(openapi.__file__).resolve().parent.parent / "static" / "vendor"
    assert (vendor / "swagger-ui.LICENSE.txt").is_file()
    assert (vendor / "swagger-ui-bundle.js.LICENSE.txt").is_file()
