"""A field kind made in one file: ``percent``, a decimal from 0 to 100 with ``places``
digits after the point (default 1). Everything the engine needs to know about it is here;
``install_kind()`` registers it in the language, the tables, the API and expressions
(``engine.api.fieldkinds``). Used by ``tests/integration/test_field_kinds.py``."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field

from engine.api.codecs import DecimalKind
from engine.api.fieldkinds import install, uninstall
from engine.db.tables import SqlType
from engine.expr.scope import Type
from metamodel.spec import FieldBase

NAME = "percent"


class PercentField(FieldBase):
    """A share from 0 to 100, stored exactly."""

    type: Literal["percent"] = Field(description="Field type.")
    places: int = Field(1, ge=0, le=4, description="Digits after the decimal point (0-4).")

    def default_problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"default {value!r} is not a number"
        if not 0 <= value <= 100 or round(value, self.places) != value:
            return f"default {value} is not a percentage with {self.places} decimal place(s)"
        return None

    # what the decimal machinery reads
    @property
    def precision(self) -> int:
        return 3 + self.places

    @property
    def scale(self) -> int:
        return self.places

    @property
    def min(self) -> int:
        return 0

    @property
    def max(self) -> int:
        return 100


class PercentKind(DecimalKind):
    """Filters, JSON (a string with ``places`` digits), input checks, the fast path and
    derived-value checks of a decimal; ``/api/meta`` says the places and the bounds."""

    name = NAME

    def meta(self, f: Any) -> dict[str, Any]:
        return {"places": f.places, "min": 0, "max": 100}


def _sql(f: Any) -> SqlType:
    return SqlType(sa.Numeric(3 + f.places, f.places), f"sa.Numeric({3 + f.places}, {f.places})")


def install_kind() -> None:
    install(PercentField, PercentKind(), _sql, Type.NUMBER)


def uninstall_kind() -> None:
    uninstall(NAME)
