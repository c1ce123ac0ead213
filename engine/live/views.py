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
from engine.bus import LiveValue

from .service import LiveTags, WriteRefused

log = logging.getLogger(__name__)

WS_PATH = "/api/ws"
#: a WebSocket client that does not authenticate within this many seconds is closed
WS_AUTH_TIMEOUT = 10.0
#: values queued for a slow WebSocket client before the oldest are dropped (latest wins)
WS_QUEUE = 10_000


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


def build_blueprint(live: LiveTags) -> Blueprint:
    """The ``/api/tags`` blueprint."""
    blp = Blueprint("tags", __name__, url_prefix="/api/tags",
                    description="Live SCADA tags: values, quality, writes")

    @blp.route("")
    @blp.arguments(TagQuery, location="query")
    def list_tags(args: dict[str, Any]) -> dict[str, Any]:
        """Tags with their current value, quality and timestamp."""
        current_principal()
        tags = live.select(**args)
        values = live.values(tags)
        return {"items": [live.describe(t, values.get(t.path)) for t in tags],
                "count": len(tags)}

    @blp.route("/<path:path>")
    def get_tag(path: str) -> dict[str, Any]:
        """One tag with its current value."""
        current_principal()
        tag = live.get(path)
        if tag is None:
            fail(404, f"unknown tag '{path}'")
        return live.describe(tag, live.values([tag]).get(tag.path))

    @blp.route("/<path:path>/write", methods=["POST"])
    @blp.arguments(WriteBody)
    def write_tag(body: dict[str, Any], path: str) -> dict[str, Any]:
        """Write a value (permission and limits from YAML), confirmed by read-back."""
        p = current_principal()
        tag = live.get(path)
        if tag is None:
            fail(404, f"unknown tag '{path}'")
        try:
            value = live.check_write(tag, body["value"], p.roles)
        except WriteRefused as err:
            if err.status == 403:
                deny(err.message, entity="tag", record_id=path, action="write")
            fail(err.status, err.message, field=err.field)
        before = live.values([tag]).get(tag.path)
        outcome = live.write(tag, value, {"user": p.username, "user_id": p.user_id,
                                          "roles": sorted(p.roles)})
        state = get_state()
        with state.engine.begin() as conn:
            record(conn, action="tag.write", entity="tag", record_id=path,
                   before={"value": None if before is None else before.value},
                   after={"value": outcome.value if outcome.ok else value},
                   detail={"ok": outcome.ok, "error": outcome.error, "requested": value},
                   changes_only=False, ts=state.now())
        if not outcome.ok:
            fail(502, f"write to '{path}' failed: {outcome.error}")
        return {"path": path, "requested": value, "value": outcome.value, "ok": True}

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
        outbox: queue.Queue[list[LiveValue]] = queue.Queue(maxsize=WS_QUEUE)
        subs: list[Any] = []
        closed = threading.Event()

        def push(values: Any) -> None:
            if closed.is_set():
                return
            try:
                outbox.put_nowait(list(values))
            except queue.Full:  # a slow client loses old changes, never the server's memory
                try:
                    outbox.get_nowait()
                    outbox.put_nowait(list(values))
                except (queue.Empty, queue.Full):
                    pass

        def sender() -> None:
            while not closed.is_set():
                try:
                    batch = outbox.get(timeout=0.5)
                except queue.Empty:
                    continue
                if not _send(ws, {"type": "values", "values": [v.to_json() for v in batch]}):
                    closed.set()

        t = threading.Thread(target=sender, daemon=True, name="ws-sender")
        t.start()
        try:
            while not closed.is_set():
                raw = ws.receive(timeout=1.0)
                if raw is None:
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    _send(ws, {"type": "error", "code": 400, "message": "messages are JSON"})
                    continue
                if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
                    _send(ws, {"type": "error", "code": 400,
                               "message": "expected {'type': 'subscribe', 'patterns': [...]}"})
                    continue
                for s in subs:
                    s.close()
                subs.clear()
                patterns = msg.get("patterns") or []
                if msg["type"] == "unsubscribe":
                    continue
                if not (isinstance(patterns, list) and all(isinstance(p, str) for p in patterns)):
                    _send(ws, {"type": "error", "code": 400,
                               "message": "'patterns' must be a list of strings"})
                    continue
                known = {t.path for p in patterns for t in live.select(pattern=p)}
                subs.append(live.bus.subscribe(patterns, push))
                current = live.bus.snapshot(patterns)
                _send(ws, {"type": "subscribed", "patterns": patterns, "tags": len(known)})
                if current:
                    push(current)
        except ConnectionClosed:
            pass
        finally:
            closed.set()
            for s in subs:
                s.close()


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
