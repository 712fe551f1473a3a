"""How one setting's value is read and checked: types, rules and secrets.

`build` makes a settings dataclass from a TOML table and the `CLIPSYNC_*` variables,
checking each value against its field's type and its rule (`check`), with errors
that name the key and the file. The core's sections (`clipsync.settings`) and every
plugin's `[plugins.<name>]` table are built the same way.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

from clipsync.environment import variable_name
from clipsync.errors import ConfigError

log = logging.getLogger(__name__)


class Secret:
    """A configuration value that must never be printed.

    Its `repr` and `str` are masked so a secret that ends up in a log line, an error
    or a page shows as `********`; `reveal()` is the one way to read it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


def positive(value: int | float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def non_negative(value: int | float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def at_least(minimum: int) -> typing.Callable[[int], str | None]:
    def check(value: int) -> str | None:
        return None if value >= minimum else f"must be at least {minimum}"

    return check


def check(rule: typing.Callable[[Any], str | None], default: Any) -> Any:
    """A dataclass field with a default and a rule that returns an error or None."""
    return field(default=default, metadata={"check": rule})


# Settings an older config.toml may still name, ignored with a warning that says what
# replaced them, so an upgrade does not stop at start-up over a setting that is gone.
RETIRED: dict[tuple[str, str], str] = {
    ("auth", "token_lifetime_hours"): (
        "sign-ins are sessions now: see access_token_minutes, session_days and "
        "session_max_days in [auth]; delete this line"
    ),
}


def build(
    cls: type,
    table: Mapping[str, Any],
    where: str,
    section: str,
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Any:
    """Build dataclass `cls` from a TOML table, checking every value against its type.

    `environ` overrides come from `CLIPSYNC_<SECTION>_<KEY>`; `section` also names the
    table in error messages; `{ "$file" = ... }` secrets are relative to `base_dir`.
    """
    environ = environ or {}
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for name in sorted(set(table) - set(known)):
        if (section, name) in RETIRED:
            log.warning("%s: [%s] %s is no longer used: %s", where, section, name,
                        RETIRED[section, name])  # fmt: skip
    unknown = sorted(set(table) - set(known) - {n for s, n in RETIRED if s == section})
    if unknown:
        raise ConfigError(
            f"{where}: [{section}] has no setting {unknown[0]!r} "
            f"(known: {', '.join(sorted(known))})"
        )
    kwargs: dict[str, Any] = {}
    for name, fld in known.items():
        label = f"[{section}] {name}"
        env_name = variable_name(section, name)
        if env_name in environ:
            value = _from_env(environ[env_name], hints[name], f"{env_name} ({label})")
        elif name in table:
            value = _coerce(table[name], hints[name], f"{where}: {label}", base_dir)
        else:
            continue
        rule = fld.metadata.get("check")
        problem = rule(value) if rule else None
        if problem:
            raise ConfigError(f"{where}: {label} {problem} (got {value!r})")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field without a default
        raise ConfigError(f"{where}: [{section}] {exc}") from None


def _describe(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(kind))
    if origin is list:
        return f"a list of {_describe(typing.get_args(kind)[0])}"
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        Secret: 'a string, { "$env" = "NAME" } or { "$file" = "PATH" }',
    }.get(kind, getattr(kind, "__name__", str(kind)))


def _coerce(value: Any, kind: Any, label: str, base_dir: Path | None = None) -> Any:
    """Check a TOML value against a field type; TOML already gives typed values."""
    origin = typing.get_origin(kind)
    if kind is Secret:
        return _secret(value, label, base_dir)
    if dataclasses.is_dataclass(kind) and isinstance(value, dict):
        return build(kind, value, label, kind.__name__, base_dir=base_dir)
    if origin is Literal:
        if value in typing.get_args(kind):
            return value
    elif origin is list:
        (item,) = typing.get_args(kind)
        if isinstance(value, list):
            return [_coerce(v, item, label, base_dir) for v in value]
    elif origin in (types.UnionType, typing.Union):
        for option in typing.get_args(kind):
            if option is not type(None):
                return _coerce(value, option, label, base_dir)
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, kind):
        return value
    raise ConfigError(f"{label}: expected {_describe(kind)}, got {value!r}")


def _from_env(text: str, kind: Any, label: str) -> Any:
    """Parse an environment override according to the field type."""
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is Secret:
            return Secret(text)
        if origin is list:
            return [_from_env(p.strip(), typing.get_args(kind)[0], label) for p in text.split(",")]
    except ValueError:
        raise ConfigError(f"{label}: expected {_describe(kind)}, got {text!r}") from None
    return _coerce(text, kind, label)


def _secret(value: Any, label: str, base_dir: Path | None) -> Secret:
    if isinstance(value, str):
        return Secret(value)
    if isinstance(value, dict) and len(value) == 1:
        ((how, name),) = value.items()
        if how == "$env" and isinstance(name, str):
            if not os.environ.get(name):
                raise ConfigError(f"{label}: environment variable {name} is not set or empty")
            return Secret(os.environ[name])
        if how == "$file" and isinstance(name, str):
            try:
                path = Path(name).expanduser()
                if not path.is_absolute() and base_dir is not None:
                    path = base_dir / path
                return Secret(path.read_text().strip())
            except OSError as exc:
                raise ConfigError(
                    f"{label}: cannot read secret file {name}: {exc.strerror}"
                ) from None
    raise ConfigError(f"{label}: expected {_describe(Secret)}")
