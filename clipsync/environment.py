"""`CLIPSYNC_*` environment variables: their names, and the check of unknown ones.

Every setting can be overridden as `CLIPSYNC_<SECTION>_<KEY>`, a plugin's as
`CLIPSYNC_PLUGINS_<PLUGIN>_<KEY>`. A variable with the prefix that nothing reads is
almost always a typo (`CLIPSYNC_SERVER_PUBLC_URL`), and ignoring it would leave the
server running without the setting its administrator believes is set, so it stops
start-up with its name. What is known:

- the override of every setting (`clipsync.settings`) and of every loaded plugin's
  setting (`clipsync.plugins`, once the plugins and their schemas are loaded);
- the variables in `OTHER_VARIABLES`, which ClipSync reads but are no setting;
- any variable a `{ "$env" = "NAME" }` secret of the configuration file names;
- anything under the prefix of a disabled plugin, whose settings nobody can check.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from clipsync.errors import ConfigError

ENV_PREFIX = "CLIPSYNC_"
PLUGIN_PREFIX = f"{ENV_PREFIX}PLUGINS_"
# CLIPSYNC_ variables ClipSync reads that are not settings.
OTHER_VARIABLES = {
    f"{ENV_PREFIX}CONFIG": "the configuration file, when --config is not given (clipsync.cli)",
}


def variable_name(section: str, key: str) -> str:
    """The variable that overrides `[section] key` (`plugins.auth_local` → PLUGINS_AUTH_LOCAL)."""
    return f"{ENV_PREFIX}{section}_{key}".upper().replace(".", "_").replace("-", "_")


def variables_of(tables: Mapping[str, type]) -> set[str]:
    """The override of every field of each `section: dataclass` in `tables`."""
    return {
        variable_name(section, f.name)
        for section, cls in tables.items()
        for f in dataclasses.fields(cls)
    }


def env_references(value: Any) -> set[str]:
    """Names of the variables that `{ "$env" = "NAME" }` secrets in `value` read."""
    if isinstance(value, Mapping):
        if len(value) == 1 and isinstance(value.get("$env"), str):
            return {value["$env"]}
        return set().union(*(env_references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(env_references(v) for v in value))
    return set()


def check_environment(
    environ: Mapping[str, str],
    known: Iterable[str],
    *,
    prefix: str = ENV_PREFIX,
    ignore: tuple[str, ...] = (),
) -> None:
    """Stop start-up on a `prefix…` variable that is not `known`, naming it.

    Variables starting with one of `ignore` are left alone: the plugins' until the
    plugins are loaded, then those of disabled plugins.
    """
    known = set(known)
    for name in sorted(environ):
        if not name.startswith(prefix) or name in known or name.startswith(ignore):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(
            f"environment variable {name} is set, but ClipSync has no such setting "
            f'and no {{ "$env" = ... }} secret names it.{hint} Correct or unset it '
            f"({ENV_PREFIX}<SECTION>_<KEY> overrides [section] key)."
        )
