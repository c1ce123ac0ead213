"""What a :class:`~engine.api.resource.Resource` expects of its rules (``Resource.behaviour``).

A protocol, implemented by :class:`engine.api.prepare.Behaviour`, so that the resource (and
everything that reads it: queries, reads, writes) does not import the write path's rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from metamodel.spec import TransitionSpec


@dataclass
class Prepared:
    """An update ready to be written: the values, and the record before it."""

    data: dict[str, Any]
    before: dict[str, Any]
    before_rows: dict[str, list[dict[str, Any]]]


class RecordBehaviour(Protocol):
    """The model's rules of one resource, applied on write and read."""

    def serve(self, conn: Connection, rows: Sequence[Any], names: Sequence[str],
              items: list[dict[str, Any]]) -> None:
        """Add virtual computed fields to served records."""

    def before_insert(self, conn: Connection, items: Sequence[Mapping[str, Any]], *,
                      bulk: bool = False) -> list[dict[str, Any]]:
        """The values to insert for validated ``items``; 422 when a rule fails."""

    def before_update(self, conn: Connection, record_id: int, data: Mapping[str, Any], *,
                      partial: bool) -> dict[str, Any]:
        """The values to write for a PUT/PATCH; 404/409/422 when it cannot be written."""

    def prepare_update(self, conn: Connection, record_id: int, data: Mapping[str, Any], *,
                       partial: bool, transition: TransitionSpec | None = None,
                       scope: sa.ColumnElement[bool] | None = None, lock: bool = True
                       ) -> Prepared:
        """Check and derive an update (or a workflow ``transition`` with its values)."""
