"""Stable failure reasons and the runtime's status, against real pymodbus and asyncua servers.

A device that stays down is published once when it goes down (its reason carries no
countdown and does not change with each reconnect attempt) and once when it comes back; the
time of the next attempt is a figure of the device's status. A scan plan that
``campo tags plan`` rejects is logged at start with the plan's words, and the overruns it
causes are measured per device and scan class.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.modbus import Tables, TcpServer

from engine.scada.runtime import Runtime
from engine.scada.simulator import NAMESPACE_URI, PhysicsConfig, Simulator
from engine.scada.types import Quality, TagValue
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration

FAST = PhysicsConfig(ramp_hz_per_s=40.0, rate_tau_s=0.3, drawdown_tau_s=0.6, thermal_tau_s=0.6)


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


def recorder(rt: Runtime, path: str) -> list[TagValue]:
    """Every value of ``path`` the pipeline publishes, in order."""
    seen: list[TagValue] = []
    rt.subscribe([path], seen.extend)
    return seen


MODBUS_SITE = """site: s
scan_class: fast
devices:
  plc: {type: modbus_tcp, host: 127.0.0.1, port: '${port}', timeout: 300ms,
        reconnect_delay: 100ms, reconnect_delay_max: 300ms}
parameters:
  port: {type: int, default: 502}
tags:
  level: {device: plc, address: hr:40001, type: uint16}
  temp: {device: plc, address: hr:40002, type: uint16}
"""


async def test_modbus_outage_publishes_each_bad_tag_once(
        project: Callable[[dict[str, str]], Path]) -> None:
    server = TcpServer({1: Tables(hr=[7, 8] + [0] * 20)})
    await server.start()
    root = project({"tags/scan_classes.yaml": "scan_classes: {fast: {period: 100ms}}\n",
                    "tags/sites/s.yaml": MODBUS_SITE})
    rt = Runtime(load_tags(root, params={"s.port": server.port}))
    seen = recorder(rt, "s.level")
    await rt.start()
    try:
        await until(lambda: bool(seen) and seen[-1].quality is Quality.GOOD)
        group = rt.groups[0]
        await server.stop()
        await until(lambda: seen[-1].quality is Quality.BAD, within=3.0)
        down = len(seen)
        scans = group.completed
        worker = rt.workers["s.plc"]
        attempts = worker.backoff.failures
        # 100 ms scans, reconnect attempts every 50-300 ms: many scans and attempts
        await until(lambda: group.completed >= scans + 15
                    and worker.backoff.failures >= attempts + 3, within=10.0)
        assert len(seen) == down, [v.reason for v in seen[down - 1:]]
        bad = seen[-1]
        # the connection drops, or (a request in flight when it stopped) nothing answers
        assert bad.reason in (f"device offline: connection to 127.0.0.1:{server.port} lost",
                              "device offline: no unit answered within 0.3 s"), bad.reason
        assert bad.value == 7  # the last good value is kept
        # the countdown and the latest attempt are figures of the device, not of its tags
        status = next(d for d in rt.status()["devices"] if d["device"] == "s.plc")
        assert status["state"] == "offline" and status["reason"] == bad.reason
        assert status["last_error"] == (
            f"device offline: cannot connect to 127.0.0.1:{server.port}")
        assert 0 <= status["next_attempt_in"] <= 0.3
        assert status["failed_attempts"] >= 3 and status["offline_since"]

        await server.start()
        await until(lambda: seen[-1].quality is Quality.GOOD, within=5.0)
        assert len(seen) == down + 1
        status = next(d for d in rt.status()["devices"] if d["device"] == "s.plc")
        assert status["state"] == "online" and status["reason"] is None
        assert status["next_attempt_in"] is None and status["offline_since"] is None
    finally:
        await rt.stop()
        await server.stop()


def opcua_site(endpoint: str) -> str:
    return f"""site: s
scan_class: fast
devices:
  ua: {{type: opcua, endpoint: '{endpoint}', namespace: '{NAMESPACE_URI}', timeout: 1s,
        reconnect_delay: 100ms, reconnect_delay_max: 300ms}}
tags:
  pip: {{device: ua, node: 's=W1.IntakePressure', type: float64}}
  frequency: {{device: ua, node: 's=W1.Frequency', type: float64}}
"""


async def test_opcua_outage_reads_device_offline_and_is_published_once(
        project: Callable[[dict[str, str]], Path]) -> None:
    sim = Simulator(1, tick_s=0.05, physics=FAST)
    await sim.start()
    endpoint = sim.opcua_url
    root = project({"tags/scan_classes.yaml": "scan_classes: {fast: {period: 100ms}}\n",
                    "tags/sites/s.yaml": opcua_site(endpoint)})
    rt = Runtime(load_tags(root))
    seen = recorder(rt, "s.frequency")
    await rt.start()
    try:
        await until(lambda: bool(seen) and seen[-1].quality is Quality.GOOD, within=15.0)
        driver = rt.workers["s.ua"].driver
        group = rt.groups[0]
        await sim.opcua.stop()
        await until(lambda: seen[-1].quality is Quality.BAD, within=10.0)
        down = len(seen)
        scans = group.completed
        messages: list[str] = []
        handler = _ListHandler(messages)
        opcua_log = logging.getLogger("engine.scada.drivers.opcua")
        opcua_log.addHandler(handler)
        opcua_log.setLevel(logging.DEBUG)
        try:
            # several scans and at least two more failed reconnects of the driver
            await until(lambda: group.completed >= scans + 10
                        and sum("still failing" in m for m in messages) >= 2, within=15.0)
        finally:
            opcua_log.removeHandler(handler)
            opcua_log.setLevel(logging.NOTSET)
        assert len(seen) == down, [v.reason for v in seen[down - 1:]]
        reason = seen[-1].reason or ""
        assert reason.startswith("device offline: "), reason
        assert "Error" not in reason and "Errno" not in reason, reason
        assert reason.endswith(f"({endpoint})")
        assert not driver.connected
    finally:
        await rt.stop()
        await sim.stop()


class _ListHandler(logging.Handler):
    def __init__(self, out: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        self.out.append(record.getMessage())


SLOW_SITE = """site: s
devices:
  plc: {type: modbus_tcp, host: 127.0.0.1, port: '${port}', timeout: 3s, round_trip: 60ms}
parameters:
  port: {type: int, default: 502}
tags:
""" + "".join(f"  u{u}: {{device: plc, address: hr:40001, unit_id: {u}, type: uint16, "
              f"scan_class: fast}}\n" for u in range(1, 6)) + \
    "  total: {device: plc, address: hr:40002, unit_id: 1, type: uint16, scan_class: slow}\n"


async def test_slow_plan_is_said_at_start_and_overruns_are_measured(
        project: Callable[[dict[str, str]], Path], caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Five units answering in 60 ms each, read every 200 ms: a scan needs about 300 ms."""
    server = TcpServer({u: Tables(hr=[u, 100 + u] + [0] * 10, latency=0.06)
                        for u in range(1, 6)})
    await server.start()
    root = project({"tags/scan_classes.yaml":
                    "scan_classes: {fast: {period: 200ms}, slow: {period: 2s}}\n",
                    "tags/sites/s.yaml": SLOW_SITE})
    model = load_tags(root, params={"s.port": server.port})
    rt = Runtime(model)
    with caplog.at_level(logging.WARNING, logger="engine.scada.runtime"):
        await rt.start()
    try:
        warned = [r.getMessage() for r in caplog.records
                  if r.name == "engine.scada.runtime" and r.levelno == logging.WARNING]
        # the words of `campo tags plan`: 5 requests x 60 ms in a 200 ms period
        assert any("device s.plc: scan class 'fast' needs about 300 ms per scan, more than "
                   "80% of its 0.2 s period" in m for m in warned), warned
        assert any("keep the connection busy 153% of the time (limit 80%)" in m
                   for m in warned), warned
        fast = next(g for g in rt.groups if g.scan_class == "fast")
        await until(lambda: fast.completed >= 8, within=10.0)
        status = rt.status()
        assert status["plan"]["ok"] is False and len(status["plan"]["problems"]) == 2
        # the same words as `campo tags plan`, which exits 1 on this plan
        from engine.cli import main

        code = await asyncio.to_thread(main, ["tags", "plan", "--project", str(root),
                                              "--set", f"s.port={server.port}"])
        printed = capsys.readouterr().err
        assert code == 1
        for problem in status["plan"]["problems"]:
            assert f"error: {problem}" in printed and problem in warned[0]
        dev = next(d for d in status["devices"] if d["device"] == "s.plc")
        cls = {c["scan_class"]: c for c in dev["scan_classes"]}
        f = cls["fast"]
        assert f["period"] == 0.2 and f["tags"] == 5
        assert f["overruns"] >= 3, f
        assert f["last_duration"] >= 0.25, f  # five answers of 60 ms each, one connection
        assert f["actual_period"] >= 0.3, f   # "200 ms" data arrives every 300+ ms
        assert f["behind"] is True and dev["behind"] is True
        assert cls["slow"]["overruns"] == 0 and cls["slow"]["behind"] is False
        await until(lambda: (v := rt.get("s.u3")) is not None and v.quality is Quality.GOOD
                    and v.value == 3)
    finally:
        await rt.stop()
        await server.stop()


async def test_a_plan_that_fits_says_nothing_and_keeps_its_period(
        project: Callable[[dict[str, str]], Path], caplog: pytest.LogCaptureFixture) -> None:
    server = TcpServer({1: Tables(hr=[1, 2] + [0] * 10)})
    await server.start()
    root = project({"tags/scan_classes.yaml": "scan_classes: {fast: {period: 100ms}}\n",
                    "tags/sites/s.yaml": MODBUS_SITE})
    rt = Runtime(load_tags(root, params={"s.port": server.port}))
    with caplog.at_level(logging.WARNING, logger="engine.scada.runtime"):
        await rt.start()
    try:
        assert not [r for r in caplog.records if "scan plan" in r.getMessage()]
        await until(lambda: rt.groups[0].completed >= 6)
        f = rt.status()["devices"][0]["scan_classes"][0]
        assert f["overruns"] == 0 and f["behind"] is False
        assert 0.08 <= f["actual_period"] <= 0.13, f
        assert f["age"] is not None and f["age"] < 0.2
        assert rt.status()["plan"] == {"ok": True, "problems": []}
    finally:
        await rt.stop()
        await server.stop()


async def test_a_silent_opcua_server_reads_no_session_not_not_connected_yet(
        project: Callable[[dict[str, str]], Path]) -> None:
    """A server that accepts TCP but never answers (a listening socket nobody serves)."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    endpoint = f"opc.tcp://127.0.0.1:{silent.getsockname()[1]}"
    root = project({"tags/scan_classes.yaml": "scan_classes: {fast: {period: 100ms}}\n",
                    "tags/sites/s.yaml": opcua_site(endpoint)})
    rt = Runtime(load_tags(root))
    seen = recorder(rt, "s.pip")
    await rt.start()
    try:
        await until(lambda: bool(seen), within=10.0)
        assert seen[-1].reason == f"device offline: no session within 1 s ({endpoint})"
        await asyncio.sleep(2.5)  # more scans and attempts: the same reason, not republished
        assert len(seen) == 1
    finally:
        await rt.stop()
        silent.close()
