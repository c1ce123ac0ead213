"""A failed tag write answers its own status over HTTP on both bus backends (issue 9, Show).

``POST /api/tags/<path>/write`` as an operator, on the generated API with authentication:

- 200 with the value read back when the device is the real simulator;
- 503 when the device is offline (the tag map's Modbus port points at a closed port);
- 504 when the write is not confirmed in time (a TCP server of the test's own accepts the
  connection and reads but never answers; the runtime's write timeout is shorter than the
  device's timeout);
- with no runtime serving writes: 503 in process, 504 over MQTT (nobody answers on the bus).

Both backends run the real pieces: ``inproc`` is ``campo serve`` with the runtime in the web
process (:class:`~engine.wiring.edge.EdgePlugin` on an :class:`~engine.bus.InProcessBus`);
``mqtt`` is the web side on an :class:`~engine.bus.mqtt.MqttBus` and the runtime bridged onto
its own ``MqttBus`` in this process, as ``campo scada`` wires it
(:class:`~engine.wiring.edge.RuntimeBridge`), joined by Mosquitto under a topic prefix of the
test's own. The runtime stays in process so the test can set its write timeout and the
device's timeout; the ``campo scada`` subprocess itself is covered by test_scada_split.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from engine.api import create_app, shutdown
from engine.auth.hooks import auth_init_hook, authorize, current_username
from engine.auth.passwords import Passwords
from engine.auth.users import create_user
from engine.bus import InProcessBus
from engine.bus.mqtt import MqttBus
from engine.db import build_metadata, create_engine_for
from engine.scada.simulator import PhysicsConfig, Simulator
from engine.settings import Settings
from engine.wiring.edge import EdgePlugin, RuntimeBridge
from metamodel import Model, load
from metamodel.tags import TagModel, load_tags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "pump intake 812"
HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
FAST = PhysicsConfig(ramp_hz_per_s=40.0, rate_tau_s=0.3, drawdown_tau_s=0.6, thermal_tau_s=0.6)
TAG = "sim_pad.w1.frequency_setpoint"
WRITE = f"/api/tags/{TAG}/write"
#: how long the web side waits for the runtime's answer: generous, so that a status the
#: runtime sends (503, its own 504) always arrives before the web side gives up
WEB_TIMEOUT = 20.0
#: the runtime's write timeout in the 504 case, far below the silent device's timeout
RUNTIME_WRITE_TIMEOUT = 2.0
SILENT_DEVICE_TIMEOUT = 120.0
BACKENDS = ("inproc", "mqtt")
#: a backend's name and, for ``mqtt``, the broker's URL
Backend = tuple[str, str | None]


def until(check: Callable[[], Any], within: float = 30.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something true (the machine may be loaded)."""
    end = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"{what} not met within {within} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(4, tick_s=0.1, physics=FAST)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(scope="module")
def model() -> Model:
    return load(REPO)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend's name and, for ``mqtt``, the broker (skipped, or failed in CI, without
    Mosquitto)."""
    if request.param == "mqtt":
        return "mqtt", str(request.getfixturevalue("mqtt_url"))
    return str(request.param), None


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on: bound (so no one else takes it) but not listening, so a
    connection is refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield int(s.getsockname()[1])
    finally:
        s.close()


class SilentDevice:
    """A TCP server that accepts connections and reads every request but never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.received = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="silent-device").start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.received += len(data)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()


@pytest.fixture
def silent() -> Iterator[SilentDevice]:
    dev = SilentDevice()
    try:
        yield dev
    finally:
        dev.close()


def sim_pad(model: Model, port: int, device_timeout: float | None = None) -> TagModel:
    """The repository's sim_pad map with its Modbus port at ``port`` (OPC-UA off)."""
    tags = load_tags(REPO, params={"sim_pad.modbus_port": port, "sim_pad.opcua_enabled": False},
                     roles=list(model.roles))
    if device_timeout is not None:
        plc = tags.devices["sim_pad.plc"]
        tags.devices["sim_pad.plc"] = dataclasses.replace(
            plc, spec=plc.spec.model_copy(update={"timeout": device_timeout}))
        assert tags.devices["sim_pad.plc"].timeout == device_timeout
    return tags


class Site:
    """The web API of one site on one backend, with the operator ``ana`` signed in."""

    def __init__(self, app: Any) -> None:
        self.client = app.test_client()
        r = self.client.post("/api/auth/login", json={"username": "ana", "password": PASSWORD})
        assert r.status_code == 200, r.json
        self.headers = {"Authorization": f"Bearer {r.json['access_token']}"}

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.headers)

    def write(self, value: Any) -> Any:
        return self.client.post(WRITE, json={"value": value}, headers=self.headers)

    def tag(self) -> dict[str, Any]:
        r = self.get(f"/api/tags/{TAG}")
        assert r.status_code == 200, r.json
        return dict(r.json)


@contextlib.contextmanager
def running(backend: Backend, tags: TagModel, model: Model, tmp: Path,
            *, runtime: bool = True, runtime_write_timeout: float | None = None,
            web_timeout: float = WEB_TIMEOUT) -> Iterator[Site]:
    """The API of ``tags`` on ``backend``, with the runtime serving writes unless not
    ``runtime``; the runtime is ready to answer write requests when this yields."""
    kind, mqtt_url = backend
    settings = Settings(project=REPO, data_dir=tmp, jwt_secret="status-secret-" + "x" * 40,
                        login_rate_limit="1000 per minute", api_rate_limit="10000 per minute",
                        simulate=False)
    engine = create_engine_for(f"sqlite:///{tmp / 'campo.db'}")
    build_metadata(model).create_all(engine)
    prefix = f"campo-test/{uuid.uuid4().hex[:10]}"
    bridge: RuntimeBridge | None = None
    runtime_bus: MqttBus | None = None
    if kind == "inproc":
        web_bus: Any = InProcessBus()
        plugin = EdgePlugin(tags, web_bus, engine, run_runtime=runtime)
        bridge = plugin.bridge
    else:
        assert mqtt_url is not None
        web_bus = MqttBus(mqtt_url, prefix=prefix)
        plugin = EdgePlugin(tags, web_bus, engine, run_runtime=False)  # CAMPO_BUS=mqtt
        if runtime:  # what `campo scada` runs: the runtime on a bus of its own
            runtime_bus = MqttBus(mqtt_url, prefix=prefix)
            bridge = RuntimeBridge(tags, runtime_bus)
    assert (bridge is not None) == runtime
    if bridge is not None and runtime_write_timeout is not None:
        bridge.thread.runtime.write_timeout = runtime_write_timeout
    plugin.live.write_timeout = web_timeout
    app = create_app(model, engine, settings, authorize=authorize, current_user=current_username,
                     on_init=[auth_init_hook(engine, settings, model, hasher=HASHER),
                              plugin.init_app])
    with engine.begin() as conn:
        create_user(conn, model, username="ana", now=dt.datetime.now(dt.UTC),
                    password_hash=Passwords(HASHER).hash(PASSWORD), roles=["operator"],
                    sites=["*"])
    plugin_started = bridge_started = False
    try:
        plugin.start()
        plugin_started = True
        if kind == "mqtt":
            assert web_bus.wait_connected(15), "the web side's bus did not connect"
            if bridge is not None and runtime_bus is not None:
                assert runtime_bus.wait_connected(15), "the runtime's bus did not connect"
                bridge.start()
                bridge_started = True

                def answered() -> bool:
                    # the runtime's write subscription is in place once it answers: an
                    # unknown tag gets the policy's 404 (a lost request: the bus's 504)
                    out = web_bus.request_write("sim_pad.no_such_tag", 0, {"roles": []},
                                                timeout=1.0)
                    return out.status == 404

                until(answered, what="the runtime answering write requests on the bus")
        yield Site(app)
    finally:
        if runtime_bus is not None:  # mqtt: the runtime first, as `campo scada` stops
            if bridge is not None and bridge_started:
                bridge.stop()
            runtime_bus.close()
            if bridge_started and web_bus.connected:  # drop this prefix's retained values
                infos = [web_bus.connection.client.publish(f"{prefix}/v/{path}", b"", qos=1,
                                                           retain=True) for path in tags.tags]
                with contextlib.suppress(RuntimeError, ValueError):
                    infos[-1].wait_for_publish(10)
        if plugin_started:
            plugin.stop()  # stops its runtime (inproc) and closes the web side's bus
        else:
            web_bus.close()
        shutdown(app)
        engine.dispose()


def assert_error(r: Any, status: int, *words: str) -> str:
    """The API's JSON error shape ``{code, status, message}`` with ``status``."""
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    assert r.mimetype == "application/json"
    body = r.json
    assert body["code"] == status and isinstance(body["status"], str), body
    message = body["message"]
    assert message.startswith(f"write to '{TAG}' failed: "), message
    for word in words:
        assert word in message, (word, message)
    return str(message)


def test_a_write_to_the_simulator_answers_200(backend: Backend, sim: Simulator, model: Model,
                                              tmp_path: Path) -> None:
    with running(backend, sim_pad(model, sim.ports.modbus), model, tmp_path) as site:
        until(lambda: site.tag()["quality"] == "good", what="a good value of the tag")
        value = 47.25 if backend[0] == "inproc" else 53.75
        r = site.write(value)
        assert r.status_code == 200, r.json
        assert r.json["ok"] is True and r.json["value"] == pytest.approx(value, abs=0.01)
        assert sim.snapshot(1).frequency_setpoint == pytest.approx(value, abs=0.01)


def test_a_write_to_an_offline_device_answers_503(backend: Backend, closed_port: int, model: Model,
                                                  tmp_path: Path) -> None:
    with running(backend, sim_pad(model, closed_port), model, tmp_path) as site:
        # the web side sees the device offline: the tag is BAD with the runtime's reason
        seen = until(lambda: (t := site.tag())["quality"] == "bad"
                     and (t["reason"] or "").startswith("device offline") and t,
                     what="the tag BAD with the device offline")
        assert str(closed_port) in seen["reason"]
        assert_error(site.write(50.0), 503, "device offline", str(closed_port))
        # the policy still comes first: a value out of limits is 422, not the device's 503
        assert site.write(75.0).status_code == 422


def test_an_unconfirmed_write_answers_504(backend: Backend, silent: SilentDevice, model: Model,
                                          tmp_path: Path) -> None:
    tags = sim_pad(model, silent.port, device_timeout=SILENT_DEVICE_TIMEOUT)
    with running(backend, tags, model, tmp_path,
                 runtime_write_timeout=RUNTIME_WRITE_TIMEOUT) as site:
        until(lambda: silent.received > 0, what="the runtime sending requests to the device")
        # the runtime's own timeout answers (the web side would say "no answer ... in 20 s")
        assert_error(site.write(50.0), 504,
                     f"no confirmation within {RUNTIME_WRITE_TIMEOUT:g} s")
        assert site.tag()["quality"] != "good"  # nothing ever came back from the device


def test_a_write_with_no_runtime_answers_503_in_process_and_504_over_mqtt(
        backend: Backend, model: Model, closed_port: int, tmp_path: Path) -> None:
    with running(backend, sim_pad(model, closed_port), model, tmp_path,
                 runtime=False, web_timeout=2.0) as site:
        r = site.write(50.0)
        if backend[0] == "inproc":  # the web process knows no runtime serves writes
            assert_error(r, 503, "the SCADA runtime is not running")
        else:  # nobody answers on the bus in time
            assert_error(r, 504, "no answer from the SCADA runtime in 2.0 s")
