"""Panels that plugins add to the watch page (the `watch_page_panels` hook).

Each plugin returns a panel, a list of panels, or None. A panel is HTML the plugin
escaped itself (a string or `Markup`), or a `(template name, context)` pair that the
active theme's templates render, autoescaped, with what every template can use. A
plugin that raises, or returns something else, is logged and its panels left out: a
broken plugin never takes the watch page down with it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from clipsync.context import ClipSyncRequest
from clipsync.models import User, Video
from clipsync.plugins import await_me_maybe

log = logging.getLogger(__name__)
HOOK = "watch_page_panels"


async def watch_panels(request: ClipSyncRequest, video: Video, viewer: User) -> list[Markup]:
    """Every plugin's panels for `video` seen by `viewer`, rendered, in plugin order."""
    panels: list[Markup] = []
    for impl in getattr(request.app.ctx.plugins.pm.hook, HOOK).get_hookimpls():
        offered = {"video": video, "viewer": viewer}
        args = {k: v for k, v in offered.items() if k in impl.argnames}
        try:
            result = await await_me_maybe(impl.function(**args))
            panels += [render(request, panel) for panel in as_list(result)]
        except Exception:
            log.exception("plugin %r failed while handling %s", impl.plugin_name, HOOK)
    return panels


def as_list(result: Any) -> list[Any]:
    """One panel, a list of panels, or None, as a list."""
    if result is None:
        return []
    if isinstance(result, str | tuple):
        return [result]
    return list(result)


def render(request: ClipSyncRequest, panel: Any) -> Markup:
    """A panel as HTML: a string as it is, a (template, context) pair rendered."""
    if isinstance(panel, str):
        return Markup(panel)  # the plugin escaped it (see the hook's contract)
    if isinstance(panel, tuple) and len(panel) == 2 and isinstance(panel[1], Mapping):
        name, context = panel
        templates = request.app.ctx.templates
        template = templates.env.get_template(name)
        return Markup(template.render({**templates.context(request), **context}))
    raise TypeError(f"a panel is an HTML string or a (template, context) pair, not {panel!r}")
