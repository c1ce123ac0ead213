"""Sparkplug bdSeq survives restarts (issue 8 item 18).

Two edge-node processes, one after the other, with the same bdSeq file: the second births
with the next bdSeq. While the second is online, the first one's connection dies without a
DISCONNECT (SIGKILL: the broker publishes its NDEATH will, as a half-open connection's will
arrives late): a host following the node ignores that death, because its bdSeq is not the
current session's, and keeps the values good. The second process's own death still counts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.scada import sparkplug_pb as pb
from engine.scada.drivers.mqtt import MqttDriver, MqttLink
from engine.scada.sparkplug import BDSEQ, BdSeqFile, bd_seq_path
from engine.scada.types import PointRef, Quality
from metamodel.tags import MqttAddress

REPO = Path(__file__).resolve().parents[2]

#: one edge node publishing a.x = <value>; prints its bdSeq once born, then waits to be killed
EDGE = """
import asyncio, datetime as dt, sys
from engine.scada.drivers.mqtt import MqttLink
from engine.scada.sparkplug import SparkplugEdgeNode
from engine.scada import sparkplug_pb as pb
from engine.scada.types import Quality, TagValue

async def main() -> None:
    url, group, node, path, value = sys.argv[1:6]
    edge = SparkplugEdgeNode(MqttLink(url, keepalive=60), group, node,
                             {"a.x": pb.DataType.Double}, bd_seq_file=path)
    edge.publish([TagValue("a.x", float(value), Quality.GOOD, dt.datetime.now(dt.UTC))])
    assert await edge.start(10), "broker not reachable"
    while edge.births == 0:
        await asyncio.sleep(0.01)
    print(edge.bd_seq, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_the_file_counts_on_from_the_last_session(tmp_path: Path) -> None:
    store = BdSeqFile(bd_seq_path(tmp_path, "field_a", "pad7"))
    assert store.path == tmp_path / "sparkplug" / "field_a.pad7.bdseq"
    assert store.last() is None
    assert [store.next() for _ in range(3)] == [0, 1, 2]
    assert BdSeqFile(store.path).next() == 3  # another process, the same file
    store.path.write_text("255\n")
    assert store.next() == 0  # wraps like every Sparkplug sequence
    store.path.write_text("garbage")
    assert store.next() == 0 and store.path.read_text() == "0\n"
    assert [p.name for p in store.path.parent.iterdir()] == ["field_a.pad7.bdseq"]  # no temp


@pytest.fixture
def edges(mqtt_url: str) -> Iterator[Callable[..., tuple[subprocess.Popen[str], int]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(group: str, node: str, path: Path, value: float) -> tuple[subprocess.Popen[str],
                                                                          int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", EDGE, mqtt_url, group, node, str(path), str(value)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until born (or the process died)
        assert line.strip().isdigit(), proc.stderr.read() if proc.stderr else line
        return proc, int(line)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


@pytest.mark.integration
async def test_a_late_will_of_the_previous_process_is_ignored(
        mqtt_url: str, tmp_path: Path,
        edges: Callable[..., tuple[subprocess.Popen[str], int]]) -> None:
    group, node = f"campo-test-{uuid.uuid4().hex[:8]}", "pad7"
    path = bd_seq_path(tmp_path, group, node)
    host = MqttDriver(MqttLink(mqtt_url), rebirth_interval=0.2)
    point = PointRef("x", MqttAddress(metric="x", group=group, edge_node=node, device="a"))
    deaths: list[int] = []  # bdSeq of every NDEATH the broker delivers
    watcher = MqttLink(mqtt_url)
    watcher.subscribe(f"spBv1.0/{group}/NDEATH/{node}", lambda _t, payload, _r: deaths.extend(
        m.value for m in pb.decode_payload(payload).metrics if m.name == BDSEQ))
    await host.connect()
    assert await watcher.connect()
    try:
        await host.read([point])  # follow the node
        first, bd1 = edges(group, node, path, 1.0)
        await until(lambda: host._cache.get("x") is not None and host._cache["x"].value == 1.0)
        second, bd2 = edges(group, node, path, 2.0)  # a restart: the first is still half-open
        assert bd2 == (bd1 + 1) % 256, (bd1, bd2)
        assert int(path.read_text()) == bd2
        await until(lambda: host._cache["x"].value == 2.0)  # the host follows the new birth
        assert host.host.online(group, node)

        first.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker sends its NDEATH will
        first.wait(10)
        await until(lambda: deaths == [bd1])  # the late will, with the old session's bdSeq
        await asyncio.sleep(0.3)  # the host's own copy of it has been handled too
        assert host.host.online(group, node), "the old session's death took the node offline"
        got = (await host.read([point]))["x"]
        assert (got.value, got.quality) == (2.0, Quality.GOOD)

        second.send_signal(signal.SIGKILL)  # the current session's death is not ignored
        second.wait(10)
        await until(lambda: not host.host.online(group, node))
        assert deaths == [bd1, bd2]
        got = (await host.read([point]))["x"]
        assert got.quality is Quality.BAD and got.reason == "edge node offline (NDEATH)"
    finally:
        await host.close()
        await watcher.close()
