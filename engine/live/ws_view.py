"""``/api/ws``: the WSGI side of the live WebSocket (handshake, then hand-over to the hub).

The view checks the handshake, refuses with a JSON 503 when this process already holds
``ws_max_total`` sockets, answers ``101`` and gives the connection to the process's
:class:`~engine.live.hub.Hub`; its thread is free again at once. Authentication
(``?token=`` or a first ``{"type": "auth"}`` message) happens on the hub, which closes
the socket with 1008 when it fails.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request

from engine.auth import get_state
from engine.auth.bearer import TokenCheck, check_token
from engine.auth.errors import fail

from .hub import Hub
from .service import LiveTags
from .websocket import HandshakeError, check_handshake, take_over

log = logging.getLogger(__name__)

WS_PATH = "/api/ws"
HUB_KEY = "campo_ws_hub"


def build_hub(app: Flask, live: LiveTags) -> Hub:
    """The app's hub: credential checks run with the app's context and auth state."""
    state = get_state()
    settings = state.settings

    def check(token: str, fresh: bool) -> TokenCheck:
        with app.app_context():
            return check_token(state, token, fresh=fresh)

    hub = Hub(live, check, max_total=settings.ws_max_total,
              max_per_user=settings.ws_max_per_user,
              recheck=settings.auth_cache_seconds or 2.0,
              clock=lambda: state.now().timestamp(),
              events=lambda: app.extensions.get("campo_events"),
              api_context=lambda: (app.extensions.get("campo") or {}).get("context"))
    state.cache.on_invalidate(hub.invalidated)
    return hub


def register_ws(app: Flask, live: LiveTags) -> Hub:
    """Add ``/api/ws`` to ``app`` (public: the socket authenticates itself)."""
    with app.app_context():
        hub = build_hub(app, live)
        state = get_state()
        state.public_paths = state.public_paths | {WS_PATH}
    app.extensions[HUB_KEY] = hub
    #: the desk's /api/desk/config says ``live``: record events come over this socket
    app.extensions["campo_live_records"] = True

    def tags_ws() -> Response:
        try:
            key, sock = check_handshake(request.environ)
        except HandshakeError as err:
            fail(err.status, err.message)
        if hub.full():
            fail(503, f"too many live connections ({hub.max_total}); try again later",
                 headers={"Retry-After": "5"})
        conn = take_over(sock, key)
        hub.adopt(conn, request.args.get("token"), request.remote_addr)
        # the server writes this to the dummy socket left in place of the connection
        return Response(status=204, headers={"Connection": "close"})

    app.add_url_rule(WS_PATH, "live_ws", tags_ws, websocket=True)
    return hub
