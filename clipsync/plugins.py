"""The plugin host: loading plugins, reading their settings, calling their hooks.

Built-in plugins are registered from `BUILTIN_PLUGINS`, exactly as a third-party
plugin would be; third-party plugins come from the `clipsync` entry-point group and
from the folders listed in `[plugins] dirs`. `[plugins] disabled` blocks any of them
by name. There is no global plugin manager: `create_plugin_host()` makes one and the
app keeps it on `app.ctx.plugins`.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from clipsync import PROJECT, __version__, hookspecs
from clipsync.environment import PLUGIN_PREFIX, check_environment, variable_name, variables_of
from clipsync.errors import ConfigError
from clipsync.setting_values import build
from clipsync.settings import Settings, core_variables

log = logging.getLogger(__name__)

BUILTIN_PLUGINS: tuple[str, ...] = (
    "clipsync_auth_local",
    "clipsync_auth_oidc",
    "clipsync_storage_local",
    "clipsync_storage_s3",
    "clipsync_transcoder_cpu",
    "clipsync_transcoder_nvenc",
    "clipsync_transcoder_vaapi",
    "clipsync_analytics_sqlite",
    "clipsync_analytics_clickhouse",
    "clipsync_notify_inapp",
    "clipsync_notify_email",
    "clipsync_notify_webhook",
    "clipsync_scan_clamav",
    "clipsync_trace_otel",
)
ENTRY_POINT_GROUP = "clipsync"


@dataclass(frozen=True)
class Route:
    """A page or endpoint a plugin adds under `/-/<plugin name>/`."""

    path: str
    handler: Callable[..., Awaitable[Any]]
    methods: tuple[str, ...] = ("GET",)
    name: str | None = None
    # False: no CSRF check on this route's unsafe methods. Only for a route that a
    # secret in its own URL authorises (a signed unsubscribe link, which mail clients
    # POST to without cookies, RFC 8058), never for one that trusts the session.
    csrf: bool = True


@dataclass(frozen=True)
class SignInProvider:
    """A button on the sign-in page that starts a sign-in elsewhere (single sign-on)."""

    name: str
    label: str
    # A same-site path; the page adds `?next=<where to go afterwards>`.
    url: str
    # True when this way in replaces passwords for all but administrators: the page
    # then shows the password form only as the administrators' fallback.
    replaces_passwords: bool = False


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str
    source: str  # "built-in", "entry point" or "directory"
    location: str
    hooks: tuple[str, ...] = ()


async def await_me_maybe(value: Any) -> Any:
    """Resolve a hook result: call it if callable, await it if awaitable."""
    if callable(value):
        value = value()
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        value = await value
    return value


def plugin_name(module_name: str) -> str:
    """`clipsync_storage_local` is known as `storage_local`."""
    return module_name.removeprefix("clipsync_")


@dataclass
class PluginHost:
    """A pluggy manager plus what ClipSync knows about each plugin."""

    pm: pluggy.PluginManager
    settings: Settings
    infos: dict[str, PluginInfo] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)

    def register(self, module: ModuleType, name: str, source: str, version: str) -> None:
        if name in self.settings.plugins.disabled:
            log.info("plugin %s is disabled in the configuration", name)
            return
        if self.pm.has_plugin(name):
            raise ConfigError(f"two plugins are called {name!r}: rename or disable one")
        self.pm.register(module, name=name)
        location = getattr(module, "__file__", None) or repr(module)
        self.infos[name] = PluginInfo(name, version, source, str(location))

    def plugin_config(self, name: str) -> Any:
        """The validated `[plugins.<name>]` settings of a plugin (None if it has none)."""
        return self.configs.get(name)

    def collect(self, hook_name: str, /, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a hook on each plugin in turn; return `(plugin name, result)` pairs.

        Used for `register_*` hooks, where the core needs to know which plugin
        returned what. A plugin whose hook raises stops start-up: a registry with a
        hole in it is worse than a clear error.
        """
        results = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            args = {k: v for k, v in kwargs.items() if k in impl.argnames}
            try:
                result = impl.function(**args)
            except Exception as exc:
                raise ConfigError(
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc}"
                ) from exc
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    async def notify(self, hook_name: str, /, **kwargs: Any) -> None:
        """Run every implementation of an event hook; log, never raise, their errors."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            args = {k: v for k, v in kwargs.items() if k in impl.argnames}
            try:
                await await_me_maybe(impl.function(**args))
            except Exception:
                log.exception("plugin %r failed while handling %s", impl.plugin_name, hook_name)

    async def decide(self, hook_name: str, /, **kwargs: Any) -> Any:
        """Call a decide hook: the first non-None (resolved) result wins."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            args = {k: v for k, v in kwargs.items() if k in impl.argnames}
            result = await await_me_maybe(impl.function(**args))
            if result is not None:
                return result
        return None

    def routes(self) -> list[tuple[str, Route]]:
        pairs = []
        for plugin, routes in self.collect("register_routes", plugins=self):
            for route in routes:
                if not isinstance(route, Route):
                    raise ConfigError(
                        f"plugin {plugin!r}: register_routes must return Route objects"
                    )
                pairs.append((plugin, route))
        return pairs

    def sign_in_providers(self) -> list[SignInProvider]:
        """The sign-in page's buttons from `register_sign_in_providers`, one per name."""
        providers: dict[str, SignInProvider] = {}
        for plugin, offered in self.collect("register_sign_in_providers", plugins=self):
            for provider in offered:
                if not isinstance(provider, SignInProvider):
                    raise ConfigError(
                        f"plugin {plugin!r}: register_sign_in_providers must return "
                        "SignInProvider objects"
                    )
                if provider.name in providers:
                    raise ConfigError(f"two sign-in providers are called {provider.name!r}")
                providers[provider.name] = provider
        return list(providers.values())

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": info.name,
                "version": info.version,
                "source": info.source,
                "location": info.location,
                "hooks": sorted(
                    h.name for h in self.pm.get_hookcallers(self.pm.get_plugin(info.name)) or ()
                ),
            }
            for info in sorted(self.infos.values(), key=lambda i: (i.source != "built-in", i.name))
        ]


def create_plugin_host(
    settings: Settings,
    *,
    load_entry_points: bool = True,
    environ: Mapping[str, str] | None = None,
) -> PluginHost:
    """Make a plugin manager, load every plugin and check every plugin's settings."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm=pm, settings=settings)

    for module_name in BUILTIN_PLUGINS:
        host.register(
            importlib.import_module(module_name), plugin_name(module_name), "built-in", __version__
        )
    if load_entry_points:
        _load_entry_points(host)
    for folder in settings.plugins.dirs:
        _load_directory(host, settings.resolve_path(folder))

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from None
    _check_plugin_settings(host, os.environ if environ is None else environ)
    return host


def _load_entry_points(host: PluginHost) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in host.settings.plugins.disabled:
            continue
        try:
            module = ep.load()
        except Exception as exc:
            raise ConfigError(f"plugin {ep.name!r} ({ep.value}) cannot be loaded: {exc}") from exc
        version = ep.dist.version if ep.dist else "unknown"
        host.register(module, ep.name, "entry point", version)


def _load_directory(host: PluginHost, folder: Path) -> None:
    if not folder.is_dir():
        raise ConfigError(f"{host.settings.describe()}: [plugins] dirs: {folder} is not a folder")
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")):
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            entry = path / "__init__.py"
        elif path.suffix == ".py":
            entry = path
        else:
            continue
        name = plugin_name(path.stem if path.is_file() else path.name)
        if name in host.settings.plugins.disabled:
            continue
        module_name = f"clipsync_dir_plugin_{name}"
        spec = importlib.util.spec_from_file_location(
            module_name, entry, submodule_search_locations=[str(path)] if path.is_dir() else None
        )
        if spec is None or spec.loader is None:
            raise ConfigError(f"plugin {name!r}: cannot import {entry}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise ConfigError(f"plugin {name!r} ({entry}) cannot be loaded: {exc}") from exc
        host.register(module, name, "directory", str(getattr(module, "__version__", "unversioned")))


def _check_plugin_settings(host: PluginHost, environ: Mapping[str, str]) -> None:
    settings = host.settings
    schemas = dict(host.collect("settings_schema"))
    for name in settings.plugin_tables:
        if name not in schemas and name not in settings.plugins.disabled:
            loaded = ", ".join(sorted(schemas)) or "none"
            raise ConfigError(
                f"{settings.describe()}: [plugins.{name}]: no loaded plugin reads this table "
                f"(plugins with settings: {loaded})"
            )
    for name, schema in schemas.items():
        table = settings.plugin_tables.get(name, {})
        host.configs[name] = build(
            schema, table, settings.describe(), f"plugins.{name}", environ, settings.base_dir
        )
    # Now that every schema is known, so is every plugin variable: any other stops here.
    known = variables_of({f"plugins.{name}": schema for name, schema in schemas.items()})
    disabled = tuple(variable_name("plugins", f"{n}_") for n in settings.plugins.disabled)
    check_environment(
        environ,
        known | core_variables() | settings.env_references,
        prefix=PLUGIN_PREFIX,
        ignore=disabled,
    )
