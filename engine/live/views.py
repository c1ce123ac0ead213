"""REST and WebSocket endpoints for live tags.

- ``GET /api/tags?site=&asset=&template=&pattern=``: definitions with current values;
- ``GET /api/tags/<path>``: one tag;
- ``POST /api/tags/<path>/write`` ``{"value": ...}``: permission from YAML (``writable`` +
  roles), range check, audit row, write through the runtime with read-back;
- ``/api/ws``: WebSocket (:mod:`engine.live.ws_view`, served by :mod:`engine.live.hub` on an
  event loop). The client authenticates with ``?token=<access token>`` or a first message
  ``{"type": "auth", "token": ...}``, then sends ``{"type": "subscribe", "patterns":
  ["pad7.*.pip"]}`` and receives ``{"type": "values", "values": [...]}``: the current
  values at once, then every change.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields

from engine.audit import record
from engine.auth import current_principal, deny, get_state
from engine.auth.errors import fail
from engine.bus.policy import Caller, WriteRefused

from .access import PatternRefused
from .hub import Hub
from .service import LiveTags
from .ws_view import register_ws

log = logging.getLogger(__name__)



class TagQuery(Schema):
    site = fields.String()
    asset = fields.String()
    template = fields.String()
    pattern = fields.String(metadata={"description": "tag path pattern: * one segment, ** any"})


class WriteBody(Schema):
    value = fields.Raw(required=True, allow_none=False,
                       metadata={"description": "engineering value to write"})


def _extension(app: Flask) -> LiveTags:
    live: LiveTags = app.extensions["campo_live"]
    return live


def _json_doc(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


#: one tag as served (``LiveTags.describe``); documentation only
_TAG = {"type": "object", "description": "a tag with its current value, quality and time",
        "properties": {"path": {"type": "string"}}, "additionalProperties": True}
#: documented answers of the /api/tags operations (OpenAPI; documentation only)
_DOCS: dict[str, dict[str, Any]] = {
    "list": {"200": _json_doc("the caller's tags matching the query", {
        "type": "object", "properties": {"items": {"type": "array", "items": _TAG},
                                         "count": {"type": "integer"}}})},
    "get": {"200": _json_doc("the tag", _TAG),
            "404": {"description": "no such tag (or not on the caller's sites)"}},
    "write": {"200": _json_doc("the value written, as read back", {
        "type": "object", "properties": {
            "path": {"type": "string"}, "requested": {}, "value": {}, "ok": {"type": "boolean"},
            "rounded": {"type": "boolean"}, "note": {"type": "string", "nullable": True}}}),
              "403": {"description": "the caller may not write this tag"},
              "404": {"description": "no such tag"},
              "422": {"description": "the value breaks the tag's limits or type"}},
}


def build_blueprint(live: LiveTags) -> Blueprint:
    """The ``/api/tags`` blueprint."""
    blp = Blueprint("tags", __name__, url_prefix="/api/tags",
                    description="Live SCADA tags: values, quality, writes")

    @blp.route("")
    @blp.arguments(TagQuery, location="query")
    @blp.doc(responses=_DOCS["list"])
    def list_tags(args: dict[str, Any]) -> dict[str, Any]:
        """Tags with their current value, quality and timestamp (of the caller's sites)."""
        p = current_principal()
        try:
            tags = live.select(p, **args)
        except PatternRefused as err:
            fail(err.status, err.message, errors={"query": {err.field: [err.message]}})
        values = live.values(tags)
        return {"items": [live.describe(t, values.get(t.path)) for t in tags],
                "count": len(tags)}

    @blp.route("/<path:path>")
    @blp.doc(responses=_DOCS["get"])
    def get_tag(path: str) -> dict[str, Any]:
        """One tag with its current value."""
        tag = live.get(path, current_principal())
        if tag is None:
            fail(404, f"unknown tag '{path}'")
        return live.describe(tag, live.values([tag]).get(tag.path))

    @blp.route("/<path:path>/write", methods=["POST"])
    @blp.arguments(WriteBody)
    @blp.doc(responses=_DOCS["write"])
    def write_tag(body: dict[str, Any], path: str) -> dict[str, Any]:
        """Write a value (permission and limits from YAML), confirmed by read-back."""
        p = current_principal()
        tag = live.get(path)
        try:
            value = live.check_write(tag, path, body["value"], p)
        except WriteRefused as err:
            if err.status == 403:
                deny(err.message, entity="tag", record_id=path, action="write")
            fail(err.status, err.message, field=err.field)
        assert tag is not None  # the policy answered 404 otherwise
        before = live.values([tag]).get(tag.path)
        outcome = live.write(tag, value, Caller.of(p))
        state = get_state()
        with state.engine.begin() as conn:
            record(conn, action="tag.write", entity="tag", record_id=path,
                   before={"value": None if before is None else before.value},
                   after={"value": outcome.value if outcome.ok else value},
                   detail={"ok": outcome.ok, "error": outcome.error, "requested": value,
                           "status": outcome.http_status, "rounded": outcome.rounded},
                   changes_only=False, ts=state.now())
        if not outcome.ok:
            fail(outcome.http_status, f"write to '{path}' failed: {outcome.error}",
                 field="value" if outcome.http_status == 422 else None)
        return {"path": path, "requested": value, "value": outcome.value, "ok": True,
                "rounded": outcome.rounded, "note": outcome.note}

    return blp


def init_live(app: Flask, api: Api, live: LiveTags) -> Hub:
    """Register ``/api/tags`` (in the OpenAPI document) and ``/api/ws`` on ``app``; return
    the WebSocket hub (``campo serve`` stops it with the plugin)."""
    app.extensions["campo_live"] = live
    api.register_blueprint(build_blueprint(live))
    return register_ws(app, live)
