"""Database rows as cache values: a model instance to JSON and back.

A row is kept as its columns (dates as ISO text, UUIDs and enums as text) and comes
back as an instance exactly like one the ORM loads (`_saved_in_db`), so code that
reads it cannot tell the difference. Related rows are not part of it.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar

from tortoise.models import Model

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


def load(model: type[M], data: dict[str, Any]) -> M:
    """The instance `dump` was made from, as if just read from the database."""
    fields = model._meta.fields_map
    values = {}
    for name, raw in data.items():
        field = fields.get(name)
        if field is None:
            continue  # a column this version no longer has
        if raw is not None and isinstance(field.field_type, type):
            if issubclass(field.field_type, datetime):
                raw = datetime.fromisoformat(raw)
            elif issubclass(field.field_type, uuid.UUID):
                raw = uuid.UUID(raw)
        values[model._meta.fields_db_projection.get(name, name)] = raw
    return model._init_from_db(**values)


def shape(model: type[Model]) -> str:
    """A short name for the model's columns, part of the keys of its rows: an entry
    made by a version with other columns is never read as this one's."""
    columns = ",".join(sorted(model._meta.fields_db_projection))
    return hashlib.sha1(columns.encode()).hexdigest()[:8]
