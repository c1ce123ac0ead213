"""Delivery over one channel: webhook (JSON + HMAC-SHA256), MQTT topic, SMTP email.

Each sender raises :class:`DeliveryError` with a short reason when the receiver did not
take the message; the service records it and retries later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from metamodel.notify import EmailChannel, MqttChannel, WebhookChannel, seconds

SIGNATURE_HEADER = "X-Campo-Signature"
DELIVERY_HEADER = "X-Campo-Delivery"


class DeliveryError(Exception):
    """The receiver did not take the message (retried later)."""


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of the body with the channel's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(ch: WebhookChannel, delivery: int, payload: Mapping[str, Any],
                 environ: Mapping[str, str]) -> None:
    """POST ``payload`` as JSON, signed when the channel names a secret."""
    body = json.dumps(payload, default=str, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", DELIVERY_HEADER: str(delivery),
               "User-Agent": "campo-notify"}
    if ch.secret_env:
        secret = environ.get(ch.secret_env)
        if not secret:
            raise DeliveryError(f"environment variable {ch.secret_env} (the webhook secret) "
                                "is not set")
        headers[SIGNATURE_HEADER] = signature(secret, body)
    req = urllib.request.Request(ch.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=seconds(ch.timeout)) as resp:  # noqa: S310
            status = resp.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} from {ch.url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{ch.url}: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status} from {ch.url}")


def send_email(ch: EmailChannel, subject: str, text: str, to: list[str],
               environ: Mapping[str, str]) -> None:
    """Send a plain-text mail through the channel's SMTP server (STARTTLS, login)."""
    if not to:
        raise DeliveryError("no recipients (nobody on duty and no fixed 'to')")
    msg = EmailMessage()
    msg["From"] = ch.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg.set_content(text)
    try:
        with smtplib.SMTP(ch.host, ch.port, timeout=seconds(ch.timeout)) as smtp:
            if ch.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=ch.cafile))
            if ch.username:
                password = environ.get(ch.password_env or "", "")
                smtp.login(ch.username, password)
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"smtp {ch.host}:{ch.port}: {exc}") from None


class MqttSender:
    """One connected client per broker, reused for every message (paho, QoS 1).

    Brokers are read by :mod:`engine.mqtt` (``mqtts://`` = TLS, credentials, CA file);
    messages name them without credentials, since delivery errors are stored.
    """

    def __init__(self) -> None:
        self._clients: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def _connection(self, broker: Any) -> Any:
        from engine.mqtt import Connection

        with self._lock:
            conn = self._clients.get(broker)
            if conn is None:
                try:
                    conn = Connection(broker, prefix="campo-notify", name="notify")
                except ValueError as exc:
                    raise DeliveryError(str(exc)) from None
                conn.start()
                self._clients[broker] = conn
            return conn

    def send(self, ch: MqttChannel, url: Any, topic: str, payload: Mapping[str, Any],
             timeout: float = 5.0) -> None:
        """Publish and wait until the broker confirmed (QoS 1/2) or the timeout.

        :param url: an ``mqtt://``/``mqtts://`` URL or an :class:`engine.mqtt.Broker`"""
        conn = self._connection(url)
        name = conn.broker.url
        if not conn.wait_connected(timeout):  # a first connection
            raise DeliveryError(f"MQTT broker {name} not connected")
        info = conn.client.publish(topic, json.dumps(payload, default=str), qos=ch.qos)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"MQTT publish to {topic}: {exc}") from None
        if not info.is_published():
            raise DeliveryError(f"MQTT broker {name} did not confirm within {timeout:g} s")

    def close(self) -> None:
        with self._lock:
            for conn in self._clients.values():
                conn.stop()
            self._clients.clear()
