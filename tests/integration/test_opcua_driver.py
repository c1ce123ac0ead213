"""The OPC-UA driver against the simulator's real asyncua server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from engine.scada.drivers.opcua import OpcUaDriver, OpcUaWriteError, create, point
from engine.scada.simulator import NAMESPACE_URI, Fault, PhysicsConfig, Simulator
from engine.scada.types import DeviceUnavailable, PointRef, Quality, Reading
from metamodel.tags import load_tags

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

FAST = PhysicsConfig(ramp_hz_per_s=40.0, rate_tau_s=0.3, drawdown_tau_s=0.6, thermal_tau_s=0.6)


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[Simulator]:
    """A simulator in its own thread for the tests that do not restart it."""
    s = Simulator(4, tick_s=0.05, physics=FAST)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulator in the test's own loop, for restarts and stalls."""
    s = Simulator(2, tick_s=0.05, physics=FAST)
    await s.start()
    yield s
    await s.stop()


async def until(check: Callable[[], bool], within: float = 15.0) -> None:
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


def p(tag: str, node: str) -> PointRef:
    return PointRef(tag, node)


async def test_subscription_delivers_changes(shared_sim: Simulator) -> None:
    drv = OpcUaDriver(shared_sim.opcua_url, namespace=NAMESPACE_URI, period=0.1)
    seen: list[tuple[str, Reading]] = []
    drv.add_listener(lambda tag, r: seen.append((tag, r)))
    points = [p("w1.pip", "s=W1.IntakePressure"), p("w1.run", "s=W1.Running"),
              p("w1.trip", f"nsu={NAMESPACE_URI};s=W1.TripCause")]
    await drv.connect()
    try:
        assert drv.connected
        first = await drv.read(points)  # registers the points; values follow
        assert set(first) == {"w1.pip", "w1.run", "w1.trip"}
        await until(lambda: sum(1 for t, _ in seen if t == "w1.pip") >= 5)
        got = await drv.read(points)
        assert got["w1.pip"].quality is Quality.GOOD and got["w1.pip"].source_ts is not None
        assert abs(got["w1.pip"].value - shared_sim.snapshot(1).intake_pressure) < 50
        assert got["w1.run"] == Reading(True, Quality.GOOD, got["w1.run"].source_ts)
        assert got["w1.trip"].value == 0
        # sampling interval from the scan period: a 0.1 s subscription, stale limit from it
        assert list(drv.stale_timeouts()) == [0.1]
        assert 0.5 < drv.stale_timeouts()[0.1] < 5
    finally:
        await drv.close()


async def test_namespace_errors_and_unknown_nodes_are_bad_with_a_reason(
        shared_sim: Simulator) -> None:
    drv = OpcUaDriver(shared_sim.opcua_url, period=0.1)
    points = [p("a", "nsu=urn:nowhere;s=W1.IntakePressure"), p("b", "ns=2;s=W1.Nope"),
              p("c", "not a node"), p("d", f"nsu={NAMESPACE_URI};s=W2.Frequency")]
    await drv.connect()
    try:
        await drv.read(points)
        await until(lambda: drv._cache.get("d") is not None and drv._cache.get("b") is not None)
        got = await drv.read(points)
        assert got["a"] == Reading(None, Quality.BAD, None,
                                   "namespace 'urn:nowhere' is not on the server")
        assert got["b"].quality is Quality.BAD and got["b"].reason == "BadNodeIdUnknown"
        assert got["c"].reason == "'not a node' is not an OPC-UA node id"
        assert got["d"].quality is Quality.GOOD and got["d"].value == pytest.approx(50.0)
    finally:
        await drv.close()


async def test_write_with_read_back(shared_sim: Simulator) -> None:
    drv = OpcUaDriver(shared_sim.opcua_url, namespace=NAMESPACE_URI, period=0.1)
    sp = p("w3.sp", "s=W3.FrequencySetpoint")
    await drv.connect()
    try:
        await drv.write(sp, 52)  # an int for a Double node: coerced to the node's type
        assert (await drv.read([sp]))["w3.sp"].value == pytest.approx(52.0)
        assert shared_sim.snapshot(3).frequency_setpoint == pytest.approx(52.0)
        await until(lambda: abs(shared_sim.snapshot(3).frequency - 52.0) < 0.01)
        with pytest.raises(OpcUaWriteError, match="refused w3.pip = 1.0: Bad"):
            await drv.write(p("w3.pip", "s=W3.IntakePressure"), 1.0)
        with pytest.raises(OpcUaWriteError, match="not a whole number"):
            await drv.write(p("w3.fault", "s=W3.Fault"), 1.5)
        await drv.write(p("w3.run", "s=W3.RunCommand"), "false")
        assert shared_sim.snapshot(3).running is False
        await drv.write(p("w3.run", "s=W3.RunCommand"), True)
        assert shared_sim.snapshot(3).running is True
    finally:
        await drv.close()


async def test_simulated_comms_loss_is_bad_quality(shared_sim: Simulator) -> None:
    drv = OpcUaDriver(shared_sim.opcua_url, namespace=NAMESPACE_URI, period=0.1)
    pt = p("w4.pip", "s=W4.IntakePressure")
    await drv.connect()
    try:
        await drv.read([pt])
        await until(lambda: drv._cache.get("w4.pip", Reading(0, Quality.BAD)).quality
                    is Quality.GOOD)
        shared_sim.inject(4, Fault.COMMS_LOSS)
        await until(lambda: drv._cache["w4.pip"].quality is Quality.BAD)
        assert drv._cache["w4.pip"].reason == "BadNoCommunication"
        shared_sim.clear(4)
        await until(lambda: drv._cache["w4.pip"].quality is Quality.GOOD)
    finally:
        shared_sim.clear(4)
        await drv.close()


async def test_server_restart_restores_the_subscription(sim: Simulator) -> None:
    drv = OpcUaDriver(sim.opcua_url, namespace=NAMESPACE_URI, period=0.1, timeout=2.0,
                      reconnect_delay=0.2, reconnect_delay_max=1.0)
    pt = p("w1.pip", "s=W1.IntakePressure")
    seen: list[Reading] = []
    drv.add_listener(lambda tag, r: seen.append(r))
    await drv.connect()
    try:
        await drv.read([pt])
        await until(lambda: any(r.quality is Quality.GOOD for r in seen))
        restart = asyncio.create_task(sim.restart_opcua(down_s=1.5))
        await until(lambda: seen[-1].quality is Quality.BAD)
        assert (await drv.read([pt]))["w1.pip"].quality is Quality.BAD
        await restart
        mark = len(seen)
        await until(lambda: sum(1 for r in seen[mark:] if r.quality is Quality.GOOD) >= 3)
        assert drv.sessions == 2 and drv.connected
        assert (await drv.read([pt]))["w1.pip"].quality is Quality.GOOD
    finally:
        await drv.close()


async def test_stale_watchdog_marks_bad_then_rebuilds(sim: Simulator) -> None:
    drv = OpcUaDriver(sim.opcua_url, namespace=NAMESPACE_URI, period=0.1, timeout=2.0,
                      reconnect_delay=0.2)
    pt = p("w2.pip", "s=W2.IntakePressure")
    seen: list[Reading] = []
    drv.add_listener(lambda tag, r: seen.append(r))
    await drv.connect()
    try:
        await drv.read([pt])
        await until(lambda: len(seen) >= 3)
        limit = drv.stale_timeouts()[0.1]
        assert await sim.stall_opcua() == 1  # the session stays up, publishing stops
        stalled = time.monotonic()
        await until(lambda: seen[-1].quality is Quality.BAD)
        assert seen[-1].reason is not None and seen[-1].reason.startswith("stale: no publish")
        assert time.monotonic() - stalled >= limit * 0.8
        await until(lambda: seen[-1].quality is Quality.GOOD)
        assert drv.sessions == 2
    finally:
        await drv.close()


async def test_poll_mode_reads_values_and_degrades_when_the_server_is_gone(
        sim: Simulator) -> None:
    drv = OpcUaDriver(sim.opcua_url, namespace=NAMESPACE_URI, mode="poll", timeout=1.0,
                      reconnect_delay=0.2)
    pts = [p("f", "s=W1.Frequency"), p("sp", "s=W1.FrequencySetpoint")]
    await drv.connect()
    try:
        got = await drv.read(pts)
        assert got["f"].quality is Quality.GOOD and got["sp"].value == pytest.approx(45.0)
        await sim.opcua.stop()
        await until(lambda: not drv.connected)
        got = await drv.read(pts)
        assert got["f"].quality is Quality.BAD and got["f"].reason
    finally:
        await drv.close()


async def test_username_password() -> None:
    s = Simulator(1, tick_s=0.1, opcua_users={"operator": "s3cret"})
    await s.start()
    try:
        good = OpcUaDriver(s.opcua_url, namespace=NAMESPACE_URI, period=0.1,
                           username="operator", password="s3cret")
        bad = OpcUaDriver(s.opcua_url, namespace=NAMESPACE_URI, period=0.1, timeout=1.0,
                          username="operator", password="wrong")
        pt = p("w1.f", "s=W1.Frequency")
        await good.connect()
        try:
            with pytest.raises(DeviceUnavailable, match="BadUserAccessDenied"):
                await bad.connect()
            await good.read([pt])
            await until(lambda: good._cache.get("w1.f") is not None)
            assert (await good.read([pt]))["w1.f"].quality is Quality.GOOD
            assert not bad.connected
            r = (await bad.read([pt]))["w1.f"]
            assert r.quality is Quality.BAD and r.reason == "BadUserAccessDenied"
            with pytest.raises(DeviceUnavailable):
                await bad.write(pt, 50.0)
        finally:
            await good.close()
            await bad.close()
    finally:
        await s.stop()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="mode must be 'subscribe' or 'poll'"):
        OpcUaDriver("opc.tcp://x:4840", mode="push")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown security policy 'Basic128'"):
        OpcUaDriver("opc.tcp://x:4840", security_policy="Basic128")


async def test_the_sim_pad_tag_map_reads_and_writes_the_simulator(shared_sim: Simulator) -> None:
    """The repository's tags/ (sim_pad, device 'ua') through create() and point()."""
    model = load_tags(REPO, params={"sim_pad.opcua_endpoint": shared_sim.opcua_url,
                                    "sim_pad.opcua_enabled": True})
    device = model.devices["sim_pad.ua"]
    tags = model.tags_of("sim_pad.ua")
    points = {t.path: point(t) for t in tags}
    drv = create(device, environ={})
    assert drv.namespace == NAMESPACE_URI and drv.name == "sim_pad.ua"
    await drv.connect()
    try:
        await drv.read(list(points.values()))
        await until(lambda: all(drv._cache.get(t) is not None
                                and drv._cache[t].quality is Quality.GOOD for t in points))
        got = await drv.read(list(points.values()))
        w2 = shared_sim.snapshot(2)
        assert got["sim_pad.ua.w2.frequency_setpoint"].value == w2.frequency_setpoint
        assert abs(got["sim_pad.ua.w2.pip"].value - w2.intake_pressure) < 50
        assert got["sim_pad.ua.w2.running"].value is True
        # one subscription per scan period of the map
        assert set(drv.stale_timeouts()) == {t.period for t in tags}
        await drv.write(points["sim_pad.ua.w2.frequency_setpoint"], 47.5)
        assert shared_sim.snapshot(2).frequency_setpoint == 47.5
    finally:
        await drv.close()


async def test_security_policy_sign_and_encrypt(tmp_path: Path) -> None:
    """Basic256Sha256 + SignAndEncrypt with self-signed certificates on both sides."""
    import socket

    from asyncua import Server, ua
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    host = socket.gethostname()
    server = Server()
    await server.init()
    server.set_endpoint("opc.tcp://127.0.0.1:0/secure")
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    await setup_self_signed_certificate(
        tmp_path / "server.pem", tmp_path / "server.der", server.get_application_uri(), host,
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "srv"})
    await server.load_certificate(str(tmp_path / "server.der"))
    await server.load_private_key(str(tmp_path / "server.pem"))
    idx = await server.register_namespace("urn:campo:test:secure")
    await server.nodes.objects.add_variable(ua.NodeId("Level", idx), "Level", 4.25)
    await setup_self_signed_certificate(
        tmp_path / "client.pem", tmp_path / "client.der",
        "urn:example.org:FreeOpcUa:opcua-asyncio", host, [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "campo"})
    await server.start()
    assert server.bserver is not None
    url = f"opc.tcp://127.0.0.1:{server.bserver.port}/secure"
    try:
        secure = OpcUaDriver(url, namespace="urn:campo:test:secure", mode="poll",
                             security_policy="Basic256Sha256", security_mode="SignAndEncrypt",
                             certificate=str(tmp_path / "client.der"),
                             private_key=str(tmp_path / "client.pem"))
        await secure.connect()
        try:
            got = await secure.read([p("level", "s=Level")])
            assert got["level"].value == 4.25 and got["level"].quality is Quality.GOOD
        finally:
            await secure.close()
        plain = OpcUaDriver(url, namespace="urn:campo:test:secure", timeout=1.0)
        with pytest.raises(DeviceUnavailable):  # the server offers no unsecured endpoint
            await plain.connect()
        await plain.close()
    finally:
        await server.stop()
