"""Change one setting of a `config.toml` in place, keeping every comment and line.

There is no TOML writer in the stack, and rewriting the file from parsed data would
lose the comments operators rely on. So a setting is changed by editing the one
line that holds it (or adding it), and the result is parsed again: the edit is
written only when the new file parses and differs from the old one in that
setting alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from clipsync.errors import ConfigError

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
# A `[table]` header (not `[[array]]`), with an optional comment after it.
_HEADER = re.compile(r'^\s*\[\s*(?P<name>[A-Za-z0-9_.\-"\' ]+?)\s*\]\s*(#.*)?$')
_ANY_HEADER = re.compile(r"^\s*\[")
_STRING = r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\''


def _quoted(text: str) -> str:
    """`text` as a TOML basic string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    if any(ord(c) < 0x20 or c == "\x7f" for c in escaped):
        raise ConfigError(f"cannot write {text!r} into the configuration file")
    return f'"{escaped}"'


def _key_pattern(key: str) -> re.Pattern[str]:
    name = re.escape(key)
    return re.compile(
        rf"^(?P<lead>\s*(?:{name}|\"{name}\"|'{name}')\s*=\s*)"
        rf"(?P<value>{_STRING})"
        rf"(?P<tail>\s*(?:#.*)?)$"
    )


def _split(line: str) -> tuple[str, str]:
    """A line and its ending (`\\n`, `\\r\\n` or nothing)."""
    body = line.rstrip("\r\n")
    return body, line[len(body) :]


def _header_name(body: str) -> str | None:
    match = _HEADER.match(body)
    if not match:
        return None
    return ".".join(part.strip().strip("\"'") for part in match["name"].split("."))


def _expected(data: dict[str, Any], table: str, key: str, value: str) -> dict[str, Any]:
    changed = dict(data)
    section = dict(changed.get(table, {}))
    section[key] = value
    changed[table] = section
    return changed


def set_string(text: str, table: str, key: str, value: str) -> str:
    """Return `text` with `key = "value"` in `[table]`, every other line unchanged.

    The key's line keeps its indentation and trailing comment; a missing key is
    added right after the table's header, and a missing table at the end of the file.
    Raises ConfigError when the file does not parse, or when the setting is written
    in a form this edit cannot change safely (an inline table, a dotted key, a
    multi-line string): then the message says to change it by hand.
    """
    if not _BARE.match(table) or not _BARE.match(key):
        raise ValueError(f"only simple table and key names: [{table}] {key}")
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    by_hand = f"set [{table}] {key} = {_quoted(value)} in it by hand"

    lines = text.splitlines(keepends=True)
    start = next(
        (i for i, line in enumerate(lines) if _header_name(_split(line)[0]) == table), None
    )
    if start is None:
        if table in before:
            raise ConfigError(f"[{table}] is not written as a table header there: {by_hand}")
        ending = "\r\n" if text.endswith("\r\n") else "\n"
        separator = "" if not text or text.endswith(("\n", "\r\n")) else ending
        blank = ending if text.strip() else ""
        new = f"{text}{separator}{blank}[{table}]{ending}{key} = {_quoted(value)}{ending}"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if _ANY_HEADER.match(lines[i])),
            len(lines),
        )
        pattern = _key_pattern(key)
        found = None
        for i in range(start + 1, end):
            match = pattern.match(_split(lines[i])[0])
            if match:
                found = i, match
                break
        if found is not None:
            i, match = found
            ending = _split(lines[i])[1]
            lines[i] = f"{match['lead']}{_quoted(value)}{match['tail']}{ending}"
        else:
            header_body, ending = _split(lines[start])
            if not ending:  # the header is the file's last line
                ending = "\n"
                lines[start] = header_body + ending
            lines.insert(start + 1, f"{key} = {_quoted(value)}{ending}")
        new = "".join(lines)

    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        after = None
    if after != _expected(before, table, key, value):
        raise ConfigError(
            f"[{table}] {key} is written in a form this command cannot edit: {by_hand}"
        )
    return new


def write_setting(path: Path, table: str, key: str, value: str) -> str | None:
    """Set `[table] key = "value"` in the file at `path`; return the value it had.

    The new file replaces the old one in one step (a temporary file in the same
    folder, then a rename) and keeps its permissions, so a crash leaves either the
    old file or the new one, never half of one.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        new = set_string(text, table, key, value)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    old = tomllib.loads(text).get(table, {}).get(key)
    stat = path.stat()
    fd, draft = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(new)
        os.chmod(draft, stat.st_mode & 0o7777)
        # Only root can give a file away; otherwise the owner is whoever runs this.
        with contextlib.suppress(PermissionError):
            os.chown(draft, stat.st_uid, stat.st_gid)
        os.replace(draft, path)
    except OSError as exc:
        Path(draft).unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write it: {exc.strerror}") from None
    return old if isinstance(old, str) else None
