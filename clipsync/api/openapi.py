"""`/api/openapi.json`: the OpenAPI 3.1 document of the API; `/api/docs`: its reference page.

The document is kept by hand in `clipsync/openapi/`: `openapi.yaml` holds what every
area shares (security schemes, the error body, users, videos, pages) and each other
file one area's paths and shapes. `document()` merges them, refusing a path or a
component defined twice, and fills in the two rules every operation follows, so the
files need not repeat them:

- an unsafe method (not GET, HEAD or OPTIONS) authorised by the session cookie also
  needs the CSRF header (`clipsync.sessions.check_csrf`);
- an answer not listed is an error with the one error body (`clipsync.error_handler`),
  on every path whose errors are JSON (`clipsync.sessions.is_api`).

Both addresses are public, as `/healthz` is: the document describes the code anyone
can read, never an install's data or settings, and a script's author should be able
to read it before they have an account. The reference page is Swagger UI, bundled
from npm into `static/vendor` (no CDN: the appliance works offline), started by
`static/js/api_docs.js` since the Content-Security-Policy allows no inline script.

tests/test_openapi_contract.py checks that the document is valid and that it and the
routes name the same operations.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml
from sanic import Blueprint
from sanic.response import HTTPResponse, json

from clipsync import __version__
from clipsync.context import ClipSyncRequest
from clipsync.http_security import content_security_policy

bp = Blueprint("api_openapi", url_prefix="/api")

FOLDER = Path(__file__).resolve().parent.parent / "openapi"
ROOT = "openapi.yaml"
# Each area's file, in the order its paths appear in the document.
AREAS = (
    "auth", "videos", "library", "watching", "social", "sharing", "moderation", "admin",
    "operations",
)  # fmt: skip
SAFE_METHODS = frozenset({"get", "head", "options"})
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Who may call an unsafe method when an operation says nothing else.
UNSAFE_SECURITY = [{"bearerAuth": []}, {"cookieSession": [], "csrfToken": []}]
ERROR_RESPONSE = {"$ref": "#/components/responses/Error"}
# Paths whose errors are the JSON error body (`clipsync.sessions.is_api`).
JSON_ERROR_PREFIXES = ("/api/", "/hls/")


def merge(document: dict[str, Any], area: dict[str, Any], name: str) -> None:
    """Add one area's paths and components to `document`; a name defined twice is an error."""
    unknown = set(area) - {"paths", "components"}
    if unknown:
        raise ValueError(f"openapi/{name}.yaml: only paths and components, not {sorted(unknown)}")
    for path, item in (area.get("paths") or {}).items():
        if path in document["paths"]:
            raise ValueError(f"openapi/{name}.yaml: {path} is already documented")
        document["paths"][path] = item
    for kind, entries in (area.get("components") or {}).items():
        shared = document["components"].setdefault(kind, {})
        for key, value in entries.items():
            if key in shared:
                raise ValueError(f"openapi/{name}.yaml: components.{kind}.{key} exists already")
            shared[key] = value


def apply_house_rules(document: dict[str, Any]) -> None:
    """The CSRF header on unsafe methods, and the error body as the default answer."""
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if method not in SAFE_METHODS and "security" not in operation:
                operation["security"] = copy.deepcopy(UNSAFE_SECURITY)
            if path.startswith(JSON_ERROR_PREFIXES) or path.endswith(".json"):
                operation["responses"].setdefault("default", dict(ERROR_RESPONSE))


def load(name: str) -> dict[str, Any]:
    with (FOLDER / name).open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@functools.cache
def document() -> dict[str, Any]:
    """The whole document (read once per process: it changes only with the code)."""
    merged = load(ROOT)
    merged["info"]["version"] = __version__
    merged.setdefault("paths", {})
    merged.setdefault("components", {})
    for name in AREAS:
        merge(merged, load(f"{name}.yaml"), name)
    apply_house_rules(merged)
    return merged


@bp.get("/openapi.json")
async def openapi_json(request: ClipSyncRequest) -> HTTPResponse:
    return json(document(), headers={"Cache-Control": "public, max-age=300"})


def docs_page_policy() -> str:
    """The site's Content-Security-Policy, with `data:` images allowed.

    Swagger UI's stylesheet draws its icons (arrows, ticks) as `data:` SVG images. An
    image runs no script, so this opens nothing to an attacker; the page plays no
    media, so it needs no media origins either.
    """
    directives = []
    for directive in content_security_policy().split("; "):
        name, _, value = directive.partition(" ")
        directives.append(f"{name} {value} data:" if name == "img-src" else directive)
    return "; ".join(directives)


@bp.get("/docs")
async def api_docs(request: ClipSyncRequest) -> HTTPResponse:
    """The API reference, read from `/api/openapi.json` by Swagger UI."""
    return request.app.ctx.templates.render(
        request, "api_docs.html", headers={"Content-Security-Policy": docs_page_policy()}
    )
