"""A record's timeline and comments: ``/api/desk/timeline/...`` and ``/api/desk/comments/...``.

The timeline merges, newest first, the record's audit rows (who, when, the fields that
changed — without the fields hidden from the caller), its workflow transitions and its
comments. Anyone who may read the record (its entity, its row scope) may see its timeline
and comment on it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response
from flask_smorest import Blueprint

from engine.api import security
from engine.api.body import read_json
from engine.api.context import ApiContext
from engine.api.errors import ApiError, json_response
from engine.api.naming import transition_table
from engine.api.resource import Resource
from engine.audit.query import query_audit

from .context import ctx, hidden_fields, identity, readable
from .tables import comment_table

if TYPE_CHECKING:
    from .plugin import DeskPlugin

MAX_COMMENT = 4000
MAX_ITEMS = 200


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return str(value.isoformat())


def _visible_record(c: ApiContext, res: Resource, record_id: int) -> None:
    with c.engine.connect() as conn:
        if security.visible(c, conn, res, record_id) is False or \
                conn.execute(sa.select(res.table.c.id).where(res.table.c.id == record_id)
                             ).first() is None:
            raise ApiError(404, f"{res.qualname} {record_id} not found")


def _strip(values: Any, hidden: frozenset[str]) -> Any:
    if not isinstance(values, dict):
        return values
    return {k: v for k, v in values.items() if k not in hidden}


def timeline(c: ApiContext, res: Resource, record_id: int) -> list[dict[str, Any]]:
    """Audit rows, transitions and comments of one record, newest first."""
    hidden = hidden_fields(c, res)
    items: list[dict[str, Any]] = []
    with c.engine.connect() as conn:
        rows, _total = query_audit(conn, entity=res.qualname, record_id=str(record_id),
                                   limit=MAX_ITEMS)
        for r in rows:
            items.append({"kind": "audit", "action": r["action"], "user": r["username"],
                          "at": _iso(r["ts"]), "before": _strip(r["before"], hidden),
                          "after": _strip(r["after"], hidden)})
        if res.entity.workflow is not None:
            t = transition_table
            for r in conn.execute(sa.select(t).where(t.c.entity == res.qualname,
                                                     t.c.record_id == record_id)
                                  .order_by(t.c.at.desc()).limit(MAX_ITEMS)):
                items.append({"kind": "transition", "action": r.action, "from": r.from_state,
                              "to": r.to_state, "user": r.username, "at": _iso(r.at),
                              "comment": r.comment})
        t = comment_table
        for r in conn.execute(sa.select(t).where(t.c.entity == res.qualname,
                                                 t.c.record_id == record_id)
                              .order_by(t.c.created_at.desc()).limit(MAX_ITEMS)):
            items.append({"kind": "comment", "id": r.id, "user": r.username,
                          "at": _iso(r.created_at), "body": r.body})
    items.sort(key=lambda i: i["at"] or "", reverse=True)
    return items


def register(blp: Blueprint, plugin: DeskPlugin) -> None:
    """Add the timeline and comment routes."""

    @blp.route("/timeline/<module>/<entity>/<int:record_id>")
    @blp.doc(summary="Audit history, transitions and comments of one record, newest first")
    def get_timeline(module: str, entity: str, record_id: int) -> Response:
        c = ctx()
        res = readable(c, f"{module}.{entity}")
        _visible_record(c, res, record_id)
        return json_response({"items": timeline(c, res, record_id)})

    @blp.route("/comments/<module>/<entity>/<int:record_id>", methods=["POST"])
    @blp.doc(summary="Comment on a record: {\"body\": \"...\"}")
    def add_comment(module: str, entity: str, record_id: int) -> Response:
        c = ctx()
        me = identity(c)
        res = readable(c, f"{module}.{entity}")
        _visible_record(c, res, record_id)
        body = read_json()
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_COMMENT:
            raise ApiError(422, "a comment needs 1 to 4000 characters",
                           {"json": {"body": [f"1 to {MAX_COMMENT} characters"]}})
        now = dt.datetime.now(dt.UTC)
        with c.engine.begin() as conn:
            cid = conn.execute(sa.insert(comment_table).values(
                entity=res.qualname, record_id=record_id, user_id=me.get("id"),
                username=me["username"], body=text.strip(), created_at=now)
            ).inserted_primary_key[0]
        return json_response({"kind": "comment", "id": cid, "user": me["username"],
                              "at": _iso(now), "body": text.strip()}, 201)
