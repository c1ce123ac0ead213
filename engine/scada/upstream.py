"""Upstream outputs as runtime sinks: retained JSON per tag, and a Sparkplug B edge node.

Both are :class:`~engine.scada.sinks.Sink` objects: the runtime queues every batch of
changes for them (:class:`~engine.scada.sinks.QueuedSink`) and their worker hands the
batches over, so a slow or absent broker never delays a scan, and each one's backlog shows
in ``Runtime.sink_stats()`` and ``GET /api/scada/status``. They publish from the runtime's
event loop (``thread=False``): the MQTT link and the edge node are bound to the loop they
started in, and publishing only queues in paho, so a call returns at once.

Start does not wait long for the broker (:data:`START_WAIT`): the link keeps reconnecting in
the background; retained JSON of QoS 1 waits in paho's queue, the edge node keeps the latest
values and births them on every (re)connect.

Built by the wiring (``engine.wiring.edge``) from the settings::

    broker = Broker.from_settings(settings)
    runtime.add_sink(JsonUpstreamSink(broker, "campo/{site}/{tag_path}", site="pad7"),
                     thread=False)
    runtime.add_sink(SparkplugSink(broker, "group", "pad7", datatypes,
                                   bd_seq_file=bd_seq_path(data_dir, "group", "pad7")),
                     thread=False)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .types import TagValue

log = logging.getLogger(__name__)

#: seconds a sink's start waits for the broker before it goes on connecting in the background
START_WAIT = 3.0


class JsonUpstreamSink:
    """Every tag change as retained JSON on ``topic`` (``{tag}``, ``{tag_path}``, ``{site}``)."""

    name = "upstream"

    def __init__(self, broker: Any, topic: str, *, site: str = "",
                 wait: float = START_WAIT) -> None:
        """:param broker: an ``mqtt://`` URL or an :class:`engine.mqtt.Broker`"""
        from .drivers.mqtt import MqttLink, MqttPublisher

        self.url = str(getattr(broker, "url", broker))  # for logs: no credentials
        self.wait = wait
        self.link = MqttLink(broker)
        self.publisher = MqttPublisher(self.link, topic, fields={"site": site})

    async def start(self) -> None:
        if not await self.link.connect(self.wait):
            log.warning("upstream broker %s not reachable yet; publishing when it is",
                        self.url)

    def publish(self, batch: Sequence[TagValue]) -> None:
        self.publisher.publish(batch)

    async def stop(self) -> None:
        await self.link.close()


class SparkplugSink:
    """The site as a Sparkplug B edge node: births on every connect, then NDATA/DDATA.

    ``datatypes`` are the metrics (tag path -> Sparkplug datatype), the tags' and any more
    (the alarms' states, offered to the same sink by ``RuntimeBridge.sparkplug_publish``).
    """

    name = "sparkplug"

    def __init__(self, broker: Any, group: str, node: str, datatypes: Mapping[str, int],
                 *, bd_seq_file: str | os.PathLike[str] | None = None,
                 wait: float = START_WAIT) -> None:
        """:param broker: an ``mqtt://`` URL or an :class:`engine.mqtt.Broker`
        :param bd_seq_file: where ``bdSeq`` survives restarts (``sparkplug.bd_seq_path``)"""
        from .drivers.mqtt import MqttLink
        from .sparkplug import SparkplugEdgeNode

        self.url = str(getattr(broker, "url", broker))
        self.wait = wait
        self.edge: Any = SparkplugEdgeNode(MqttLink(broker), group, node, dict(datatypes),
                                           bd_seq_file=bd_seq_file)

    async def start(self) -> None:
        if not await self.edge.start(self.wait):
            log.warning("Sparkplug broker %s not reachable yet; births when it is", self.url)

    def publish(self, batch: Sequence[TagValue]) -> None:
        self.edge.publish(batch)

    async def stop(self) -> None:
        await self.edge.stop()


__all__ = ["START_WAIT", "JsonUpstreamSink", "SparkplugSink"]
