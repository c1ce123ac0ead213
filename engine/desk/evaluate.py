"""``POST /api/desk/evaluate/<module>/<entity>``: a form's rules, evaluated by the server.

The desk sends the record as the user is typing it; the answer holds what the server
would compute for it (computed and fetched fields, ``=`` defaults, child rows' computed
fields) and the state of every ``visible_if``/``required_if``/``readonly_if``. The same
compiled expressions and the same steps as a write (:class:`engine.api.prepare.Behaviour`)
produce it, so the form shows exactly what the server will decide: this is the decision
"server round-trip, not a second evaluator in JavaScript" (docs/decisions.md).

Nothing is written: the answer comes from a read-only connection, and values the user has
not finished typing (``"12."`` in an int field) are left out instead of failing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response
from flask_smorest import Blueprint

from engine.api.body import read_json, validate
from engine.api.context import ApiContext
from engine.api.errors import ApiError, json_response
from engine.api.prepare import Draft
from engine.api.resource import Resource
from engine.api.rules import RuleError, evaluate, user_context
from engine.rules import rules_for

from .context import ctx, hidden_fields, readable

if TYPE_CHECKING:
    from .plugin import DeskPlugin

#: how many times fields that do not parse are dropped before giving up
_RETRIES = 4


def lenient_load(res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` validated like a PATCH, leaving out the fields (and row cells) that fail."""
    data = {k: v for k, v in body.items() if k in res.entity.fields}
    for _ in range(_RETRIES):
        try:
            return validate(res, data, partial=True)
        except ApiError as err:
            errors = (err.errors or {}).get("json") or {}
            if not errors:
                return {}
            for key, detail in errors.items():
                if key in res.children and isinstance(detail, dict) and \
                        isinstance(data.get(key), list):
                    rows = data[key]
                    for idx, cells in detail.items():
                        i = int(idx) if str(idx).isdigit() else -1
                        if 0 <= i < len(rows) and isinstance(rows[i], dict) and \
                                isinstance(cells, dict):
                            rows[i] = {k: v for k, v in rows[i].items() if k not in cells}
                else:
                    data.pop(key, None)
    return {}


def _holds(expr: Any, d: Draft, user: Mapping[str, Any], parent: Mapping[str, Any] | None,
           values: Mapping[str, Any] | None = None) -> bool:
    """As the server judges a rule: an expression that cannot be evaluated is false."""
    try:
        return bool(evaluate(expr, d.context(user, parent, values)))
    except RuleError:
        return False


def _dump(res_codecs: Mapping[str, Any], name: str, value: Any) -> Any:
    codec = res_codecs.get(name)
    if value is None or codec is None or codec.dump is None:
        return value
    return codec.dump(value)


def _states(compiled: Any, d: Draft, user: Mapping[str, Any],
            parent: Mapping[str, Any] | None, old: Draft | None) -> dict[str, dict[str, bool]]:
    """``visible``/``required``/``readonly`` of each field that has such a rule."""
    out: dict[str, dict[str, bool]] = {"visible": {}, "required": {}, "readonly": {}}
    if compiled is None:
        return out
    for name, expr in compiled.visible_if.items():
        out["visible"][name] = _holds(expr, d, user, parent)
    for name, expr in compiled.required_if.items():
        out["required"][name] = _holds(expr, d, user, parent)
    for name, expr in compiled.readonly_if.items():
        # the server judges readonly_if on the stored record, and never on a create
        out["readonly"][name] = old is not None and _holds(expr, old, user, parent)
    return out


def evaluate_draft(c: ApiContext, res: Resource, body: dict[str, Any],
                   record_id: int | None) -> dict[str, Any]:
    """The server's view of a record being edited (see the module docstring)."""
    beh = res.behaviour
    compiled = rules_for(c.model).entities.get(res.qualname)
    data = lenient_load(res, body)
    user = user_context(c)
    now = dt.datetime.now(dt.UTC)
    hidden = hidden_fields(c, res)
    if beh is None:
        return {"values": {}, "rows": {}, "visible": {}, "required": {}, "readonly": {},
                "row_states": {}}
    with c.engine.connect() as conn:
        old: Draft | None = None
        if record_id is not None:
            t = res.table
            stmt = sa.select(t).where(t.c.id == record_id)
            scope = c.scope(res)
            if scope is not None:
                stmt = stmt.where(scope)
            row = conn.execute(stmt).first()
            if row is None:
                raise ApiError(404, f"{res.qualname} {record_id} not found")
            before = dict(row._mapping)
            d = beh._existing(conn, before, data, True, now, user["username"])
            old = Draft(beh.top, None, dict(before), before)
            old.rows = {t: [Draft(beh.children[t], None, dict(r), r) for r in rows]
                        for t, rows in d.before_rows.items()}
        else:
            d = beh._new(data, now, user["username"])
        cache: dict[tuple[str, int], Mapping[str, Any]] = {}
        beh._load_links(conn, [d], cache)
        relink = beh._defaults(d, user, None)
        for rows in d.rows.values():
            for r in rows:
                relink |= beh._defaults(r, user, d.values)
        if relink:
            beh._load_links(conn, [d], cache)
        for r in beh._all([d]):
            beh._fetch(r)
        beh._compute(d, user)
        if old is not None:
            beh._load_links(conn, [old], cache, before=True)
            beh._compute(old, user)
    derived = {n for n in beh.top.derived | set(beh.top.virtual)}
    derived |= {n for n, _, _ in beh.top.defaults if n not in body}
    codecs = {**res.api.codecs, **beh.top.virtual}
    values = {n: _dump(codecs, n, d.values.get(n)) for n in sorted(derived)
              if n not in hidden and n in res.entity.fields}
    out_rows: dict[str, list[dict[str, Any]]] = {}
    row_states: dict[str, list[dict[str, dict[str, bool]]]] = {}
    for tname, rows in d.rows.items():
        if tname in hidden:
            continue
        child = res.children[tname]
        crules = beh.children[tname]
        cderived = set(crules.derived) | {n for n, _, _ in crules.defaults}
        ccompiled = rules_for(c.model).entities.get(child.api.entity.qualname)
        out_rows[tname] = [{n: _dump(child.api.codecs, n, r.values.get(n))
                            for n in sorted(cderived)} for r in rows]
        row_states[tname] = [_states(ccompiled, r, user, d.values, None) for r in rows]
    states = _states(compiled, d, user, None, old)
    return {"values": values, "rows": out_rows, **states, "row_states": row_states}


def register(blp: Blueprint, plugin: DeskPlugin) -> None:
    """Add the evaluate route."""

    @blp.route("/evaluate/<module>/<entity>", methods=["POST"])
    @blp.doc(summary="Computed values and visible/required/readonly states of a draft record",
             description="Body: {\"record\": {...}, \"id\": <id of the stored record> | null}. "
                         "Nothing is written.")
    def evaluate_route(module: str, entity: str) -> Response:
        c = ctx()
        res = readable(c, f"{module}.{entity}")
        body = read_json()
        if not isinstance(body, dict) or not isinstance(body.get("record", {}), dict):
            raise ApiError(422, "send {\"record\": {...}, \"id\": ...}",
                           {"json": {"record": ["an object"]}})
        rid = body.get("id")
        if rid is not None and (not isinstance(rid, int) or isinstance(rid, bool)):
            raise ApiError(422, "id must be an integer", {"json": {"id": ["an integer"]}})
        return json_response(evaluate_draft(c, res, dict(body.get("record") or {}), rid))
