"""The one gate every write of a record passes: create, bulk, PUT, PATCH, DELETE, workflow
actions, and any write path added later.

:func:`write` runs inside the caller's transaction and is the only caller of the raw
statements in :mod:`engine.api.writes` (``insert_records``, ``update_record``,
``delete_record``; ``tests/unit/engine/test_api_gate.py`` checks that nothing else calls
them). In order it:

1. for an update or delete, loads the record inside the caller's row scope and locks it
   (404 when it is missing or outside the scope), unless the caller already did so and
   passes ``before`` (a workflow action, which read it to find the transition);
2. applies the caller's field rules: a change to a field that is read-only for their roles
   is a :class:`~engine.api.security.Denied` 403;
3. checks the links the write makes point at records inside the caller's scope (422);
4. runs the statement (the model's rules run inside it, :mod:`engine.api.prepare`) and the
   caller's ``then`` step (e.g. the ``campo_transition`` row);
   (a delete first checks the workflow state allows it: ``deletable_in``, else 409);
5. checks every written record is still inside the caller's scope (a 403 ``Denied``, rolled
   back with the rest) — a write may not move a record where its writer cannot see it;
6. writes one audit row per record through ``ctx.record_change``;
7. announces the change (entity, id, version, op; no values) when the transaction commits
   (:func:`engine.api.record_events.emit`: the desk's live lists and forms).

Hidden fields in bodies are refused before validation (:func:`engine.api.security.check_body`)
since validation would accept them; everything that needs the transaction is here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import security
from .errors import ApiError
from .reads import get_record
from .record_events import emit
from .writes import delete_record, insert_records, missing_or_stale, update_record

if TYPE_CHECKING:
    from .context import ApiContext
    from .resource import Resource

Kind = Literal["create", "update", "delete"]


@dataclass
class Write:
    """One write: what it does, to which records, with which input."""

    kind: Kind
    #: validated input records (create: one per new record; update: one; delete: none)
    items: Sequence[Mapping[str, Any]] = ()
    record_id: int | None = None
    #: the audit and denial name (``create``, ``update``, ``delete``, ``workflow.<action>``)
    action: str = ""
    partial: bool = False
    bulk: bool = False
    #: DELETE's ``?version=``
    expected: int | None = None
    #: the record as served before the write, when the caller already loaded it in scope
    before: dict[str, Any] | None = None
    #: False when the caller already applied the model's rules (a workflow action)
    rules: bool = True
    #: the values to store when the caller prepared them (``items`` stays the input checked)
    data: Mapping[str, Any] | None = None
    #: more statements of the same write, run after the record's (before the checks after)
    then: Callable[[Connection, list[dict[str, Any]]], None] | None = None
    user: str | None = None
    #: attachment fields this write sets from an upload (:mod:`engine.api.attachments`);
    #: any other write may only keep an attachment as it is or clear it
    uploaded: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.action = self.action or self.kind
        if self.kind != "create" and self.record_id is None:
            raise ValueError(f"a {self.kind} needs a record_id")


def write(ctx: ApiContext, conn: Connection, res: Resource, op: Write) -> list[dict[str, Any]]:
    """Run ``op`` through row scope, field rules, link checks and audit (see the module
    docstring); returns the written records as served (empty for a delete)."""
    before = op.before
    if op.record_id is not None:
        if before is None:
            before = security.before_write(ctx, conn, res, op.record_id)
        elif security.visible(ctx, conn, res, op.record_id, lock=True) is False:
            raise ApiError(404, f"{res.qualname} {op.record_id} not found")
    if op.kind == "delete":
        _check_deletable(conn, res, op.record_id, before)
    if _changes_nothing(op):  # PATCH {}: nothing to write, no new version, no audit row
        return [_unchanged(conn, res, op)]
    if op.kind != "delete":
        security.check_readonly(ctx, res, op.items, before, op.action, op.record_id)
        _check_attachments(conn, res, op, before)
        security.check_links(ctx, conn, res, op.items, bulk=op.bulk, before=before)
    out = _run(conn, res, op)
    if op.then is not None:
        op.then(conn, out)
    if op.kind != "delete":
        ids = [op.record_id] if op.record_id is not None else [item["id"] for item in out]
        security.check_in_scope(ctx, conn, res, ids, op.action)
    if op.kind == "create":
        for item in out:
            ctx.record_change(conn, action=op.action, entity=res.qualname,
                              record_id=item["id"], before=None, after=item)
    else:
        ctx.record_change(conn, action=op.action, entity=res.qualname, record_id=op.record_id,
                          before=before, after=out[0] if out else None)
    emit(conn, res.qualname, op.kind, [(r["id"], r.get("version")) for r in out] if out
         else [(op.record_id, None)])
    return out


def _check_deletable(conn: Connection, res: Resource, record_id: int | None,
                     before: Mapping[str, Any] | None) -> None:
    """409 when the record's workflow state does not allow deleting it (``deletable_in``)."""
    wf = res.entity.workflow
    if wf is None or wf.deletable_in is None or record_id is None:
        return
    t = res.table
    state = before.get(wf.field) if before is not None else conn.execute(
        sa.select(t.c[wf.field]).where(t.c.id == record_id)).scalar()
    if state is not None and not wf.may_delete_in(state):
        allowed = ", ".join(sorted(wf.deletable_in)) or "none"
        message = (f"cannot delete {res.qualname} {record_id} in state '{state}'; records are "
                   f"deleted only in: {allowed}")
        raise ApiError(409, message, {"json": {wf.field: [message]}})


def _check_attachments(conn: Connection, res: Resource, op: Write,
                       before: Mapping[str, Any] | None) -> None:
    """422 naming the field when a write sets an attachment to anything but null or its
    current value, other than through an upload (a client may not point a record at a
    file it never sent: the files are content-addressed and shared)."""
    named = [(n, v) for item in op.items for n, v in item.items()
             if v is not None and n not in op.uploaded
             and getattr(res.entity.fields.get(n), "type", None) == "attachment"]
    if not named:
        return
    current = before
    if current is None and op.record_id is not None:
        current = get_record(conn, res, op.record_id)
    errors = {n: [f"an attachment is set by uploading the file to …/{op.record_id or '<id>'}"
                  f"/files/{n}; send null to remove it or the value as served to keep it"]
              for n, v in named if current is None or current.get(n) != v}
    if errors:
        raise ApiError(422, "invalid input: " + ", ".join(sorted(errors)), {"json": errors})


def _changes_nothing(op: Write) -> bool:
    """A PATCH that names no field (``{}`` or only ``version``)."""
    return (op.kind == "update" and op.partial and op.data is None and len(op.items) == 1
            and not set(op.items[0]) - {"version"})


def _unchanged(conn: Connection, res: Resource, op: Write) -> dict[str, Any]:
    """The record as it is (404 when missing, 409 when ``version`` is stale)."""
    assert op.record_id is not None
    expected = op.items[0].get("version")
    item = get_record(conn, res, op.record_id)
    if item is None or (expected is not None and expected != item["version"]):
        raise missing_or_stale(conn, res, op.record_id, expected)
    return item


def _run(conn: Connection, res: Resource, op: Write) -> list[dict[str, Any]]:
    if op.kind == "create":
        return insert_records(conn, res, op.items, op.user, bulk=op.bulk)
    assert op.record_id is not None
    if op.kind == "update":
        data = op.data if op.data is not None else op.items[0]
        return [update_record(conn, res, op.record_id, data, partial=op.partial,
                              user=op.user, rules=op.rules)]
    delete_record(conn, res, op.record_id, op.expected)
    return []
