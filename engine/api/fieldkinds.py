"""Adding a field kind is one file: it declares the kind's YAML options, its column, its
API behaviour and its type in expressions, and calls :func:`install`.

Each layer keeps its own registry, keyed by the kind's name: the language
(:func:`metamodel.spec.register_field_spec`: options, JSON Schema for editors), the tables
and revisions (:data:`engine.db.tables.SQL_TYPES`), the API
(:data:`engine.api.codecs.KINDS`: operators, parsers, JSON, marshmallow fields, fast
path, defaults, derived-value checks, ``/api/meta`` extras) and expressions
(:data:`engine.expr.entities.FIELD_TYPES`). :func:`install` fills all four, before any
project is loaded; nothing else in the engine names a kind it does not need to treat
specially. Example (the whole file of a ``percent`` kind; ``tests/support/percent_kind.py``
is this kind, with its tests in ``tests/integration/test_field_kinds.py``)::

    from typing import Literal
    from pydantic import Field
    from engine.api.codecs import DecimalKind
    from engine.api.fieldkinds import install
    from engine.db.tables import SqlType
    from engine.expr.scope import Type
    from metamodel.spec import FieldBase
    import sqlalchemy as sa

    class PercentField(FieldBase):
        type: Literal["percent"] = Field(description="Field type.")
        places: int = Field(1, ge=0, le=4, description="Digits after the point.")

    class PercentKind(DecimalKind):       # a decimal between 0 and 100
        name = "percent"
        ...

    install(PercentField, PercentKind(), lambda f: SqlType(
        sa.Numeric(3 + f.places, f.places), f"sa.Numeric({3 + f.places}, {f.places})"),
        Type.NUMBER)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.db.tables import SQL_TYPES, SqlType
from engine.expr.entities import FIELD_TYPES as EXPR_TYPES
from engine.expr.scope import Type
from metamodel.spec import FieldBase, register_field_spec, unregister_field_spec

from .codecs import KINDS, Kind


def install(spec: type[FieldBase], kind: Kind, sql: Callable[[Any], SqlType],
            expr_type: Type) -> None:
    """Make a new field kind known to the language, the tables, the API and expressions.

    :param spec: the YAML options (a ``FieldBase`` subclass, ``type: Literal[name]``)
    :param kind: the API behaviour (``kind.name`` is the kind's name)
    :param sql: field spec -> its column type and the same type as revision source
    :param expr_type: the kind's type in expressions
    """
    name = register_field_spec(spec)
    if name != kind.name:
        unregister_field_spec(name)
        raise ValueError(f"the spec says {name!r}, the API kind {kind.name!r}")
    SQL_TYPES[name] = sql
    KINDS[name] = kind
    EXPR_TYPES[name] = expr_type


def uninstall(name: str) -> None:
    """Forget a kind :func:`install` added (tests)."""
    unregister_field_spec(name)
    SQL_TYPES.pop(name, None)
    KINDS.pop(name, None)
    EXPR_TYPES.pop(name, None)
