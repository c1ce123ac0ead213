"""The bus between the SCADA runtime and the web process.

``engine.api`` and ``engine.scada`` never import each other; they meet here. The SCADA
side publishes :class:`LiveValue` batches and serves write requests; the web side reads
the latest values, subscribes to tag patterns and requests writes. Two implementations:
:class:`InProcessBus` when both run in one process (``campo serve``), :class:`MqttBus`
when they do not (topics under a configurable prefix on Mosquitto).
"""

from __future__ import annotations

from .base import Bus, LiveValue, Subscription, WriteOutcome
from .inproc import InProcessBus

__all__ = ["Bus", "InProcessBus", "LiveValue", "Subscription", "WriteOutcome"]
