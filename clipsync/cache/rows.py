"""Database rows as cache values: a model instance to JSON and back.

A row is kept as its columns (dates as ISO text, UUIDs and enums as text) and comes
back as an instance exactly like one the ORM loads (`_saved_in_db`), so code that
reads it cannot tell the difference: its values are its own, never the cache's
read-only ones. Related rows are not part of it.

The memory cache hands out the same read-only value on every hit of an entry, so the
instance made from it the first time is kept (the latest `MADE` of them, by the value
they came from) and every later load of that value is a copy of it: its attributes
in a new instance, rather than every column parsed again. The kept one is never
handed out; what a request sets on its copy stays on its copy.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from types import MappingProxyType
from typing import Any, TypeVar

from tortoise.models import Model

from clipsync.cache.values import thaw

M = TypeVar("M", bound=Model)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def dump(row: Model) -> dict[str, Any]:
    """The columns of `row` as a JSON object."""
    return {name: _plain(getattr(row, name)) for name in row._meta.fields_db_projection}


# The instances made lately: id(value) -> (value, instance, its dict and list attributes).
_made: dict[int, tuple[Mapping[str, Any], Any, tuple[str, ...]]] = {}
MADE = 2048


def load(model: type[M], data: Mapping[str, Any]) -> M:
    """The instance `dump` was made from, as if just read from the database."""
    if type(data) is not MappingProxyType:
        return _parsed(model, data)  # a value that could still change: not kept
    made = _made.get(id(data))
    if made is None or made[0] is not data or type(made[1]) is not model:
        row = _parsed(model, data)
        containers = tuple(k for k, v in vars(row).items() if isinstance(v, dict | list))
        if len(_made) >= MADE:
            _made.clear()
        # `data` itself is kept with it, so no other value can take its id meanwhile.
        made = _made[id(data)] = (data, row, containers)
    _, row, containers = made
    copy = model.__new__(model)
    attributes = vars(copy)
    attributes.update(vars(row))
    attributes["_await_when_save"] = {}
    for name in containers:  # a JSON column (none yet on a cached model): its own
        attributes[name] = thaw(attributes[name])
    return copy


def _parsed(model: type[M], data: Mapping[str, Any]) -> M:
    fields = model._meta.fields_map
    values = {}
    for name, raw in data.items():
        field = fields.get(name)
        if field is None:
            continue  # a column this version no longer has
        if isinstance(raw, MappingProxyType | tuple):
            raw = thaw(raw)  # a JSON column: the instance's own, as the ORM gives it
        elif raw is not None and isinstance(field.field_type, type):
            if issubclass(field.field_type, datetime):
                raw = datetime.fromisoformat(raw)
            elif issubclass(field.field_type, uuid.UUID):
                raw = uuid.UUID(raw)
        values[model._meta.fields_db_projection.get(name, name)] = raw
    return model._init_from_db(**values)


def shape(model: type[Model]) -> str:
    """A short name for the model's columns, part of the keys of its rows: an entry
    made by a version with other columns is never read as this one's."""
    # Asked for every cached row: hashed once per set of columns (the ORM adds the
    # foreign keys' columns when it starts, so the set is the key, not the model).
    columns = tuple(model._meta.fields_db_projection)
    name = _shapes.get(columns)
    if name is None:
        text = ",".join(sorted(columns))
        name = _shapes[columns] = hashlib.sha1(text.encode()).hexdigest()[:8]
    return name


_shapes: dict[tuple[str, ...], str] = {}
