"""Filter hooks: each plugin in turn may change a value ClipSync is about to show.

A filter hook gets the value as the plugins before it left it and returns the changed
value, or None for "unchanged". A plugin that raises, or returns something that is not
a value of the same type, is logged and skipped: the page or answer still goes out
with what the other plugins made of it. The value a plugin receives is a copy, so a
plugin that fails half-way through changes nothing.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from clipsync.plugins import await_me_maybe

if TYPE_CHECKING:
    from clipsync.plugins import PluginHost

log = logging.getLogger(__name__)


def has_implementations(plugins: PluginHost, hook_name: str) -> bool:
    """Whether any loaded plugin implements `hook_name` (lists skip the work when not)."""
    return bool(getattr(plugins.pm.hook, hook_name).get_hookimpls())


async def run_filter(
    plugins: PluginHost, hook_name: str, value_name: str, value: Any, /, **kwargs: Any
) -> Any:
    """Pass `value` (as the keyword `value_name`) through every plugin's `hook_name`."""
    for impl in getattr(plugins.pm.hook, hook_name).get_hookimpls():
        offered = {value_name: copy.copy(value), **kwargs}
        args = {k: v for k, v in offered.items() if k in impl.argnames}
        try:
            result = await await_me_maybe(impl.function(**args))
        except Exception:
            log.exception("plugin %r failed while handling %s", impl.plugin_name, hook_name)
            continue
        if result is None:
            continue
        if not isinstance(result, type(value)):
            log.error(
                "plugin %r: %s returned %s, not %s or None; ignored",
                impl.plugin_name,
                hook_name,
                type(result).__name__,
                type(value).__name__,
            )
            continue
        value = result
    return value
