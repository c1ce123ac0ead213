"""Parse a list request's query string into typed SQL pieces, and the opaque cursors.

Query parameters (see ``docs/api.md``): ``field=v`` and ``field__op=v`` filters, ``sort``,
``limit``/``offset``, ``cursor``, ``count``, ``fields`` and ``expand``. Every name and value
is checked against the entity's codecs; a mistake raises :class:`QueryError`, which the view
turns into a 400 naming the parameter. Nothing from the query string reaches SQL text: values
are bound parameters and names are looked up in the table's columns.
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from engine.db.tables import UNICODE_LOWER
from metamodel.errors import expected_one_of

from . import bounds
from .codecs import OPERATORS, Codec, clean_text
from .errors import ApiError
from .resource import Resource

#: characters LIKE gives a meaning to, escaped with '/'
_LIKE_ESCAPES = re.compile(r"[/%_]")

#: Parameters that are not filters. A field with one of these names is filtered as name__eq.
CONTROL = frozenset({"sort", "limit", "offset", "cursor", "count", "fields", "expand"})
COUNT_MODES = ("none", "exact", "estimated")


class QueryError(Exception):
    """A bad query parameter: ``param`` is named in the 400 answer."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass
class ListQuery:
    """A parsed list request."""

    where: list[sa.ColumnElement[bool]]
    #: (column, descending); always ends with ``id`` so the order is total
    order: list[tuple[str, bool]]
    limit: int
    offset: int
    #: the sort-key values of the last row of the previous page (cursor pagination)
    after: list[Any] | None
    count: str
    #: columns to serve; None means all
    fields: tuple[str, ...] | None
    #: table fields to serve inline
    tables: list[str]
    #: link fields whose records to add under ``_expanded``
    expand: list[str]
    sort_text: str


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _single(args: MultiDict[str, str], name: str) -> str | None:
    values = args.getlist(name)
    if len(values) > 1:
        raise QueryError(name, f"'{name}' is given {len(values)} times; give it once")
    return values[0] if values else None


def _int_param(args: MultiDict[str, str], name: str, default: int, low: int, high: int
               ) -> int:
    try:
        value = bounds.bounded(name, _single(args, name), low, high, default=default)
    except ApiError as err:
        raise QueryError(name, err.message) from None
    assert value is not None
    return value


_COMPARE = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge,
    "lt": operator.lt, "lte": operator.le,
}


def filter_clause(res: Resource, param: str, codec: Codec, op: str,
                  values: list[str], dialect: str) -> sa.ColumnElement[bool]:
    """One filter as a SQL expression with bound values."""
    col = res.table.c[codec.name]

    def parse(text: str) -> Any:
        try:
            return codec.parse(text)
        except ValueError as exc:
            raise QueryError(param, f"{param}: {exc}") from None

    if op == "in":
        items = [parse(v) for text in values for v in _split(text)]
        if not items:
            raise QueryError(param, f"{param}: give a comma-separated list of values")
        return col.in_(items)
    if op == "isnull":
        flags = []
        for text in values:
            low = text.strip().lower()
            if low not in ("true", "false", "1", "0"):
                raise QueryError(param, f"{param}: use true or false, not '{text}'")
            flags.append(low in ("true", "1"))
        return sa.and_(*(col.is_(None) if f else col.is_not(None) for f in flags))
    clauses = []
    for text in values:
        if op in ("contains", "icontains"):
            parse_text = clean_text
            try:
                parse_text(text)
            except ValueError as exc:
                raise QueryError(param, f"{param}: {exc}") from None
            if op == "icontains" and dialect == "sqlite" and not text.isascii():
                # SQLite folds ASCII only: lower both sides in Python, as PostgreSQL's
                # ILIKE does (an ASCII search keeps SQLite's own, faster, LIKE)
                pattern = "%" + _LIKE_ESCAPES.sub(r"/\g<0>", text.lower()) + "%"
                clauses.append(getattr(sa.func, UNICODE_LOWER)(col).like(pattern, escape="/"))
            elif op == "icontains":
                clauses.append(col.icontains(text, autoescape=True))
            elif dialect == "sqlite":  # LIKE is case-insensitive on SQLite; instr is not
                clauses.append(sa.func.instr(col, text) > 0)
            else:
                clauses.append(col.contains(text, autoescape=True))
            continue
        clauses.append(_COMPARE[op](col, parse(text)))
        if op == "ne" and codec.nullable:
            clauses[-1] = sa.or_(clauses[-1], col.is_(None))
    return sa.and_(*clauses)


def visible_codecs(res: Resource, hidden: frozenset[str]) -> dict[str, Codec]:
    """The codecs of the fields the caller may name (hidden ones read as missing)."""
    codecs = res.api.codecs
    return {n: c for n, c in codecs.items() if n not in hidden} if hidden else codecs


def _parse_filters(res: Resource, args: MultiDict[str, str], dialect: str,
                   hidden: frozenset[str] = frozenset()) -> list[sa.ColumnElement[bool]]:
    codecs = visible_codecs(res, hidden)
    where = []
    for param in args:
        if param in CONTROL:
            continue
        name, sep, op = param.partition("__")
        if sep and not op:
            raise QueryError(param, f"'{param}' names no operator after '__'"
                             + _hint(expected_one_of(op, list(OPERATORS))))
        op = op or "eq"
        codec = codecs.get(name)
        if codec is None:
            if name in res.children and name not in hidden:
                raise QueryError(param, f"'{name}' is a child table and cannot be filtered")
            raise QueryError(param, f"unknown filter field '{name}'"
                             + _hint(expected_one_of(name, list(codecs))))
        if op not in OPERATORS:
            raise QueryError(param, f"unknown filter operator '{op}' in '{param}'"
                             + _hint(expected_one_of(op, list(OPERATORS))))
        if op not in codec.ops:
            raise QueryError(param, f"operator '{op}' does not apply to {codec.type} field "
                             f"'{name}' (use one of {', '.join(sorted(codec.ops))})")
        where.append(filter_clause(res, param, codec, op, args.getlist(param), dialect))
    return where


def _hint(text: str | None) -> str:
    return f"; {text}" if text else ""


def _parse_sort(res: Resource, text: str | None, hidden: frozenset[str] = frozenset()
                ) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    codecs = visible_codecs(res, hidden)
    for part in _split(text or ""):
        desc = part.startswith("-")
        name = part[1:] if part[0] in "+-" else part  # one sign at most: '--code' is wrong
        codec = codecs.get(name)
        if codec is None or not codec.sortable:
            why = "is not sortable" if codec else "is not a field"
            raise QueryError("sort", f"sort: '{name}' {why}"
                             + _hint(expected_one_of(name, list(codecs))))
        if any(n == name for n, _ in order):
            raise QueryError("sort", f"sort: '{name}' is given twice")
        order.append((name, desc))
    if not any(n == "id" for n, _ in order):
        order.append(("id", False))
    return order


def _parse_names(res: Resource, param: str, text: str | None,
                 hidden: frozenset[str] = frozenset()) -> list[str]:
    names = _split(text or "")
    known = [n for n in (*res.api.codecs, *res.children) if n not in hidden]
    for name in names:
        if name not in known:
            raise QueryError(param, f"{param}: unknown field '{name}'"
                             + _hint(expected_one_of(name, known)))
    return names


def parse_list_query(res: Resource, args: MultiDict[str, str], *, default_limit: int,
                     max_limit: int, dialect: str, hidden: frozenset[str] = frozenset()
                     ) -> ListQuery:
    """Parse and check every parameter of a list request; raise QueryError on a mistake.

    ``hidden``: fields hidden from the caller; naming one reads exactly like naming a field
    that does not exist (and they are left out of every "expected one of" hint).
    """
    limit = _int_param(args, "limit", default_limit, 1, bounds.INT32_MAX)
    if limit > max_limit:
        raise QueryError("limit", f"limit {limit} is larger than the maximum page size "
                         f"{max_limit}")
    offset = _int_param(args, "offset", 0, *bounds.OFFSET)
    count_text = _single(args, "count")
    count = "none" if count_text is None else count_text.strip().lower()
    if count not in COUNT_MODES:
        raise QueryError("count", f"count must be one of {', '.join(COUNT_MODES)}")
    sort_text = _single(args, "sort") or ""
    order = _parse_sort(res, sort_text, hidden)
    after = None
    cursor = _single(args, "cursor")
    if cursor:
        if offset:
            raise QueryError("offset", "offset cannot be combined with cursor")
        after = decode_cursor(res, cursor, sort_text, order)
    fields_text = _single(args, "fields")
    fields = None
    tables: list[str] = []
    if fields_text is not None:
        chosen = _parse_names(res, "fields", fields_text, hidden)
        tables = [n for n in chosen if n in res.children]
        fields = tuple(["id"] + [n for n in chosen if n != "id" and n not in res.children])
    expand = []
    for name in _parse_names(res, "expand", ",".join(args.getlist("expand")), hidden):
        if name in res.children:
            if name not in tables:
                tables.append(name)
        elif name in res.links:
            expand.append(name)
        else:
            raise QueryError("expand", f"expand: '{name}' is neither a link nor a table field")
    return ListQuery(_parse_filters(res, args, dialect, hidden), order, limit, offset, after, count,
                     fields, tables, expand, sort_text)


# --------------------------------------------------------------------------- cursors


def encode_cursor(res: Resource, q: ListQuery, row: dict[str, Any]) -> str:
    """An opaque token for the page after ``row`` (its sort-key values, JSON, base64url)."""
    payload = {"s": q.sort_text, "v": [row[name] for name, _ in q.order]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(res: Resource, token: str, sort_text: str,
                  order: list[tuple[str, bool]]) -> list[Any]:
    """The sort-key values in ``token``; QueryError when it is malformed or for another sort."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        values = payload["v"]
        sort = payload["s"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise QueryError("cursor", "cursor is not a token returned as next_cursor") from None
    if sort != sort_text or not isinstance(values, list) or len(values) != len(order):
        raise QueryError("cursor", "cursor was issued for another sort order; "
                         "use the same sort= as the request that returned it")
    out: list[Any] = []
    for (name, _), value in zip(order, values, strict=True):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(res.api.codecs[name].parse(str(value)))
        except ValueError:
            raise QueryError("cursor", "cursor holds an invalid value") from None
    return out


def keyset_clause(res: Resource, order: list[tuple[str, bool]], after: list[Any]
                  ) -> sa.ColumnElement[bool]:
    """Rows strictly after ``after`` in ``order`` (nulls sort last in both directions)."""
    clause: sa.ColumnElement[bool] | None = None
    for (name, desc), value in reversed(list(zip(order, after, strict=True))):
        col = res.table.c[name]
        nullable = res.api.codecs[name].nullable
        if value is None:
            eq = col.is_(None)
            beyond = None
        else:
            bound = sa.bindparam(None, value, type_=col.type)  # also for True/False
            eq = col == bound
            beyond = col < bound if desc else col > bound
            if nullable:
                beyond = sa.or_(beyond, col.is_(None))
        if clause is None:
            clause = beyond if beyond is not None else sa.false()
        elif beyond is None:
            clause = sa.and_(eq, clause)
        else:
            clause = sa.or_(beyond, sa.and_(eq, clause))
    assert clause is not None
    return clause


def order_by(res: Resource, order: list[tuple[str, bool]]) -> list[Any]:
    """ORDER BY terms; nullable columns get NULLS LAST so cursors are the same on every DB."""
    terms = []
    for name, desc in order:
        col = res.table.c[name]
        term = col.desc() if desc else col.asc()
        if res.api.codecs[name].nullable:
            term = term.nulls_last()
        terms.append(term)
    return terms
