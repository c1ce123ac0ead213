"""The one MQTT transport: broker URLs, paho clients, connection state.

Everything in the engine that talks MQTT (the bus, the MQTT/Sparkplug driver, upstream
publishing, alarm and event publishing, the health check) reads its broker URL with
:func:`parse_broker` (or :meth:`Broker.from_settings`) and builds its paho client with
:func:`new_client` or :class:`Connection`, so ``mqtts://`` means TLS on 8883 everywhere.
This package imports only paho and :mod:`engine.settings`.
"""

from __future__ import annotations

from .client import Connection, new_client, probe, tls_context
from .url import DEFAULT_PORTS, Broker, Defaults, parse_broker

__all__ = ["DEFAULT_PORTS", "Broker", "Connection", "Defaults", "new_client", "parse_broker",
           "probe", "tls_context"]
