"""Marshmallow schemas generated from the model with ``Schema.from_dict``.

Input schemas validate request bodies (types, required, lengths, patterns, ranges, enum
codes, decimal digits) and are what the OpenAPI document shows for request bodies. Output
schemas only document responses: records are serialised by the precompiled dumpers in
:mod:`engine.api.resource`, which are several times faster than ``Schema.dump``.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import marshmallow as ma
from marshmallow import fields as mf
from marshmallow.validate import Range

from metamodel import Entity, Model
from metamodel.spec import SYSTEM_COLUMNS

from .bounds import INT32
from .codecs import INT64, StrictInteger, input_field, output_field

#: Keys a client may send back unchanged from a read; input ignores them.
READ_ONLY = frozenset(SYSTEM_COLUMNS) - {"version"} | {"_expanded"}
CHILD_READ_ONLY = frozenset(SYSTEM_COLUMNS) - {"id"} | {"parent_id", "idx"}


class InputSchema(ma.Schema):
    """Base of generated input schemas: unknown keys are errors, read-only keys are ignored."""

    class Meta:
        unknown = ma.RAISE

    #: keys dropped before validation (system columns a client read and sends back)
    ignored: ClassVar[frozenset[str]] = frozenset()

    @ma.pre_load
    def _drop_read_only(self, data: Any, **_kwargs: Any) -> Any:
        if isinstance(data, dict) and not self.ignored.isdisjoint(data):
            return {k: v for k, v in data.items() if k not in self.ignored}
        return data


def schema_name(ent: Entity, suffix: str = "") -> str:
    """A component name such as ``ShowcaseAssetInput``."""
    return "".join(p.capitalize() for p in f"{ent.module}_{ent.name}".split("_")) + suffix


def _required_on_input(f: Any) -> bool:
    # computed and fetched fields are filled by the server (engine.api.prepare)
    return bool(f.required) and f.default is None and f.computed is None \
        and f.fetch_from is None


def child_input_schema(ent: Entity) -> type[ma.Schema]:
    """Input schema of one child-table row; ``id`` keeps an existing row."""
    fields: dict[str, mf.Field[Any]] = {
        "id": StrictInteger(allow_none=True, validate=[Range(*INT64)], metadata={
            "description": "id of an existing row to keep; leave out for a new row"}),
    }
    for name, f in ent.stored_fields().items():
        fields[name] = input_field(name, f, required=_required_on_input(f))
    cls = cast(type[InputSchema], InputSchema.from_dict(fields, name=schema_name(ent, "Input")))
    cls.ignored = CHILD_READ_ONLY
    return cls


def input_schema(model: Model, ent: Entity) -> type[ma.Schema]:
    """Input schema of a record for create, PUT and (loaded with ``partial``) PATCH."""
    fields: dict[str, mf.Field[Any]] = {
        "version": StrictInteger(allow_none=True, load_only=True, validate=[Range(*INT32)],
                                 metadata={
            "description": "version the client read; a stale version is refused with 409"}),
    }
    for name, f in ent.fields.items():
        if f.type == "table":
            nested = child_input_schema(model.entity(ent.targets[name]))
            fields[name] = input_field(name, f, required=False, nested=nested)
        else:
            fields[name] = input_field(name, f, required=_required_on_input(f)
                                       and name not in ent.derived_fields())
    for name in ent.derived_fields():  # filled by the server; sending back the same is fine
        if name in fields:
            fields[name].metadata["readOnly"] = True
    for name in sorted(READ_ONLY):  # documented so a record read can be sent back as is
        fields[name] = mf.Raw(allow_none=True, metadata={
            "readOnly": True, "description": "kept by the server; ignored on input"})
    cls = cast(type[InputSchema], InputSchema.from_dict(fields, name=schema_name(ent, "Input")))
    cls.ignored = READ_ONLY
    return cls


def patch_schema(input_cls: type[ma.Schema]) -> ma.Schema:
    """The input schema as a PATCH body documents it: every field optional (partial)."""
    cls = type(input_cls.__name__.removesuffix("Schema") + "Patch", (input_cls,), {})
    return cast(ma.Schema, cls(partial=True))


def _system_output_fields() -> dict[str, mf.Field[Any]]:
    return {
        "id": mf.Integer(),
        "created_at": mf.AwareDateTime(),
        "created_by": mf.String(allow_none=True),
        "updated_at": mf.AwareDateTime(),
        "updated_by": mf.String(allow_none=True),
        "version": mf.Integer(metadata={"description": "optimistic-locking version"}),
    }


def output_schema(model: Model, ent: Entity) -> type[ma.Schema]:
    """Schema documenting a record as the API returns it."""
    fields = _system_output_fields()
    for name, f in ent.fields.items():
        if f.type == "table":
            child = model.entity(ent.targets[name])
            row: dict[str, mf.Field[Any]] = {"id": mf.Integer(), "idx": mf.Integer()}
            row.update({n: output_field(n, cf) for n, cf in child.stored_fields().items()})
            row_cls = ma.Schema.from_dict(row, name=schema_name(child))
            fields[name] = mf.List(mf.Nested(row_cls))
        else:
            fields[name] = output_field(name, f)
    for name in set(SYSTEM_COLUMNS) | ent.derived_fields():  # kept or computed by the server
        if name in fields:
            fields[name].metadata["readOnly"] = True
    fields["_expanded"] = mf.Dict(metadata={
        "description": "linked records requested with expand=, by link field"})
    return ma.Schema.from_dict(fields, name=schema_name(ent))


def page_schema(ent: Entity, record: type[ma.Schema]) -> type[ma.Schema]:
    """Schema documenting one page of a list."""
    return ma.Schema.from_dict({
        "items": mf.List(mf.Nested(record)),
        "next_cursor": mf.String(allow_none=True, metadata={
            "description": "pass as cursor= to get the next page; null on the last page"}),
        "count": mf.Integer(allow_none=True, metadata={
            "description": "total matching records when count=exact|estimated, else null"}),
    }, name=schema_name(ent, "Page"))


def bulk_result_schema(ent: Entity, record: type[ma.Schema]) -> type[ma.Schema]:
    """Schema documenting the answer to a bulk create."""
    return ma.Schema.from_dict({"items": mf.List(mf.Nested(record))},
                               name=schema_name(ent, "BulkResult"))
