"""`/-/`: what is loaded (`/-/plugins`) and the pages plugins add (`/-/<plugin>/…`)."""

from __future__ import annotations

from sanic import Blueprint, Sanic
from sanic.response import HTTPResponse, json

from clipsync.context import ClipSyncRequest
from clipsync.errors import ConfigError
from clipsync.models import Role
from clipsync.plugins import PluginHost
from clipsync.sessions import require_role

bp = Blueprint("plugin_pages", url_prefix="/-")
# Names under /-/ that belong to ClipSync itself, so no plugin can take them.
RESERVED = frozenset({"plugins", "plugins.json", "static"})


def report(request: ClipSyncRequest) -> dict[str, object]:
    return {
        "plugins": request.app.ctx.plugins.describe(),
        "backends": request.app.ctx.backends.describe(),
    }


@bp.get("/plugins")
async def plugins_page(request: ClipSyncRequest) -> HTTPResponse:
    require_role(request, Role.ADMIN)
    return request.app.ctx.templates.render(request, "plugins.html", **report(request))


@bp.get("/plugins.json")
async def plugins_json(request: ClipSyncRequest) -> HTTPResponse:
    require_role(request, Role.ADMIN)
    return json(report(request))


def mount_plugin_routes(app: Sanic, plugins: PluginHost) -> None:
    """Give each plugin's routes a blueprint of its own under `/-/<plugin>/`."""
    blueprints: dict[str, Blueprint] = {}
    for plugin, route in plugins.routes():
        if plugin in RESERVED:
            raise ConfigError(f"plugin {plugin!r} cannot add routes: /-/{plugin} is ClipSync's own")
        if plugin not in blueprints:
            blueprints[plugin] = Blueprint(f"plugin_{plugin}", url_prefix=f"/-/{plugin}")
        path = "/" + route.path.lstrip("/") if route.path.strip("/") else ""
        blueprints[plugin].add_route(
            route.handler,
            path or "/",
            methods=list(route.methods),
            name=route.name,
            ctx_csrf_exempt=not route.csrf,
        )
    for blueprint in blueprints.values():
        app.blueprint(blueprint)
