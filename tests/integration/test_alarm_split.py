"""Web and alarm engine in separate processes (``CAMPO_BUS=mqtt``): alarm events and operator
actions travel over the bus's MQTT event channels (Mosquitto, a unique prefix)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_alarm_engine import TEMPLATE, S, at

from engine.bus.events import MqttEventHub
from engine.settings import Settings
from engine.wiring.alarms import AlarmWiring, RemoteActions
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration


def test_events_and_actions_cross_the_mqtt_bus(project: Any, tmp_path: Path,
                                                mqtt_url: str) -> None:
    root = project({
        "tags/scan_classes.yaml": "scan_classes:\n  fast: {period: 1s}\n",
        "tags/templates/pump.yaml": TEMPLATE,
        "tags/sites/pad.yaml": "site: pad\ndevices:\n  plc: {type: modbus_tcp, host: h}\n"
                               "instances:\n  w1: {template: pump, device: plc, unit_id: 1}\n",
    })
    tags = load_tags(root)
    db = sa.create_engine(f"sqlite:///{tmp_path / 'campo.db'}")
    prefix = f"t{uuid.uuid4().hex[:8]}/bus"
    settings = Settings(project=root, data_dir=tmp_path, bus="mqtt", bus_prefix=prefix)
    runtime_hub, web_hub = MqttEventHub(mqtt_url, prefix), MqttEventHub(mqtt_url, prefix)
    runtime = AlarmWiring(tags, db, settings, runtime_hub, run_engine=True)
    web = AlarmWiring(tags, db, settings, web_hub, run_engine=False)
    assert web.engine is None and isinstance(web.web.actions, RemoteActions)
    seen: list[dict[str, Any]] = []
    web_hub.subscribe("alarms", seen.extend)
    time.sleep(1.0)  # both hubs subscribed on the broker
    try:
        assert runtime.engine is not None
        runtime.engine.process([S("pad.w1.run_cmd", True, ts=at(0)),
                                S("pad.w1.running", False, ts=at(0))], now=at(0))
        end = time.monotonic() + 10
        while not seen and time.monotonic() < end:
            time.sleep(0.05)
        assert [(e["alarm"], e["action"]) for e in seen] == [("pad.w1.stopped", "raise")]
        results = web.web.actions("acknowledge", ["pad.w1.stopped"], user="ana",
                                  roles={"operator"}, sites=None, comment="on it", until=None,
                                  reason=None)
        assert results == [{"alarm": "pad.w1.stopped", "ok": True, "status": 200,
                            "from": "unack_active", "state": "ack_active"}]
        refused = web.web.actions("shelve", ["pad.w1.stopped"], user="ana",
                                  roles={"operator"}, sites=None, comment=None,
                                  until=at(600), reason="x")
        assert refused[0]["status"] == 403
        assert runtime.engine.states["pad.w1.stopped"].state.value == "ack_active"
    finally:
        runtime.stop()
        web.stop()
        db.dispose()
