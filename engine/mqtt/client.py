"""paho-mqtt clients made one way: TLS, credentials, reconnect, and whether we are connected.

- :func:`new_client`: a configured paho client (not connected) for a :class:`Broker`;
- :class:`Connection`: one such client with paho's network thread, reconnecting on its own
  (``reconnect_delay_set``), with a thread-safe ``connected`` state and the reason when it
  is not, and hooks called on each (re)connect and loss; the bus, the MQTT driver and the
  Sparkplug edge node each own one;
- :func:`probe`: one short connect/CONNACK/disconnect, for a health check with no
  connection of its own.

Callbacks run in paho's thread; callers hand work to their own loop from there.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from .url import Broker, parse_broker

log = logging.getLogger(__name__)

MessageHandler = Callable[[mqtt.MQTTMessage], None]


def tls_context(broker: Broker) -> ssl.SSLContext:
    """The TLS context of an ``mqtts`` broker: its CA file (or the system's), verification
    off only when ``insecure``."""
    try:
        ctx = ssl.create_default_context(cafile=broker.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"MQTT CA file {broker.ca_file!r} cannot be used: {exc}") from None
    if broker.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def new_client(broker: Broker, client_id: str, *, reconnect_delay: float = 1.0,
               reconnect_delay_max: float = 30.0) -> mqtt.Client:
    """A paho client (callback API 2) set up for ``broker``; not connected yet."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set_context(tls_context(broker))
        if broker.insecure:
            client.tls_insecure_set(True)  # paho's own host name check, after the handshake
    client.reconnect_delay_set(max(1, round(reconnect_delay)),
                               max(1, round(reconnect_delay_max)))
    return client


class Connection:
    """One broker connection kept up by paho's network thread.

    ``client_id``: the URL's ``client_id``, else this argument, else ``<prefix>-<random>``.
    Hooks (all in paho's thread): ``before_connect()`` before each attempt (a will may be
    set there), ``on_connect(client)`` after the broker accepted (subscribe there: filters
    are not kept across sessions), ``on_disconnect(reason)`` when an accepted connection
    is lost, ``on_message(msg)`` for every message.
    """

    def __init__(self, broker: Broker | str, *, client_id: str | None = None,
                 prefix: str = "campo", keepalive: int = 30, reconnect_delay: float = 1.0,
                 reconnect_delay_max: float = 30.0, name: str | None = None) -> None:
        self.broker = parse_broker(broker)
        self.name = name or self.broker.name
        self.client_id = (self.broker.client_id or client_id
                          or f"{prefix}-{uuid.uuid4().hex[:12]}")
        self.client = new_client(self.broker, self.client_id, reconnect_delay=reconnect_delay,
                                 reconnect_delay_max=reconnect_delay_max)
        self.keepalive = keepalive
        self.before_connect: Callable[[], None] | None = None
        self.on_connect: list[Callable[[mqtt.Client], None]] = []
        self.on_disconnect: list[Callable[[str], None]] = []
        self.on_message: MessageHandler | None = None
        self._connected = threading.Event()
        self._started = False
        self._warned = False
        self._reason = "not connected yet"
        self.client.on_pre_connect = self._on_pre_connect
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    @property
    def connected(self) -> bool:
        """True while the broker has accepted the connection."""
        return self._connected.is_set()

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._started

    @property
    def reason(self) -> str:
        """Why the connection is down (or the last reason it was)."""
        return self._reason

    def start(self) -> None:
        """Start connecting in the background (paho retries until :meth:`stop`)."""
        if self._started:
            return
        self._started = True
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.keepalive)
        self.client.loop_start()

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Block until the broker accepted the connection (True) or ``timeout`` passed."""
        return self._connected.wait(timeout)

    def stop(self) -> None:
        """Disconnect cleanly (the broker drops the will) and end the network thread."""
        self._started = False  # the disconnect below is not a loss
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()
        _close_sockets(self.client)
        self._connected.clear()
        self._reason = "closed"

    # paho callbacks (paho's thread) -------------------------------------------------
    def _on_pre_connect(self, _c: mqtt.Client, _u: Any) -> None:
        if self.before_connect is not None:
            self.before_connect()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any,
                    _p: Any = None) -> None:
        if getattr(rc, "is_failure", False):
            self._reason = f"the broker {self.broker.url} refused the connection: {rc}"
            if not self._warned:
                log.error("mqtt %s: %s", self.name, self._reason)
                self._warned = True
            return
        if self._warned:
            log.info("mqtt %s: connected again", self.name)
        self._warned = False
        self._reason = "connected"
        self._connected.set()
        for hook in list(self.on_connect):
            try:
                hook(client)
            except Exception:
                log.exception("mqtt %s: on_connect hook failed", self.name)

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        self._reason = f"cannot reach the MQTT broker at {self.broker.name}"
        if not self._warned:
            log.error("mqtt %s: %s; retrying", self.name, self._reason)
            self._warned = True

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any,
                       _p: Any = None) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if not self._started:
            return
        self._reason = f"MQTT broker connection lost ({rc})"
        if was:
            log.warning("mqtt %s: %s; reconnecting", self.name, self._reason)
            self._warned = True
            for hook in list(self.on_disconnect):
                try:
                    hook(self._reason)
                except Exception:
                    log.exception("mqtt %s: on_disconnect hook failed", self.name)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self.on_message is not None:
            self.on_message(msg)


def probe(broker: Broker | str, timeout: float = 1.0) -> tuple[bool, str]:
    """Connect once (TLS and credentials as configured), wait for CONNACK, disconnect.

    Returns ``(True, "connected")`` or ``(False, why)``; never raises for a broker problem.
    The probe has its own random client id, so it never takes over a running session.
    """
    b = parse_broker(broker)
    answers: list[Any] = []
    client = new_client(b, f"campo-probe-{uuid.uuid4().hex[:12]}")
    client.connect_timeout = timeout
    client.on_connect = lambda _c, _u, _f, rc, _p=None: answers.append(rc)
    end = time.monotonic() + timeout
    try:
        if b.tls:
            _handshake(b, timeout)
        client.connect(b.host, b.port, keepalive=max(5, math.ceil(timeout * 2)))
        while not answers and time.monotonic() < end:
            client.loop(timeout=min(0.05, max(0.0, end - time.monotonic())))
    except (OSError, ValueError) as exc:  # refused, unreachable, TLS handshake, timeout
        return False, f"cannot reach the MQTT broker at {b.url}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            if answers:
                client.disconnect()
                client.loop(timeout=0.01)
        _close_sockets(client)
    if not answers:
        return False, f"the MQTT broker at {b.url} did not answer within {timeout} s"
    if getattr(answers[0], "is_failure", False):
        return False, f"the broker {b.url} refused the connection: {answers[0]}"
    return True, "connected"


def _handshake(b: Broker, timeout: float) -> None:
    """A TLS handshake on a socket of our own, closed whatever happens (paho leaves the
    socket of a failed handshake to the garbage collector); raises the TLS error."""
    ctx = tls_context(b)
    with socket.create_connection((b.host, b.port), timeout=timeout) as raw, \
            ctx.wrap_socket(raw, server_hostname=b.host) as tls:
        tls.settimeout(timeout)


def _close_sockets(client: mqtt.Client) -> None:
    """Close the client's socket and the socket pair paho wakes its loop with.

    paho closes them only in ``Client.__del__``; a client in a reference cycle (its
    callbacks are bound methods of its owner) is finalised by the garbage collector in no
    particular order, so the sockets' own finalisers may run first and warn
    (ResourceWarning). ``_reset_sockets`` is paho's internal for exactly this (2.x).
    """
    reset = getattr(client, "_reset_sockets", None)
    if reset is not None:
        with contextlib.suppress(OSError):
            reset()
    else:  # another paho version: at least the connection's socket
        sock = client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
