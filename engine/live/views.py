"""REST and WebSocket endpoints for live tags.

- ``GET /api/tags?site=&asset=&template=&pattern=``: definitions with current values;
- ``GET /api/tags/<path>``: one tag;
- ``POST /api/tags/<path>/write`` ``{"value": ...}``: permission from YAML (``writable`` +
  roles), range check, audit row, write through the runtime with read-back;
- ``/api/ws``: WebSocket. The client authenticates with ``?token=<access token>`` or a first
  message ``{"type": "auth", "token": ...}``, then sends ``{"type": "subscribe",
  "patterns": ["pad7.*.pip"]}`` and receives ``{"type": "values", "values": [...]}``: the
  current values at once, then every change.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any

from flask import Flask, request
from flask_smorest import Api, Blueprint
from flask_sock import Sock
from marshmallow import Schema, fields
from simple_websocket import ConnectionClosed

from engine.audit import record
from engine.auth import current_principal, deny, get_state
from engine.auth.errors import fail
from engine.auth.principal import load_principal
from engine.auth.tokens import decode_bearer
from engine.bus.policy import Caller, WriteRefused

from .access import PatternRefused, parse_patterns
from .events import subscribe_alarms
from .service import LiveTags

log = logging.getLogger(__name__)

WS_PATH = "/api/ws"
#: a WebSocket client that does not authenticate within this many seconds is closed
WS_AUTH_TIMEOUT = 10.0
#: values queued for a slow WebSocket client before the oldest are dropped (latest wins)
WS_QUEUE = 10_000
#: seconds between re-reading a socket user's roles and sites (a site taken away stops
#: the values of its tags within this time, also on subscriptions made before)
WS_RECHECK = 2.0


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


def _ws_principal(token: str | None) -> Any:
    if not token:
        return None
    found = decode_bearer(token)
    if found is None:
        return None
    _claims, session = found
    state = get_state()
    with state.engine.connect() as conn:
        return load_principal(conn, state.model, user_id=session.user_id,
                              username=session.username, is_service=False,
                              session_id=session.session_id)


def register_ws(app: Flask, live: LiveTags) -> None:
    """The ``/api/ws`` WebSocket (flask-sock)."""
    sock = Sock(app)

    @sock.route(WS_PATH)
    def tags_ws(ws: Any) -> None:
        principal = _ws_principal(request.args.get("token"))
        if principal is None:
            try:
                first = ws.receive(timeout=WS_AUTH_TIMEOUT)
                msg = json.loads(first) if first else {}
                if isinstance(msg, dict) and msg.get("type") == "auth":
                    principal = _ws_principal(msg.get("token"))
            except (ValueError, ConnectionClosed):
                principal = None
        if principal is None:
            _send(ws, {"type": "error", "code": 401, "message": "authentication required"})
            ws.close(reason=1008, message="authentication required")
            return
        _send(ws, {"type": "ready", "user": principal.username})
        outbox: queue.Queue[Any] = queue.Queue(maxsize=WS_QUEUE)
        subs: list[Any] = []
        event_subs: list[Any] = []
        closed = threading.Event()
        viewer = [principal]  # swapped by the recheck below; read by push()

        def push(values: Any) -> None:
            if closed.is_set():
                return
            shown = live.visible_values(viewer[0], values)
            if not shown:
                return
            try:
                outbox.put_nowait(shown)
            except queue.Full:  # a slow client loses old changes, never the server's memory
                try:
                    outbox.get_nowait()
                    outbox.put_nowait(shown)
                except (queue.Empty, queue.Full):
                    pass

        def sender() -> None:
            while not closed.is_set():
                try:
                    batch = outbox.get(timeout=0.5)
                except queue.Empty:
                    continue
                message = batch if isinstance(batch, dict) else {  # an event message
                    "type": "values", "values": [v.to_json() for v in batch]}
                if not _send(ws, message):
                    closed.set()

        t = threading.Thread(target=sender, daemon=True, name="ws-sender")
        t.start()
        checked = time.monotonic()
        try:
            while not closed.is_set():
                if time.monotonic() - checked >= WS_RECHECK:
                    checked = time.monotonic()
                    again = _reload(viewer[0])
                    if again is not None:
                        viewer[0] = again
                raw = ws.receive(timeout=1.0)
                if raw is None:
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    _send(ws, {"type": "error", "code": 400, "message": "messages are JSON"})
                    continue
                if isinstance(msg, dict) and msg.get("type") == "subscribe_alarms":
                    subscribe_alarms(app, ws, msg, viewer, outbox, event_subs)
                    continue
                if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
                    _send(ws, {"type": "error", "code": 400,
                               "message": "expected {'type': 'subscribe', 'patterns': [...]}"})
                    continue
                for s in subs:
                    s.close()
                subs.clear()
                if msg["type"] == "unsubscribe":
                    continue
                raw_patterns = msg.get("patterns") or []
                try:
                    compiled = parse_patterns(raw_patterns, field="patterns")
                except PatternRefused as err:
                    _send(ws, {"type": "error", "code": err.status, "message": err.message,
                               "field": err.field})
                    continue
                patterns = [p.text for p in compiled]
                known = {t.path for p in compiled for t in live.select(viewer[0], pattern=p)}
                subs.append(live.bus.subscribe(patterns, push))
                current = live.bus.snapshot(patterns)
                _send(ws, {"type": "subscribed", "patterns": patterns, "tags": len(known)})
                if current:
                    push(current)
        except ConnectionClosed:
            pass
        finally:
            closed.set()
            for s in subs + event_subs:
                s.close()


def _reload(principal: Any) -> Any:
    """The principal read again (roles and sites may have changed); None if that fails."""
    try:
        state = get_state()
        with state.engine.connect() as conn:
            return load_principal(conn, state.model, user_id=principal.user_id,
                                  username=principal.username, is_service=principal.is_service,
                                  session_id=principal.session_id)
    except Exception:  # keep the last known principal; the next recheck tries again
        log.warning("ws: re-reading user %s failed", principal.username, exc_info=True)
        return None


def _send(ws: Any, payload: dict[str, Any]) -> bool:
    try:
        ws.send(json.dumps(payload, default=str))
        return True
    except (ConnectionClosed, OSError):
        return False


def init_live(app: Flask, api: Api, live: LiveTags) -> None:
    """Register ``/api/tags`` (in the OpenAPI document) and ``/api/ws`` on ``app``."""
    app.extensions["campo_live"] = live
    api.register_blueprint(build_blueprint(live))
    register_ws(app, live)
    with app.app_context():
        state = get_state()
        state.public_paths = state.public_paths | {WS_PATH}  # it authenticates itself
