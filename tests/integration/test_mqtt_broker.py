"""deploy/mosquitto.conf on a real Mosquitto: it starts, and a slow QoS 1 subscriber loses nothing.

The same burst through Mosquitto's defaults (``max_queued_messages 1000``) loses messages, which
is why the file raises the limit.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

pytestmark = pytest.mark.integration

CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto.conf"
BURST = 3000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker(tmp: Path, conf_text: str) -> Iterator[int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(exe):
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto is not installed (CI=true: .ci/run installs it)")
        pytest.skip("mosquitto is not installed")
    port = _free_port()
    text = conf_text.replace("listener 1883", f"listener {port} 127.0.0.1")
    text = text.replace("persistence_location /mosquitto/data/", f"persistence_location {tmp}/")
    conf = tmp / "mosquitto.conf"
    conf.write_text(text)
    with subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT) as proc:
        try:
            end = time.monotonic() + 10
            while time.monotonic() < end:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
                    time.sleep(0.05)
            yield port
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
def campo_broker(tmp_path: Path) -> Iterator[int]:
    yield from _broker(tmp_path, CONF.read_text())


@pytest.fixture
def default_broker(tmp_path: Path) -> Iterator[int]:
    yield from _broker(tmp_path, "listener 1883\nallow_anonymous true\n")


def _client(port: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    c.connect("127.0.0.1", port)
    return c


def _close(c: mqtt.Client) -> None:
    """Disconnect and wait until paho has closed the socket, then stop its thread."""
    gone = threading.Event()
    c.on_disconnect = lambda *a: gone.set()
    c.disconnect()
    gone.wait(5)
    c.loop_stop()


def slow_subscriber_receives(port: int) -> int:
    """Subscribe at QoS 1, stop reading, publish a burst, read again; count what arrived.

    The subscriber runs paho's loop by hand in this thread, so "stop reading" is just not
    calling it.
    """
    got: list[bytes] = []
    subscribed = threading.Event()
    sub = _client(port)
    sub.on_message = lambda c, u, m: got.append(m.payload)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.subscribe("burst/#", 1)
    end = time.monotonic() + 5
    while not subscribed.is_set() and time.monotonic() < end:
        sub.loop(0.05)
    assert subscribed.is_set()
    pub = _client(port)
    pub.loop_start()
    infos = [pub.publish("burst/x", str(i), qos=1) for i in range(BURST)]
    for info in infos:
        info.wait_for_publish(10)
    _close(pub)
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 1.0:
        sub.loop(0.05)
        if len(got) != last:
            last, stable_since = len(got), time.monotonic()
    sub.disconnect()
    sub.loop(0.1)
    return len(got)


def test_campo_config_keeps_a_slow_subscriber_whole(campo_broker: int) -> None:
    assert slow_subscriber_receives(campo_broker) == BURST


def test_default_limits_lose_messages(default_broker: int) -> None:
    assert slow_subscriber_receives(default_broker) < BURST
