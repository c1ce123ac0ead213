"""OpenAPI documentation of the generated operations (``Blueprint.doc`` keyword arguments).

Documentation only: nothing here runs per request. Request bodies and responses point at the
generated marshmallow schemas, which apispec turns into components; errors point at
flask-smorest's lazily registered responses (``BAD_REQUEST``, ``CONFLICT``...).
"""

from __future__ import annotations

import http
from typing import Any

from .codecs import OPERATORS
from .query import CONTROL
from .resource import Resource
from .schemas import bulk_result_schema, page_schema, patch_schema

ID_PARAMETER: dict[str, Any] = {
    "in": "path", "name": "record_id", "required": True,
    "schema": {"type": "integer", "minimum": 1}, "description": "record id",
}

_CONTROL_PARAMETERS: list[dict[str, Any]] = [
    {"in": "query", "name": "sort", "schema": {"type": "string"},
     "description": "comma-separated fields; prefix '-' for descending (default: id)"},
    {"in": "query", "name": "limit", "schema": {"type": "integer", "minimum": 1},
     "description": "page size (default and maximum from the server settings)"},
    {"in": "query", "name": "offset", "schema": {"type": "integer", "minimum": 0},
     "description": "rows to skip (offset pagination; not with cursor)"},
    {"in": "query", "name": "cursor", "schema": {"type": "string"},
     "description": "next_cursor of the previous page (keyset pagination, same sort)"},
    {"in": "query", "name": "count", "schema": {"type": "string",
                                                 "enum": ["none", "exact", "estimated"]},
     "description": "include the number of matching records (default none)"},
    {"in": "query", "name": "fields", "schema": {"type": "string"},
     "description": "comma-separated fields to return (id is always returned)"},
    {"in": "query", "name": "expand", "schema": {"type": "string"},
     "description": "comma-separated link fields (records under _expanded) or table fields "
                    "(rows inline)"},
]


def _status(code: int) -> str:
    return http.HTTPStatus(code).name


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): _status(c) for c in codes}


def _json(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def filter_parameters(res: Resource) -> list[dict[str, Any]]:
    """One documented query parameter per filterable column (equality form)."""
    params = []
    for name, codec in res.api.codecs.items():
        ops = ", ".join(f"__{op}" for op in OPERATORS if op in codec.ops and op != "eq")
        params.append({
            # a field named like a control parameter (sort, count...) is filtered as name__eq
            "in": "query", "name": f"{name}__eq" if name in CONTROL else name,
            "required": False,
            "schema": {"type": "string"},
            "description": (f"filter {codec.type} field '{name}' (equals); also "
                            f"{name}{{{ops}}}=value"),
        })
    return params


def resource_docs(res: Resource) -> dict[str, dict[str, Any]]:
    """``Blueprint.doc`` keyword arguments for each operation of ``res``."""
    ent = res.entity
    label = ent.labels.get("en")
    record = res.output_schema
    page = page_schema(ent, record)
    body = {"required": True, "content": {"application/json": {"schema": res.schema}}}
    bulk_body = {"required": True, "content": {"application/json": {
        "schema": type(res.schema)(many=True)}}}
    tags = [ent.module]
    created = _json(record, "the created record")
    created["links"] = record_links(res, "$response.body#/id")
    docs: dict[str, dict[str, Any]] = {
        "list": {"summary": f"List {label} records", "tags": tags,
                 "parameters": _CONTROL_PARAMETERS + filter_parameters(res),
                 "responses": {"200": _json(page, "one page of records"),
                               **_errors(400, 403)}},
        "create": {"summary": f"Create a {label} record", "tags": tags, "requestBody": body,
                   "responses": {"201": created,
                                 **_errors(400, 403, 409, 415, 422)}},
        "bulk": {"summary": f"Create many {label} records in one transaction", "tags": tags,
                 "description": "All or nothing: any invalid row fails the whole request; "
                                "errors are keyed by row index.",
                 "requestBody": bulk_body,
                 "responses": {"201": _json(bulk_result_schema(ent, record),
                                            "the created records, in input order"),
                               **_errors(400, 403, 409, 415, 422)}},
        "get": {"summary": f"Read a {label} record", "tags": tags,
                "parameters": [p for p in _CONTROL_PARAMETERS
                               if p["name"] in ("fields", "expand")],
                "responses": {"200": _json(record, "the record with its child tables"),
                              **_errors(400, 403, 404)}},
        "put": {"summary": f"Replace a {label} record", "tags": tags, "requestBody": body,
                "description": "Fields left out take their default (as on create); table "
                               "fields left out become empty. Send the version you read.",
                "responses": {"200": _json(record, "the updated record"),
                              **_errors(400, 403, 404, 409, 415, 422)}},
        "patch": {"summary": f"Change some fields of a {label} record", "tags": tags,
                  "requestBody": {"required": True, "content": {"application/json": {
                      "schema": patch_schema(type(res.schema))}}},
                  "responses": {"200": _json(record, "the updated record"),
                                **_errors(400, 403, 404, 409, 415, 422)}},
        "delete": {"summary": f"Delete a {label} record", "tags": tags,
                   "parameters": [{"in": "query", "name": "version", "required": False,
                                   "schema": {"type": "integer"},
                                   "description": "refuse (409) unless this is the current "
                                                  "version"}],
                   "responses": {"204": {"description": "deleted"},
                                 **_errors(403, 404, 409)}},
    }
    for op, doc in docs.items():
        doc["operationId"] = operation_id(res, op)
    return docs


def operation_id(res: Resource, op: str) -> str:
    """The ``operationId`` of one generated operation (``showcase_asset_get``)."""
    return f"{res.entity.module}_{res.entity.name}_{op}"


def record_links(res: Resource, id_expression: str) -> dict[str, Any]:
    """OpenAPI links from an answer holding a record id to the record's operations (what a
    stateful client or fuzzer follows)."""
    ops = ["get", "put", "patch", "delete"]
    if res.entity.workflow is not None:
        ops += ["actions", "transitions"]
    return {f"{op.capitalize()}Record": {"operationId": operation_id(res, op),
                                         "parameters": {"record_id": id_expression}}
            for op in ops}
