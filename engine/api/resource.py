"""Per-entity pieces compiled once when the app is built.

A :class:`TableApi` holds, for one generated table, the codecs of its columns, the prebuilt
``SELECT`` statements and generated row dumpers (plain functions from a result row to a JSON
dict). A :class:`Resource` is a top-level entity with its child tables, link targets and
input schema. Nothing here runs per request except the dumpers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import marshmallow as ma
import sqlalchemy as sa

from metamodel import Entity, Model

from .codecs import Codec, default_value, field_codec, system_codecs
from .fastload import Loader, compile_loader
from .schemas import input_schema, output_schema

if TYPE_CHECKING:
    from .behaviour import RecordBehaviour

Dumper = Callable[[Sequence[Any]], dict[str, Any]]


def make_dumper(names: Sequence[str], codecs: dict[str, Codec]) -> Dumper:
    """A function turning a row (values in ``names`` order) into a JSON-ready dict.

    The function is generated source so a page of rows costs one dict display per row;
    names are model identifiers (``^[a-z][a-z0-9_]*$``), written with ``repr``.
    """
    env: dict[str, Any] = {}
    parts = []
    for i, name in enumerate(names):
        fn = codecs[name].dump
        if fn is None:
            parts.append(f"{name!r}: r[{i}]")
        else:
            env[f"f{i}"] = fn
            parts.append(f"{name!r}: (None if r[{i}] is None else f{i}(r[{i}]))")
    src = "def dump(r):\n    return {" + ", ".join(parts) + "}\n"
    exec(compile(src, f"<dumper {','.join(names)[:60]}>", "exec"), env)  # noqa: S102
    dump: Dumper = env["dump"]
    return dump


@dataclass
class TableApi:
    """One generated table: columns, codecs, prebuilt statements and dumpers."""

    entity: Entity
    table: sa.Table
    #: every readable column, in output order
    names: list[str]
    codecs: dict[str, Codec]
    select_all: sa.Select[Any]
    dump_all: Dumper
    #: fields of type json (None must be written as SQL NULL)
    json_fields: tuple[str, ...] = ()
    _dumpers: dict[tuple[str, ...], Dumper] = field(default_factory=dict)

    def dumper(self, names: tuple[str, ...]) -> Dumper:
        """The (cached) dumper of a column subset."""
        fn = self._dumpers.get(names)
        if fn is None:
            if len(self._dumpers) > 256:
                self._dumpers.clear()
            fn = self._dumpers[names] = make_dumper(names, self.codecs)
        return fn

    def columns(self, names: Sequence[str]) -> list[sa.ColumnElement[Any]]:
        return [self.table.c[n] for n in names]

    # Statements are built once: SQLAlchemy memoizes a statement's cache key on the object,
    # so reusing it skips rebuilding and re-hashing it on every request.

    def warm(self) -> None:
        """Build every statement now (at app build time), not on a first request."""
        _ = (self.select_by_id, self.select_by_ids, self.insert_one, self.insert_many)

    @cached_property
    def select_by_id(self) -> sa.Select[Any]:
        """All columns of the record ``:record_id``."""
        return self.select_all.where(self.table.c.id == sa.bindparam("record_id"))

    @cached_property
    def select_by_ids(self) -> sa.Select[Any]:
        """All columns of the records in ``:ids`` (expanding)."""
        return self.select_all.where(self.table.c.id.in_(sa.bindparam("ids", expanding=True)))

    @cached_property
    def insert_one(self) -> sa.Insert:
        """INSERT one row, RETURNING every served column."""
        return self.table.insert().returning(*self.columns(self.names))

    @cached_property
    def insert_many(self) -> sa.Insert:
        """INSERT many rows (executemany), RETURNING in parameter order."""
        return self.table.insert().returning(*self.columns(self.names),
                                             sort_by_parameter_order=True)


def build_table_api(ent: Entity, table: sa.Table, child: bool) -> TableApi:
    """Compile one table."""
    codecs = {c.name: c for c in system_codecs(child)}
    for name, f in ent.stored_fields().items():
        codecs[name] = field_codec(name, f)
    names = list(codecs)
    json_kinds = ("json", "attachment")
    return TableApi(ent, table, names, codecs, sa.select(*(table.c[n] for n in names)),
                    make_dumper(names, codecs),
                    tuple(n for n, f in ent.stored_fields().items() if f.type in json_kinds))


@dataclass
class ChildTable:
    """A ``table`` field of a resource: the child's compiled table and its row output."""

    field: str
    api: TableApi
    #: columns served for each row: id, idx and the child's fields
    row_names: tuple[str, ...]
    #: the site's time zone (``CAMPO_TIMEZONE``): a ``today`` default is the date there
    tz: dt.tzinfo = dt.UTC

    @cached_property
    def with_parent(self) -> tuple[str, ...]:
        return ("parent_id", *self.row_names)

    def warm(self) -> None:
        """Build the row statements now (at app build time)."""
        _ = (self.select_rows, self.insert_rows)

    @cached_property
    def select_rows(self) -> sa.Select[Any]:
        """Rows of the parents in ``:pids`` (expanding), in order."""
        t = self.api.table
        return (sa.select(*self.api.columns(self.with_parent))
                .where(t.c.parent_id.in_(sa.bindparam("pids", expanding=True)))
                .order_by(t.c.parent_id, t.c.idx, t.c.id))

    @cached_property
    def insert_rows(self) -> sa.Insert:
        """INSERT rows (executemany), RETURNING what is served, in parameter order."""
        return self.api.table.insert().returning(*self.api.columns(self.with_parent),
                                                 sort_by_parameter_order=True)


@dataclass
class Resource:
    """A top-level entity compiled for the REST API."""

    entity: Entity
    api: TableApi
    #: table field name -> child table
    children: dict[str, ChildTable]
    #: link field name -> qualified target entity
    links: dict[str, str]
    schema: ma.Schema
    #: fast path for valid bodies; None means "ask the schema" (see engine.api.fastload)
    fast_load: Loader
    #: documents the records the API serves (OpenAPI only)
    output_schema: type[ma.Schema]
    #: stored fields, in model order
    stored: list[str]
    url: str
    #: the model's rules applied on write and read (:class:`engine.api.prepare.Behaviour`);
    #: None when the entity has none
    behaviour: RecordBehaviour | None = None
    #: the site's time zone (``CAMPO_TIMEZONE``): a ``today`` default is the date there
    tz: dt.tzinfo = dt.UTC

    @property
    def table(self) -> sa.Table:
        return self.api.table

    @property
    def qualname(self) -> str:
        return self.entity.qualname

    def defaults(self) -> dict[str, Any]:
        """Values for fields left out of a create (``today``/``now`` evaluated now)."""
        out = {}
        for name in self.stored:
            f = self.entity.fields[name]
            if f.default is not None:
                out[name] = default_value(f, self.tz)
        return out


def build_resources(model: Model, metadata: sa.MetaData, url_prefix: str = "/api"
                    ) -> dict[str, Resource]:
    """Compile every top-level entity of ``model`` (child entities live inside parents)."""
    resources: dict[str, Resource] = {}
    for qual, ent in model.entities.items():
        if ent.parent is not None:
            continue
        api = build_table_api(ent, metadata.tables[ent.table], child=False)
        children = {}
        links = {}
        for name, f in ent.fields.items():
            if f.type == "table":
                child_ent = model.entity(ent.targets[name])
                capi = build_table_api(child_ent, metadata.tables[child_ent.table], child=True)
                row_names = ("id", "idx", *child_ent.stored_fields())
                children[name] = ChildTable(name, capi, row_names)
            elif f.type == "link":
                links[name] = ent.targets[name]
        for table_api in (api, *(c.api for c in children.values())):
            table_api.warm()
        for child in children.values():
            child.warm()
        schema = input_schema(model, ent)()
        resources[qual] = Resource(ent, api, children, links, schema,
                                   compile_loader(model, ent), output_schema(model, ent),
                                   list(ent.stored_fields()),
                                   f"{url_prefix}/{ent.module}/{ent.name}")
    return resources
