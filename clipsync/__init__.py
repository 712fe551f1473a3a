"""ClipSync: a self-hosted, plugin-based video platform.

Plugins import `hookimpl` from here to mark their hook implementations:

    from clipsync import hookimpl

    @hookimpl
    def user_registered(user):
        ...
"""

import pluggy

__version__ = "0.1.0"

PROJECT = "clipsync"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

__all__ = ["PROJECT", "__version__", "hookimpl", "hookspec"]
