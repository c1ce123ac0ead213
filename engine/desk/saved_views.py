"""Saved list views, per user and entity: ``/api/desk/views``.

A view is a name and a ``config`` object the desk writes (filters, sort, columns,
group-by); the server keeps it as JSON, checks its size and that the entity is readable.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, request
from flask_smorest import Blueprint

from engine.api.body import read_json
from engine.api.errors import ApiError, json_response

from .context import ctx, identity, readable
from .tables import view_table

if TYPE_CHECKING:
    from .plugin import DeskPlugin

MAX_CONFIG_BYTES = 16_000


def _row(r: Any) -> dict[str, Any]:
    return {"id": r.id, "entity": r.entity, "name": r.name, "config": r.config,
            "updated_at": r.updated_at.isoformat() if r.updated_at else None}


def register(blp: Blueprint, plugin: DeskPlugin) -> None:
    """Add the saved-view routes."""

    @blp.route("/views", methods=["GET"])
    @blp.doc(summary="The caller's saved views of one entity (?entity=module.entity)")
    def list_views() -> Response:
        c = ctx()
        me = identity(c)
        entity = request.args.get("entity", "")
        readable(c, entity)
        with c.engine.connect() as conn:
            rows = conn.execute(sa.select(view_table).where(
                view_table.c.user_id == me["id"], view_table.c.entity == entity)
                .order_by(view_table.c.name)).all()
        return json_response({"items": [_row(r) for r in rows]})

    @blp.route("/views", methods=["POST"])
    @blp.doc(summary="Save a view (same name: replaced)")
    def save_view() -> Response:
        c = ctx()
        me = identity(c)
        body = read_json()
        if not isinstance(body, dict):
            raise ApiError(422, "a view is an object", {"json": {"_schema": ["Not an object."]}})
        entity, name, config = body.get("entity"), body.get("name"), body.get("config")
        errors: dict[str, list[str]] = {}
        if not isinstance(entity, str):
            errors["entity"] = ["required: module.entity"]
        if not isinstance(name, str) or not name.strip() or len(name) > 80:
            errors["name"] = ["a name of 1 to 80 characters"]
        if not isinstance(config, dict):
            errors["config"] = ["an object"]
        elif len(json.dumps(config)) > MAX_CONFIG_BYTES:
            errors["config"] = [f"at most {MAX_CONFIG_BYTES} bytes"]
        if errors:
            raise ApiError(422, "invalid view: " + ", ".join(errors), {"json": errors})
        readable(c, entity)
        now = dt.datetime.now(dt.UTC)
        name = name.strip()
        with c.engine.begin() as conn:
            found = conn.execute(sa.select(view_table.c.id).where(
                view_table.c.user_id == me["id"], view_table.c.entity == entity,
                view_table.c.name == name)).scalar()
            if found is None:
                found = conn.execute(sa.insert(view_table).values(
                    user_id=me["id"], entity=entity, name=name, config=config,
                    created_at=now, updated_at=now)).inserted_primary_key[0]
            else:
                conn.execute(sa.update(view_table).where(view_table.c.id == found)
                             .values(config=config, updated_at=now))
            row = conn.execute(sa.select(view_table).where(view_table.c.id == found)).one()
        return json_response(_row(row), 201)

    @blp.route("/views/<int:view_id>", methods=["DELETE"])
    @blp.doc(summary="Delete one of the caller's views")
    def delete_view(view_id: int) -> Response:
        c = ctx()
        me = identity(c)
        with c.engine.begin() as conn:
            n = conn.execute(sa.delete(view_table).where(
                view_table.c.id == view_id, view_table.c.user_id == me["id"])).rowcount
        if not n:
            raise ApiError(404, f"no view {view_id} of yours")
        return Response(status=204)
