"""Workflow actions: ``POST /api/<module>/<entity>/<id>/actions/<action>`` and friends.

A record's state field changes only here. One action runs in one transaction: the record
is loaded inside the caller's row scope and locked (``FOR UPDATE``; ``BEGIN IMMEDIATE`` on
SQLite), the transition from its current state is found (409 if there is none), the
caller's roles are checked (403; admin always may, a transition without ``roles`` needs
the ``update`` permission), the ``values`` sent with the action are applied like a PATCH
(workflow ``editable`` and ``readonly_if`` of the current state, derived fields refused),
the guard is evaluated on that record, then the state moves and ``requires``,
``required_if`` and validations are checked on the result (422 listing every failure).
The change, a ``campo_transition`` row (who, when, from, to, comment) and the audit hook's
row commit together.

``GET .../<id>/actions`` lists the actions from the record's state for the caller (allowed
by role, ready by guard and rules); ``GET .../<id>/transitions`` the recorded history.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, request
from flask_smorest import Blueprint

from metamodel.errors import expected_one_of
from metamodel.spec import TransitionSpec, labels_of

from . import bounds, gate, security
from .body import read_json, validate
from .docs import doc_later
from .errors import ApiError, json_response
from .naming import begin_write, transition_table
from .openapi import ID_PARAMETER, operation_id
from .rules import request_language
from .writes import utcnow

if TYPE_CHECKING:
    from .context import ApiContext
    from .resource import Resource

log = logging.getLogger(__name__)

MAX_COMMENT = 2000
_BODY_KEYS = ("comment", "version", "values")
_ACTION_PARAMETER: dict[str, Any] = {
    "in": "path", "name": "action", "required": True, "schema": {"type": "string"},
    "description": "the transition's action name (see /api/meta: workflow.transitions)",
}


def may_run(ctx: ApiContext, res: Resource, t: TransitionSpec, *, ask: bool = True) -> bool:
    """Whether the caller may run transition ``t`` (admin always; else its ``roles``, or the
    ``update`` permission when it names none: asked of ``authorize``, which audits a
    refusal, or with ``ask=False`` read from the model's permissions, for listings)."""
    roles = ctx.current_roles()
    if "admin" in roles:
        return True
    if t.roles:
        return not roles.isdisjoint(t.roles)
    if ask:
        return ctx.authorize(res.entity, "update")
    return res.entity.allows(roles, "update")


def _action_body() -> dict[str, Any]:
    if not request.get_data(cache=True).strip():
        return {}
    body = read_json()
    if not isinstance(body, dict):
        raise ApiError(422, "send a JSON object: {\"comment\", \"version\", \"values\"}",
                       {"json": {"_schema": ["Not an object."]}})
    errors: dict[str, list[str]] = {}
    for key in body:
        if key not in _BODY_KEYS:
            errors[key] = ["Unknown field."]
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT
                                or "\x00" in comment):
        errors["comment"] = [f"a text of at most {MAX_COMMENT} characters"]
    version = body.get("version")
    if version is not None and (type(version) is not int
                                or not 1 <= version <= bounds.INT32_MAX):
        errors["version"] = ["the record's version, a positive integer"]
    values = body.get("values")
    if values is not None and not isinstance(values, dict):
        errors["values"] = ["an object of field values"]
    if errors:
        raise ApiError(422, "invalid action body: " + ", ".join(errors), {"json": errors})
    return body


def _served(res: Resource, before: dict[str, Any], rows: dict[str, list[dict[str, Any]]]
            ) -> dict[str, Any]:
    """A raw stored record (and its raw child rows) as the API serves it."""
    item = res.api.dump_all([before[n] for n in res.api.names])
    for name, child in res.children.items():
        dump = child.api.dumper(child.row_names)
        item[name] = [dump([r[n] for n in child.row_names]) for r in rows.get(name, [])]
    return item


def _state_of(res: Resource, conn: sa.Connection, record_id: int,
              scope: sa.ColumnElement[bool] | None) -> str:
    t = res.table
    wf = res.entity.workflow
    assert wf is not None
    stmt = sa.select(t.c[wf.field]).where(t.c.id == record_id)
    if scope is not None:
        stmt = stmt.where(scope)
    if conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise ApiError(404, f"{res.qualname} {record_id} not found")
    return str(row[0])


def _no_transition(res: Resource, action: str, state: str) -> ApiError:
    wf = res.entity.workflow
    assert wf is not None
    possible = [t.action for t in wf.actions_from(state)]
    return ApiError(409, f"cannot {action} a {res.entity.name} in state '{state}'; from "
                    f"'{state}' the actions are: {', '.join(possible) or 'none'}",
                    {"json": {wf.field: [f"'{action}' does not start from '{state}'"]}})


def run_action(ctx: ApiContext, res: Resource, record_id: int, action: str) -> Response:
    """Run one workflow action on a record (see the module docstring)."""
    wf = res.entity.workflow
    behaviour = res.behaviour
    assert wf is not None and behaviour is not None
    if action not in wf.actions():
        raise ApiError(404, f"{res.qualname} has no action '{action}'; "
                       + expected_one_of(action, wf.actions()))
    body = _action_body()
    values = validate(res, security.check_body(ctx, res, body["values"]), partial=True) \
        if body.get("values") else {}  # a field hidden from the caller: unknown (422)
    values.pop("version", None)
    if body.get("version") is not None:
        values["version"] = body["version"]
    user = ctx.current_user()
    scope = ctx.scope(res)
    try:
        item, state, t = _run(ctx, res, record_id, action, values, body, scope)
    except _Denied as denied:  # audited after the rollback, in its own transaction
        if not denied.audited:
            ctx.record_denial(res.entity, f"workflow.{action}", denied.message,
                              record_id=record_id)
        raise ApiError(403, denied.message) from None
    except security.Denied as err:  # a read-only field in values (field rules)
        security.deny(ctx, res, err)
    security.strip(ctx, res, [item])
    log.info("%s %s: %s %s -> %s by %s", res.qualname, record_id, action, state, t.to, user)
    return json_response(item)


class _Denied(Exception):
    def __init__(self, message: str, audited: bool) -> None:
        super().__init__(message)
        self.message = message
        #: ``authorize`` refused (and audits its own refusals)
        self.audited = audited


def _run(ctx: ApiContext, res: Resource, record_id: int, action: str,
         values: dict[str, Any], body: dict[str, Any], scope: Any
         ) -> tuple[dict[str, Any], str, TransitionSpec]:
    wf = res.entity.workflow
    behaviour = res.behaviour
    assert wf is not None and behaviour is not None
    user = ctx.current_user()
    with ctx.engine.begin() as conn:
        begin_write(conn)
        state = _state_of(res, conn, record_id, scope)
        t = wf.transition(action, state)
        if t is None:
            raise _no_transition(res, action, state)
        if not may_run(ctx, res, t):
            need = " or ".join(t.roles) if t.roles else "update permission"
            raise _Denied(f"not allowed to {action} {res.qualname} {record_id}: the action "
                          f"needs {'the role ' if t.roles else ''}{need}",
                          audited=not t.roles and "admin" not in ctx.current_roles())
        prepared = behaviour.prepare_update(conn, record_id, values, partial=True,
                                            transition=t, scope=scope)

        def record_transition(conn: sa.Connection, _out: list[dict[str, Any]]) -> None:
            conn.execute(transition_table.insert().values(
                entity=res.qualname, record_id=record_id, action=action, from_state=state,
                to_state=t.to, username=user, at=utcnow(), comment=body.get("comment")))

        # the one write gate: field rules, scoped links, row scope after, audit
        item, = gate.write(ctx, conn, res, gate.Write(
            "update", [values], record_id=record_id, action=f"workflow.{action}",
            partial=True, user=user, rules=False, then=record_transition,
            before=_served(res, prepared.before, prepared.before_rows),
            data=prepared.data))
    return item, state, t


def list_actions(ctx: ApiContext, res: Resource, record_id: int) -> Response:
    """The actions from the record's current state, for the caller."""
    wf = res.entity.workflow
    behaviour = res.behaviour
    assert wf is not None and behaviour is not None
    ctx.check(res, "read")
    lang = request_language()
    scope = ctx.scope(res)
    out = []
    with ctx.engine.connect() as conn:
        t = res.table
        stmt = sa.select(t.c[wf.field]).where(t.c.id == record_id)
        if scope is not None:
            stmt = stmt.where(scope)
        state = conn.execute(stmt).scalar()
        if state is None:
            raise ApiError(404, f"{res.qualname} {record_id} not found")
        for tr in wf.actions_from(state):
            problems: dict[str, Any] = {}
            try:
                behaviour.prepare_update(conn, record_id, {}, partial=True, transition=tr,
                                         scope=scope, lock=False)
            except ApiError as err:
                problems = (err.errors or {}).get("json", {})
            target = wf.states.get(tr.to)
            out.append({
                "action": tr.action, "label": labels_of(tr.label, tr.action).get(lang),
                "to": tr.to, "to_label": target.labels.get(lang) if target else tr.to,
                "allowed": may_run(ctx, res, tr, ask=False), "ready": not problems,
                "problems": problems,
            })
        conn.rollback()
    st = wf.states.get(state)
    return json_response({"state": state, "state_label": st.labels.get(lang) if st else state,
                          "actions": out})


def list_transitions(ctx: ApiContext, res: Resource, record_id: int) -> Response:
    """The recorded transitions of a record, oldest first."""
    ctx.check(res, "read")
    scope = ctx.scope(res)
    tt = transition_table
    with ctx.engine.connect() as conn:
        stmt = sa.select(res.table.c.id).where(res.table.c.id == record_id)
        if scope is not None:
            stmt = stmt.where(scope)
        if conn.execute(stmt).first() is None:
            raise ApiError(404, f"{res.qualname} {record_id} not found")
        rows = conn.execute(sa.select(tt).where(tt.c.entity == res.qualname,
                                                tt.c.record_id == record_id)
                            .order_by(tt.c.id)).all()
    return json_response({"items": [{
        "id": r.id, "action": r.action, "from": r.from_state, "to": r.to_state,
        "user": r.username, "at": r.at.isoformat(), "comment": r.comment} for r in rows]})


def _docs(res: Resource) -> dict[str, dict[str, Any]]:
    label = res.entity.labels.get("en")
    tags = [res.entity.module]
    record = res.output_schema
    return {
        "run": {"summary": f"Run a workflow action on a {label} record", "tags": tags,
                "operationId": operation_id(res, "action"),
                "description": "Moves the record to the transition's state. Body (optional): "
                               "comment, version (refuse if stale), values (fields to set in "
                               "the same transaction).",
                "requestBody": {"required": False, "content": {"application/json": {
                    "schema": {"type": "object", "properties": {
                        "comment": {"type": "string", "maxLength": MAX_COMMENT},
                        "version": {"type": "integer", "minimum": 1},
                        "values": {"type": "object"}}, "additionalProperties": False}}}},
                "responses": {"200": {"description": "the record after the action",
                                      "content": {"application/json": {"schema": record}}},
                              "403": "FORBIDDEN", "404": "NOT_FOUND", "409": "CONFLICT",
                              "422": "UNPROCESSABLE_ENTITY"}},
        "actions": {"summary": f"Actions available on a {label} record", "tags": tags,
                    "operationId": operation_id(res, "actions"),
                    "responses": {"200": {"description": "state and actions (allowed, ready, "
                                                         "problems)"},
                                  "403": "FORBIDDEN", "404": "NOT_FOUND"}},
        "transitions": {"summary": f"Workflow history of a {label} record", "tags": tags,
                        "operationId": operation_id(res, "transitions"),
                        "responses": {"200": {"description": "transitions, oldest first"},
                                      "403": "FORBIDDEN", "404": "NOT_FOUND"}},
    }


def add_workflow_routes(ctx: ApiContext, res: Resource, blp: Blueprint) -> None:
    """Register the action, actions and transitions routes of a resource with a workflow."""
    if res.entity.workflow is None or res.behaviour is None:
        return
    name = res.entity.name
    docs = functools.cache(lambda: _docs(res))  # made with the OpenAPI document

    def run(record_id: int, action: str) -> Response:
        return run_action(ctx, res, record_id, action)

    def actions(record_id: int) -> Response:
        return list_actions(ctx, res, record_id)

    def transitions(record_id: int) -> Response:
        return list_transitions(ctx, res, record_id)

    blp.route(f"/{name}/<id:record_id>/actions/<action>", endpoint=f"{name}_action",
              methods=["POST"], parameters=[ID_PARAMETER, _ACTION_PARAMETER])(
        doc_later(lambda: docs()["run"])(run))
    blp.route(f"/{name}/<id:record_id>/actions", endpoint=f"{name}_actions",
              methods=["GET"], parameters=[ID_PARAMETER])(
        doc_later(lambda: docs()["actions"])(actions))
    blp.route(f"/{name}/<id:record_id>/transitions", endpoint=f"{name}_transitions",
              methods=["GET"], parameters=[ID_PARAMETER])(
        doc_later(lambda: docs()["transitions"])(transitions))

