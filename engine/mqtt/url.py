"""Broker URLs: the one place an ``mqtt://`` or ``mqtts://`` URL is read.

::

    mqtt://[user[:password]@]host[:port][?client_id=ID]
    mqtts://[user[:password]@]host[:port][?ca_file=PATH&insecure=true&client_id=ID]

``mqtts`` means TLS, on port 8883 unless the URL names one; ``mqtt`` is clear text on 1883.
User and password are percent-decoded. The deployment settings (``CAMPO_MQTT_USERNAME``,
``CAMPO_MQTT_PASSWORD``, ``CAMPO_MQTT_CA_FILE``, ``CAMPO_MQTT_TLS_INSECURE``) fill what the
URL leaves out (:meth:`Broker.from_settings`); keyword arguments of :func:`parse_broker`
override the URL.

- ``ca_file``: PEM file of the certificate authorities that sign the broker's certificate
  (default: the system's trusted authorities);
- ``insecure``: do not verify the broker's certificate or host name (traffic is still
  encrypted; for a lab broker with a self-signed certificate, never in production).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from engine.settings import Settings

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_QUERY_KEYS = ("ca_file", "insecure", "client_id")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class Broker:
    """Where and how to connect: host, port, TLS and credentials."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    ca_file: str | None = None
    insecure: bool = False

    @property
    def name(self) -> str:
        """``host:port`` (no credentials: safe for logs)."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The broker as a URL without credentials (for logs and messages)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @classmethod
    def from_settings(cls, settings: Settings) -> Broker:
        """The deployment's broker: ``CAMPO_MQTT_URL`` completed by the other settings."""
        if not settings.mqtt_url:
            raise ValueError("no MQTT broker configured (CAMPO_MQTT_URL is empty)")
        pwd = settings.mqtt_password.get_secret_value()
        return parse_broker(settings.mqtt_url, defaults=Defaults(
            username=settings.mqtt_username or None, password=pwd or None,
            ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
            insecure=settings.mqtt_tls_insecure))


@dataclass(frozen=True, slots=True)
class Defaults:
    """Values used where the URL says nothing (the deployment settings)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    insecure: bool = False


def parse_broker(url: str | Broker, *, defaults: Defaults | None = None,
                 username: str | None = None, password: str | None = None,
                 client_id: str | None = None) -> Broker:
    """The :class:`Broker` of ``url``; :class:`ValueError` naming the problem otherwise.

    >>> parse_broker("mqtts://u:p%40ss@broker.site").port
    8883
    """
    if isinstance(url, Broker):
        b = url
    else:
        b = _parse(url, defaults or Defaults())
    if username:
        b = replace(b, username=username)
    if password:
        b = replace(b, password=password)
    if client_id:
        b = replace(b, client_id=client_id)
    return b


def _parse(url: str, defaults: Defaults) -> Broker:
    shown = url.split("@")[-1] if "@" in url else url  # never echo a password
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as exc:
        raise ValueError(f"broker URL {shown!r}: {exc}") from None
    scheme = u.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"broker URL must look like mqtt://host:1883 or mqtts://host:8883, "
                         f"got {shown!r}")
    if u.path not in ("", "/"):
        raise ValueError(f"broker URL {shown!r}: a broker URL has no path ({u.path!r})")
    query: dict[str, str] = {}
    for key, value in parse_qsl(u.query, keep_blank_values=True):
        if key not in _QUERY_KEYS:
            raise ValueError(f"broker URL {shown!r}: unknown parameter {key!r} "
                             f"(expected one of {', '.join(_QUERY_KEYS)})")
        query[key] = value
    tls = scheme == "mqtts"
    insecure = defaults.insecure
    if "insecure" in query:
        text = query["insecure"].lower()
        if text not in _TRUE | _FALSE:
            raise ValueError(f"broker URL {shown!r}: insecure={query['insecure']!r} is not "
                             "true or false")
        insecure = text in _TRUE
    ca_file = query.get("ca_file") or defaults.ca_file
    if not tls and ("ca_file" in query or "insecure" in query):
        raise ValueError(f"broker URL {shown!r}: ca_file and insecure need mqtts://")
    return Broker(
        host=u.hostname or "127.0.0.1", port=port or DEFAULT_PORTS[scheme], tls=tls,
        username=unquote(u.username) if u.username else defaults.username,
        password=(unquote(u.password) if u.password else None) if u.username
        else defaults.password,
        client_id=query.get("client_id") or None,
        ca_file=ca_file if tls else None, insecure=insecure if tls else False)
