"""``GET /api/<module>/<entity>/aggregate``: grouped counts, sums, averages, minima, maxima.

``?group_by=status,kind&sum=total&avg=total&min=due_on&max=due_on&count`` plus the same
filters as the list (parsed by :func:`engine.api.query.parse_list_query`), the ``read``
permission and the caller's row scope. One ``SELECT ... GROUP BY`` with bound values;
field names are looked up in the table's codecs, never put into SQL text. Answer::

    {"items": [{"group": {"status": "draft"}, "count": 3,
                "sum": {"total": "1250.00"}, "avg": {"total": "416.67"}}],
     "truncated": false}

Values are typed like the rest of the API: decimals as strings with the field's scale,
dates and datetimes in ISO 8601; ``sum`` of an int field is an int, ``avg`` of an int or
float field a float. Groups are ordered by the ``group_by`` values (nulls last); at most
``limit`` groups (default and maximum: the list's page size), ``truncated`` says when
there were more.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, request
from flask_smorest import Blueprint
from werkzeug.datastructures import MultiDict

from metamodel.errors import expected_one_of

from . import bounds, security
from .codecs import KINDS, Codec
from .docs import doc_later
from .errors import ApiError, json_response
from .openapi import filter_parameters
from .query import QueryError, parse_list_query, visible_codecs

if TYPE_CHECKING:
    from .context import ApiContext
    from .resource import Resource

log = logging.getLogger(__name__)

FUNCTIONS = ("sum", "avg", "min", "max")
#: parameters of this endpoint (not filters); ``count`` needs no value
PARAMS = ("group_by", *FUNCTIONS, "count", "limit")
#: list parameters that mean nothing here
NOT_HERE = ("sort", "offset", "cursor", "fields", "expand")


class AggregateQuery:
    """A parsed aggregate request."""

    def __init__(self) -> None:
        self.group: list[Codec] = []
        #: (function, codec)
        self.measures: list[tuple[str, Codec]] = []
        self.count = False
        self.limit = 0


def _names(res: Resource, param: str, text: str, hidden: frozenset[str]) -> list[Codec]:
    out = []
    codecs = visible_codecs(res, hidden)
    for name in (p.strip() for p in text.split(",")):
        if not name:
            continue
        codec = codecs.get(name)
        if codec is None:
            hint = expected_one_of(name, list(codecs))
            raise QueryError(param, f"{param}: unknown field '{name}'" + (f"; {hint}" if hint
                                                                           else ""))
        out.append(codec)
    return out


def parse_aggregate(res: Resource, args: MultiDict[str, str], max_groups: int,
                    hidden: frozenset[str] = frozenset()) -> AggregateQuery:
    """Parse ``group_by``, the functions, ``count`` and ``limit``; QueryError when wrong.
    Fields in ``hidden`` read as missing (and are not in hints)."""
    q = AggregateQuery()
    for param in NOT_HERE:
        if param in args:
            raise QueryError(param, f"'{param}' does not apply to aggregates (groups are "
                             "ordered by the group_by fields)")
    for param in PARAMS:
        if len(args.getlist(param)) > 1:
            raise QueryError(param, f"'{param}' is given {len(args.getlist(param))} times; "
                             "give it once, with comma-separated fields")
    for codec in _names(res, "group_by", args.get("group_by", ""), hidden):
        if not codec.sortable:
            raise QueryError("group_by", f"group_by: '{codec.name}' is a {codec.type} field "
                             "and cannot be grouped")
        if codec in q.group:
            raise QueryError("group_by", f"group_by: '{codec.name}' is given twice")
        q.group.append(codec)
    for fn in FUNCTIONS:
        for codec in _names(res, fn, args.get(fn, ""), hidden):
            if fn not in KINDS[codec.type].aggregates or codec.name in ("id", "version"):
                kinds = [k for k, kind in KINDS.items() if fn in kind.aggregates]
                raise QueryError(fn, f"{fn}: '{codec.name}' is a {codec.type} field; "
                                 f"{fn} takes {', '.join(kinds[:-1])} or {kinds[-1]} fields")
            q.measures.append((fn, codec))
    count = args.get("count")
    if count is not None:
        if count.strip().lower() not in ("", "true", "1"):
            raise QueryError("count", "count takes no value (or true)")
        q.count = True
    if not q.measures:
        q.count = True
    try:
        limit = bounds.bounded("limit", args.get("limit"), 1, max_groups, default=max_groups)
    except ApiError as err:
        raise QueryError("limit", err.message) from None
    assert limit is not None
    q.limit = limit
    return q


def _converter(fn: str, codec: Codec, f: Any) -> Callable[[Any], Any]:
    """Turns a database result of ``fn(field)`` into its JSON value (``f``: the field's
    spec, None for a system column)."""
    if fn in ("min", "max"):
        dump = codec.dump
        return (lambda v: v) if dump is None else dump
    return KINDS[codec.type].total(fn, f) or _finite


def _overflow(err: sa.exc.DBAPIError) -> bool:
    """Did the database refuse an aggregate because it overflows? (PostgreSQL: SQLSTATE
    22003; SQLite: "integer overflow")"""
    return (getattr(err.orig, "sqlstate", None) == "22003"
            or "integer overflow" in str(err.orig).lower())


class _Overflow(Exception):
    """A float aggregate beyond a double (SQLite answers ``inf``)."""


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise _Overflow
    return number


def run_aggregate(ctx: ApiContext, res: Resource) -> Response:
    """Answer one aggregate request."""
    ctx.check(res, "read")
    args = request.args
    hidden = security.field_rules(ctx, res.entity).hidden  # hidden fields read as missing
    settings = ctx.settings
    dialect = ctx.engine.dialect.name
    try:
        q = parse_aggregate(res, args, settings.max_page_size, hidden)
        filters: MultiDict[str, str] = MultiDict(
            [(k, v) for k, v in args.items(multi=True) if k not in PARAMS])
        lq = parse_list_query(res, filters, default_limit=1, max_limit=1, dialect=dialect,
                              hidden=hidden)
    except QueryError as err:
        raise ApiError(400, err.message, {"query": {err.param: [err.message]}}) from None
    t = res.table
    groups = [t.c[c.name] for c in q.group]
    columns: list[Any] = list(groups)
    convert: list[tuple[str, str, Callable[[Any], Any]]] = []
    for fn, codec in q.measures:
        col = t.c[codec.name]
        columns.append(getattr(sa.func, fn)(col))
        convert.append((fn, codec.name, _converter(fn, codec,
                                                   res.entity.fields.get(codec.name))))
    if q.count:
        columns.append(sa.func.count())
    stmt = sa.select(*columns).select_from(t)
    where = list(lq.where)
    scope = ctx.scope(res)
    if scope is not None:
        where.append(scope)
    if where:
        stmt = stmt.where(*where)
    if groups:
        stmt = (stmt.group_by(*groups)
                .order_by(*(g.asc().nulls_last() for g in groups)).limit(q.limit + 1))
    try:
        with ctx.engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except (sa.exc.DataError, sa.exc.OperationalError) as err:
        if not _overflow(err):
            raise
        asked = sorted({fn for fn, _ in q.measures})
        message = (f"{', '.join(asked)}: a result overflows the range of its type; narrow "
                   "the filters or group more finely")
        raise ApiError(422, message, {"query": {fn: [message] for fn in asked}}) from None
    truncated = len(rows) > q.limit
    items = []
    for row in rows[:q.limit]:
        item: dict[str, Any] = {"group": {}}
        for i, c in enumerate(q.group):
            v = row[i]
            item["group"][c.name] = v if v is None or c.dump is None else c.dump(v)
        pos = len(q.group)
        if q.count:
            item["count"] = int(row[-1])
        for fn, name, conv in convert:
            v = row[pos]
            pos += 1
            try:
                item.setdefault(fn, {})[name] = None if v is None else conv(v)
            except _Overflow:
                message = (f"{fn}: the {fn} of '{name}' is beyond the range of a number "
                           "(±1.8e308); narrow the filters or group more finely")
                raise ApiError(422, message, {"query": {fn: [message]}}) from None
        items.append(item)
    return json_response({"items": items, "truncated": truncated})


def _docs(res: Resource) -> dict[str, Any]:
    label = res.entity.labels.get("en")

    def param(name: str, description: str) -> dict[str, Any]:
        return {"in": "query", "name": name, "required": False, "schema": {"type": "string"},
                "description": description}

    params = [
        param("group_by", "comma-separated fields to group by (groups ordered by them)"),
        param("sum", "comma-separated int/decimal/float fields to sum"),
        param("avg", "comma-separated int/decimal/float fields to average"),
        param("min", "comma-separated number/date/datetime fields: smallest value"),
        param("max", "comma-separated number/date/datetime fields: largest value"),
        {"in": "query", "name": "count", "required": False, "allowEmptyValue": True,
         "schema": {"type": "string"}, "description": "count the records of each group "
         "(the default when no function is asked)"},
        {"in": "query", "name": "limit", "required": False,
         "schema": {"type": "integer", "minimum": 1},
         "description": "most groups to return (default and maximum: the list page size)"},
    ]
    measures = {"type": "object", "additionalProperties": {"nullable": True}}
    schema = {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "group": {"type": "object", "description": "the group_by values"},
            "count": {"type": "integer"}, "sum": measures, "avg": measures, "min": measures,
            "max": measures}}},
        "truncated": {"type": "boolean", "description": "more groups than limit"}}}
    return {"summary": f"Aggregate {label} records (group by, sum, avg, min, max, count)",
            "tags": [res.entity.module],
            "description": "Takes the same filters as the list; decimals are strings.",
            "parameters": params + [p for p in filter_parameters(res)
                                    if p["name"] not in PARAMS],
            "responses": {"200": {"description": "one item per group",
                                  "content": {"application/json": {"schema": schema}}},
                          "400": "BAD_REQUEST", "403": "FORBIDDEN"}}


def add_aggregate_route(ctx: ApiContext, res: Resource, blp: Blueprint) -> None:
    """Register ``GET /<entity>/aggregate`` on the module's blueprint."""
    name = res.entity.name

    def aggregate() -> Response:
        return run_aggregate(ctx, res)

    blp.route(f"/{name}/aggregate", endpoint=f"{name}_aggregate", methods=["GET"])(
        doc_later(lambda: _docs(res))(aggregate))
