"""What a cache entry holds: a JSON value, handed out read-only.

Every backend hands out the same thing, on a hit and on a miss alike: the value as a
JSON round trip leaves it (object keys as text, tuples as arrays), frozen: objects as
read-only mappings (`types.MappingProxyType`), arrays as tuples, the rest (text,
numbers, true, false, null) immutable already. So the in-memory backend keeps one
decoded value per entry and gives that same object to every request that hits it,
with nothing to decode per hit; no request can change what the next one reads, and
so no entry can carry what one person's request did to it into another person's
answer. Code that needs to change a value builds its own (`thaw`).

Redis keeps the JSON text (it crosses processes); each hit decodes it into a frozen
value of its own.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any


def _plain(value: Any) -> Any:
    # A frozen value stored again (or in Redis): its objects as the dicts they wrap.
    if isinstance(value, MappingProxyType):
        return dict(value)
    raise TypeError(f"a cache value is JSON; {type(value).__name__} is not")


def encode(value: Any) -> str:
    """`value` as JSON text; a frozen value encodes as the value it was made from."""
    return json.dumps(value, separators=(",", ":"), default=_plain)


def freeze(value: Any) -> Any:
    """A value `json.loads` made, frozen: dicts as read-only mappings, lists as tuples.

    The dicts it wraps are its own new ones, reachable through the mappings only."""
    kind = type(value)
    if kind is dict:
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if kind is list:
        return tuple([freeze(item) for item in value])
    return value


def decode(payload: str | bytes) -> Any:
    """The frozen value of JSON text."""
    return freeze(json.loads(payload))


def settle(value: Any) -> Any:
    """`value` as every backend hands it out: a JSON round trip, frozen. Raises
    TypeError for what JSON cannot hold, whatever the backend."""
    return decode(encode(value))


def thaw(value: Any) -> Any:
    """A mutable copy of a frozen value: dicts and lists of the caller's own."""
    if isinstance(value, MappingProxyType | dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(item) for item in value]
    return value
