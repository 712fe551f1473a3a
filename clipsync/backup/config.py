"""The configuration file as a backup keeps it: every secret masked unless asked.

A secret is a setting whose type is `Secret` (the core's and each plugin's schema
say so), or one whose name says it is (password, token, secret, key) in a table no
loaded plugin describes. Only secrets written in the file itself are masked; a
`{ "$env" = … }` or `{ "$file" = … }` reference names where a secret is, not the
secret, and is kept. The file's comments and layout are kept line for line.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable
from typing import Any

from clipsync.settings import SECTIONS, Secret, Settings

MASK = "********"
_SECRET_NAME = re.compile(r"password|secret|token|(^|_)key$")
_HEADER = re.compile(r'^\s*\[\s*([A-Za-z0-9_.\-"\' ]+?)\s*\]\s*(#.*)?$')


class CannotMask(Exception):
    """A secret is written in a form this module cannot mask line by line."""


def secret_settings(settings: Settings, plugin_configs: dict[str, Any]) -> set[tuple[str, str]]:
    """(table, key) of every secret setting, e.g. ("plugins.storage_s3", "secret_key")."""
    found = set()
    for section in SECTIONS:
        values = getattr(settings, section)
        for item in dataclasses.fields(values):
            if isinstance(getattr(values, item.name), Secret):
                found.add((section, item.name))
    for name, table in settings.plugin_tables.items():
        config = plugin_configs.get(name)
        if dataclasses.is_dataclass(config):
            for item in dataclasses.fields(config):
                if isinstance(getattr(config, item.name), Secret):
                    found.add((f"plugins.{name}", item.name))
        else:
            found.update((f"plugins.{name}", key) for key in table if _SECRET_NAME.search(key))
    return found


def _header(line: str) -> str | None:
    match = _HEADER.match(line)
    if not match or line.lstrip().startswith("[["):
        return None
    return ".".join(part.strip().strip("\"'") for part in match.group(1).split("."))


def _lookup(data: dict[str, Any], table: str) -> dict[str, Any] | None:
    for part in table.split("."):
        data = data.get(part) if isinstance(data, dict) else None  # type: ignore[assignment]
    return data if isinstance(data, dict) else None


def masked(text: str, secrets: Iterable[tuple[str, str]]) -> str:
    """`text` with the value of every secret written as a plain string set to MASK."""
    original = tomllib.loads(text)
    wanted = {
        (table, key)
        for table, key in secrets
        if isinstance((_lookup(original, table) or {}).get(key), str)
        and (_lookup(original, table) or {}).get(key)
    }
    lines = text.splitlines(keepends=True)
    table = ""
    for i, line in enumerate(lines):
        header = _header(line)
        if header is not None:
            table = header
            continue
        for key in {re.escape(k) for t, k in wanted if t == table}:
            match = re.match(rf"^(\s*(?:{key}|\"{key}\"|'{key}')\s*=\s*)(\S.*?)(\r?\n)?$", line)
            if match:
                lines[i] = f'{match.group(1)}"{MASK}"{match.group(3) or ""}'
    result = "".join(lines)
    try:
        check = tomllib.loads(result)
    except tomllib.TOMLDecodeError:
        raise CannotMask("a secret written over several lines") from None
    for table_name, key in wanted:
        found = _lookup(check, table_name) or {}
        if found.get(key) != MASK:
            raise CannotMask(f"[{table_name}] {key}")
        found[key] = (_lookup(original, table_name) or {})[key]
    if check != original:
        raise CannotMask("a secret written over several lines")
    return result
