"""The one MQTT transport: broker URLs, paho clients, connection state.

Everything in the engine that talks MQTT (the bus, the MQTT/Sparkplug driver, upstream
publishing, alarm and event publishing, the health check) reads its broker URL with
:func:`parse_broker` (or :meth:`Broker.from_settings`) and builds its paho client with
:func:`new_client` or :class:`Connection`, so ``mqtts://`` means TLS on 8883 everywhere.
This package imports only paho and :mod:`engine.settings`; paho (about 6 MB and 0.1 s) is
imported on first use of a client name, so a web process with no broker never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .url import DEFAULT_PORTS, Broker, Defaults, parse_broker

if TYPE_CHECKING:
    from .client import Connection, new_client, probe, tls_context

_CLIENT_NAMES = ("Connection", "new_client", "probe", "tls_context")


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_PORTS", "Broker", "Connection", "Defaults", "new_client", "parse_broker",
           "probe", "tls_context"]
