"""``GET /api/<module>/<entity>/export?format=csv|json``: every matching record, streamed.

The same filters, ``sort`` and ``fields`` as the list (no paging: the whole result), the same
row scope and field rules (hidden fields are not exported). Needs the ``read`` and
``export`` permissions. Rows are read in batches from a streaming cursor, so memory stays
flat whatever the size. CSV cells of text fields that a spreadsheet would take for a
formula (starting with ``= + - @``, tab or CR) get a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.datastructures import MultiDict

from engine import jsonio

from . import security
from .errors import ApiError
from .openapi import filter_parameters
from .query import order_by
from .resource import Resource

if TYPE_CHECKING:
    from .context import ApiContext

log = logging.getLogger(__name__)

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
#: list parameters an export does not take (it has no pages and no expansions)
REFUSED = ("limit", "offset", "cursor", "count", "expand")
BATCH = 1000
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any, text: bool) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ""  # only a row stored before non-finite numbers were refused
    if isinstance(value, dict | list):
        return jsonio.dumps(value)
    if text and isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def _csv_lines(names: list[str], texts: list[bool], items: Iterator[dict[str, Any]]
               ) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(names)
    count = 0
    for item in items:
        writer.writerow([_cell(item[n], t) for n, t in zip(names, texts, strict=True)])
        count += 1
        if count % BATCH == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _json_lines(items: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    first = True
    for item in items:
        yield ("" if first else ",") + jsonio.dumps(item)
        first = False
    yield "]"


def export_view(ctx: ApiContext, res: Resource) -> type[MethodView]:
    """The MethodView of ``res``'s export endpoint."""

    def export(self: MethodView) -> Response:
        ctx.check(res, "read")
        ctx.check(res, "export")
        fmt = (request.args.get("format") or "csv").strip().lower()
        if fmt not in FORMATS:
            raise ApiError(400, f"format must be csv or json, not '{fmt}'",
                           {"query": {"format": ["csv or json"]}})
        args: MultiDict[str, str] = MultiDict(
            [(k, v) for k, v in request.args.items(multi=True) if k != "format"])
        for param in REFUSED:
            if param in args:
                raise ApiError(400, f"an export takes filters, sort and fields, not {param}",
                               {"query": {param: ["not for exports"]}})
        q = security.list_query(ctx, res, args)
        if q.tables:
            raise ApiError(400, "an export writes columns; child tables are not exported",
                           {"query": {"fields": [", ".join(q.tables)]}})
        hidden = security.field_rules(ctx, res.entity).hidden
        names = [n for n in (q.fields or res.api.names) if n not in hidden]
        stmt = (sa.select(*res.api.columns(names)).where(*q.where)
                .order_by(*order_by(res, q.order)))
        dump = res.api.dumper(tuple(names))
        log.info("export of %s as %s", res.qualname, fmt)

        def records() -> Iterator[dict[str, Any]]:
            with ctx.engine.connect() as conn:
                result = conn.execution_options(stream_results=True,
                                                yield_per=BATCH).execute(stmt)
                for row in result:
                    yield dump(row)

        if fmt == "csv":
            texts = [res.api.codecs[n].type in ("string", "text", "enum") for n in names]
            body: Iterator[str] = _csv_lines(names, texts, records())
        else:
            body = _json_lines(records())
        filename = f"{res.entity.module}_{res.entity.name}.{fmt}"
        return Response(stream_with_context(body), mimetype=FORMATS[fmt].split(";")[0],
                        content_type=FORMATS[fmt],
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    label = res.entity.labels.get("en")
    doc = Blueprint.doc(
        summary=f"Export {label} records (CSV or JSON)", tags=[res.entity.module],
        description="Every record matching the filters (as the list takes them), in the "
                    "sort order; no pages. Needs the read and export permissions.",
        parameters=[{"in": "query", "name": "format", "schema": {"type": "string",
                                                                 "enum": list(FORMATS)},
                     "description": "csv (default) or json"},
                    {"in": "query", "name": "sort", "schema": {"type": "string"},
                     "description": "comma-separated fields; '-' for descending"},
                    {"in": "query", "name": "fields", "schema": {"type": "string"},
                     "description": "comma-separated fields to export"},
                    *filter_parameters(res)],
        responses={"200": {"description": "the records", "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": res.output_schema}}}},
            "400": "BAD_REQUEST", "403": "FORBIDDEN"})
    return type(f"{res.entity.name.title().replace('_', '')}Export", (MethodView,),
                {"get": doc(export)})


def add_export_route(ctx: ApiContext, res: Resource, blp: Blueprint) -> None:
    """Register ``/<entity>/export`` of ``res`` on its module's blueprint."""
    name = res.entity.name
    blp.route(f"/{name}/export", endpoint=f"{name}_export")(export_view(ctx, res))
