"""``GET /api/<module>/<entity>/exports/<name>`` and ``.../<id>/exports/<name>``: records
rendered through a template the entity declares (``exports:`` in YAML), e.g. a WITSML
``drillReport`` or a PRODML volumes document.

The records are read like the list reads them: the same filters and ``sort`` (no pages), the
caller's row scope, without the fields hidden from the caller, with their child tables.
The link fields named in ``expand`` bring the linked record (``links.<field>``; null when the
caller may not read it or it is outside their scope). Values are as the API serves them
(decimals as text), except the fields listed in ``units``, converted from the field's unit
(:mod:`engine.units`) and given as numbers. Templates are Jinja, in a sandbox, with
autoescaping for XML/HTML and undefined names as errors; the context is ``items`` (each
``{"record": ..., "links": ...}``), ``record``/``links`` (the first item), ``entity``,
``now`` (UTC, ISO 8601) and the filter ``convert(value, from_unit, to_unit)``.
Needs the ``read`` and ``export`` permissions.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, request
from flask_smorest import Blueprint
from werkzeug.datastructures import MultiDict

from engine.rules import capabilities_for
from engine.units import convert

from . import security
from .errors import ApiError
from .openapi import ID_PARAMETER, filter_parameters
from .query import order_by
from .reads import child_rows

if TYPE_CHECKING:
    from jinja2 import Template

    from .context import ApiContext
    from .resource import Resource

log = logging.getLogger(__name__)
MAX_RECORDS = 10_000
_REFUSED = ("limit", "offset", "cursor", "count", "expand", "fields")


@cache
def load_template(path: Path, autoescape: bool) -> Template:
    """The compiled template at ``path`` (sandboxed; undefined names are errors)."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined,
                                        keep_trailing_newline=True, trim_blocks=True,
                                        lstrip_blocks=True)
    env.filters["convert"] = lambda v, a, b: None if v is None else convert(
        Decimal(str(v)), a, b)
    return env.from_string(path.read_text(encoding="utf-8"))


def _number(value: Any) -> Any:
    return None if value is None else Decimal(str(value))


def _records(ctx: ApiContext, conn: sa.Connection, res: Resource, where: list[Any],
             order: list[Any]) -> list[dict[str, Any]]:
    hidden = security.field_rules(ctx, res.entity).hidden
    names = tuple(n for n in res.api.names if n not in hidden)
    stmt = sa.select(*res.api.columns(names)).where(*where).order_by(*order)
    rows = conn.execute(stmt.limit(MAX_RECORDS + 1)).all()
    if len(rows) > MAX_RECORDS:
        raise ApiError(400, f"an export renders at most {MAX_RECORDS} records; filter more",
                       {"query": {"_": ["too many records"]}})
    dump = res.api.dumper(names)
    out = [dump(r) for r in rows]
    ids = [r["id"] for r in out]
    for name, child in res.children.items():
        if name in hidden:
            continue
        by_parent = child_rows(conn, child, ids) if ids else {}
        for r in out:
            r[name] = by_parent.get(r["id"], [])
    return out


def _links(ctx: ApiContext, conn: sa.Connection, res: Resource, record: dict[str, Any],
           expand: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fname in expand:
        target = ctx.resources.get(res.entity.targets.get(fname, ""))
        value = record.get(fname)
        if target is None or value is None or not ctx.authorize(target.entity, "read"):
            out[fname] = None
            continue
        where = [target.table.c.id == value]
        scope = ctx.scope(target)
        if scope is not None:
            where.append(scope)
        items = _records(ctx, conn, target, where, [])
        out[fname] = items[0] if items else None
    return out


def render_export(ctx: ApiContext, res: Resource, name: str, record_id: int | None
                  ) -> Response:
    """Render export ``name`` of one record or of the records matching the filters."""
    spec = res.entity.spec.exports.get(name)
    path = capabilities_for(ctx.model).templates.get((res.qualname, name))
    if spec is None or path is None:
        raise ApiError(404, f"{res.qualname} has no export '{name}'")
    ctx.check(res, "read")
    ctx.check(res, "export")
    args: MultiDict[str, str] = MultiDict(list(request.args.items(multi=True)))
    for param in _REFUSED:
        if param in args:
            raise ApiError(400, f"an export takes filters and sort, not {param}",
                           {"query": {param: ["not for exports"]}})
    with ctx.engine.connect() as conn:
        if record_id is None:
            q = security.list_query(ctx, res, args)
            where, order = list(q.where), order_by(res, q.order)
        else:
            where, order = [res.table.c.id == record_id], []
            scope = ctx.scope(res)
            if scope is not None:
                where.append(scope)
        records = _records(ctx, conn, res, where, order)
        if record_id is not None and not records:
            raise ApiError(404, f"{res.qualname} {record_id} not found")
        items = []
        for r in records:
            for fname, unit in spec.units.items():
                if fname in r:
                    src = str(res.entity.fields[fname].unit)
                    r[fname] = convert(_number(r[fname]), src, unit)
            items.append({"record": r, "links": _links(ctx, conn, res, r, spec.expand)})
    autoescape = "xml" in spec.media_type or "html" in spec.media_type
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body = load_template(path, autoescape).render(
        items=items, record=items[0]["record"] if items else None,
        links=items[0]["links"] if items else {}, entity=res.qualname,
        now=now.isoformat().replace("+00:00", "Z"))
    suffix = f"_{record_id}" if record_id is not None else ""
    filename = f"{res.entity.module}_{res.entity.name}{suffix}_{name}.{spec.extension}"
    log.info("export %s of %s: %d record(s)", name, res.qualname, len(items))
    return Response(body, content_type=f"{spec.media_type}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def add_template_export_routes(ctx: ApiContext, res: Resource, blp: Blueprint) -> None:
    """Register the entity's template exports, when it declares any."""
    exports = res.entity.spec.exports
    if not exports:
        return
    ent = res.entity.name
    names = sorted(exports)
    label = res.entity.labels.get("en")
    name_param = {"in": "path", "name": "export", "required": True,
                  "schema": {"type": "string", "enum": names}}
    content = {spec.media_type: {"schema": {"type": "string"}} for spec in exports.values()}

    def many(export: str) -> Response:
        return render_export(ctx, res, export, None)

    def one(record_id: int, export: str) -> Response:
        return render_export(ctx, res, export, record_id)

    kinds = ", ".join(names)
    blp.route(f"/{ent}/exports/<any({kinds}):export>", endpoint=f"{ent}_template_exports",
              methods=["GET"], parameters=[name_param])(Blueprint.doc(
                  summary=f"Export {label} records in an industry format", tags=[res.entity.module],
                  description="The records matching the filters, rendered by the format's "
                              "template. Needs the read and export permissions.",
                  parameters=[{"in": "query", "name": "sort", "schema": {"type": "string"}},
                              *filter_parameters(res)],
                  responses={"200": {"description": "the document", "content": content},
                             "400": "BAD_REQUEST", "403": "FORBIDDEN",
                             "404": "NOT_FOUND"})(many))
    blp.route(f"/{ent}/<id:record_id>/exports/<any({kinds}):export>",
              endpoint=f"{ent}_template_export", methods=["GET"],
              parameters=[ID_PARAMETER, name_param])(Blueprint.doc(
                  summary=f"Export one {label} record in an industry format",
                  tags=[res.entity.module],
                  responses={"200": {"description": "the document", "content": content},
                             "403": "FORBIDDEN", "404": "NOT_FOUND"})(one))
