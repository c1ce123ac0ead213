"""Sparkplug B over MQTT: the host side (consuming edge nodes) and the site as an edge node.

Topics are ``spBv1.0/<group>/<type>/<edge node>[/<device>]``; payloads are encoded by
:mod:`engine.scada.sparkplug_pb`.

:class:`SparkplugHost` follows edge nodes for :class:`~engine.scada.drivers.mqtt.MqttDriver`:
births map names to aliases and data types, data messages must carry the next sequence
number (0..255, wrapping); a gap, an unknown alias or data from a node it has not seen born
make it publish an ``NCMD`` with ``Node Control/Rebirth = true`` (at most once per
``rebirth_interval`` per node). ``NDEATH`` (with the current ``bdSeq``) and ``DDEATH`` turn the
metrics BAD.

:class:`SparkplugEdgeNode` publishes a site's tags: ``NBIRTH`` and one ``DBIRTH`` per device
with aliases derived from the tag paths (stable across restarts), ``NDATA``/``DDATA`` with
what changed, ``NDEATH`` registered as the MQTT will with the session's ``bdSeq``, and
births again when a host asks for a rebirth. With ``bd_seq_file`` (the wiring keeps it in
the data folder) ``bdSeq`` continues across restarts (:class:`BdSeqFile`), as the
specification recommends: a half-open connection of the previous process can still have its
will delivered tens of seconds later, and a host matching deaths to births by ``bdSeq``
must be able to tell that death from the new session's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import sparkplug_pb as pb
from .types import Quality, Reading, TagValue, Value, WriteFailed

if TYPE_CHECKING:
    from metamodel.tags import Tag

    from .drivers.mqtt import MqttLink

log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
BDSEQ = "bdSeq"
#: Sparkplug/OPC quality codes carried in the ``Quality`` metric property
QUALITY_CODES = {Quality.GOOD: 192, Quality.UNCERTAIN: 64, Quality.BAD: 0}

MetricCallback = Callable[[str, str, "str | None", str, Reading], None]


def node_filter(group: str, node: str) -> str:
    """The subscription for every message of one edge node and its devices."""
    return f"{NAMESPACE}/{group}/+/{node}/#"


def now_ms() -> int:
    """Milliseconds since the epoch, as Sparkplug timestamps are."""
    return int(time.time() * 1000)


def _ts(ms: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC) if ms else None


def quality_from_code(code: Any) -> Quality:
    """Quality from an OPC-style code (192 good, 64..127 uncertain, anything else bad)."""
    if isinstance(code, int) and 0 <= code < 256:
        if code & 0xC0 == 0xC0:
            return Quality.GOOD
        if code & 0xC0 == 0x40:
            return Quality.UNCERTAIN
    return Quality.BAD


# --------------------------------------------------------------------------- host side
@dataclass
class _Node:
    online: bool = False
    bd_seq: int | None = None
    seq: int | None = None
    #: (device or None, metric name) -> datatype
    types: dict[tuple[str | None, str], int] = field(default_factory=dict)
    aliases: dict[int, tuple[str | None, str]] = field(default_factory=dict)
    names: dict[tuple[str | None, str], int] = field(default_factory=dict)
    last_rebirth: float = -math.inf


class SparkplugHost:
    """Sparkplug B host-application logic, independent of the MQTT client."""

    def __init__(self, publish: Callable[[str, bytes], None], on_metric: MetricCallback, *,
                 rebirth_interval: float = 2.0) -> None:
        self._publish = publish
        self._on_metric = on_metric
        self.rebirth_interval = rebirth_interval
        self._nodes: dict[tuple[str, str], _Node] = {}
        #: rebirth requests sent, by (group, node) (tests and diagnostics)
        self.rebirths: dict[tuple[str, str], int] = {}

    def watch(self, group: str, node: str) -> None:
        """Follow an edge node (births are not retained: call :meth:`ask_births` once
        subscribed)."""
        self._nodes.setdefault((group, node), _Node())

    def ask_births(self) -> None:
        """Ask every followed node that is not known to be online for a rebirth."""
        for (group, node), state in self._nodes.items():
            if not state.online:
                state.last_rebirth = -math.inf
                self.request_rebirth(group, node, "no birth seen since subscribing")

    def online(self, group: str, node: str) -> bool:
        """True between an edge node's NBIRTH and its NDEATH."""
        state = self._nodes.get((group, node))
        return state is not None and state.online

    def handle(self, topic: str, payload: bytes) -> None:
        """Process one message of a followed edge node."""
        parts = topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
            return
        group, kind, node_id = parts[1], parts[2], parts[3]
        device = parts[4] if len(parts) == 5 else None
        node = self._nodes.get((group, node_id))
        if node is None or kind in ("NCMD", "DCMD", "STATE"):
            return
        try:
            p = pb.decode_payload(payload)
        except pb.DecodeError as exc:
            log.warning("sparkplug %s/%s: undecodable %s: %s", group, node_id, kind, exc)
            return
        if kind == "NBIRTH":
            self._nbirth(group, node_id, node, p)
        elif kind == "NDEATH":
            self._ndeath(group, node_id, node, p)
        elif not node.online:
            self.request_rebirth(group, node_id, f"{kind} from an edge node not seen born")
        else:
            self._check_seq(group, node_id, node, p.seq, kind)
            if kind == "DBIRTH" and device is not None:
                self._dbirth(group, node_id, node, device, p)
            elif kind in ("NDATA", "DDATA"):
                self._data(group, node_id, node, device, p)
            elif kind == "DDEATH" and device is not None:
                self._dead(group, node_id, node, device, "device offline (DDEATH)")

    def request_rebirth(self, group: str, node: str, why: str) -> bool:
        """Publish ``NCMD Node Control/Rebirth`` unless one went out less than
        ``rebirth_interval`` ago; True when sent."""
        state = self._nodes.setdefault((group, node), _Node())
        now = time.monotonic()
        if now - state.last_rebirth < self.rebirth_interval:
            return False
        state.last_rebirth = now
        self.rebirths[(group, node)] = self.rebirths.get((group, node), 0) + 1
        log.info("sparkplug %s/%s: requesting a rebirth (%s)", group, node, why)
        body = pb.Payload(timestamp=now_ms(), metrics=[
            pb.Metric(name=REBIRTH, timestamp=now_ms(), datatype=pb.DataType.Boolean, value=True)])
        self._publish(f"{NAMESPACE}/{group}/NCMD/{node}", pb.encode_payload(body))
        return True

    def command(self, group: str, node: str, device: str | None, metric: str,
                value: Value) -> None:
        """Write a metric: a DCMD (or NCMD) with the type the birth declared."""
        state = self._nodes.get((group, node))
        dtype = state.types.get((device, metric)) if state else None
        if dtype is None:
            raise WriteFailed(f"sparkplug {group}/{node}: metric {metric!r} of "
                              f"{device or 'the node'} has not been born; cannot write it")
        body = pb.Payload(timestamp=now_ms(), metrics=[
            pb.Metric(name=metric, timestamp=now_ms(), datatype=dtype, value=value)])
        where = f"DCMD/{node}/{device}" if device else f"NCMD/{node}"
        self._publish(f"{NAMESPACE}/{group}/{where}", pb.encode_payload(body))

    # -- message kinds ------------------------------------------------------------------
    def _nbirth(self, group: str, node_id: str, node: _Node, p: pb.Payload) -> None:
        node.online, node.seq = True, p.seq
        node.types.clear()
        node.aliases.clear()
        node.names.clear()
        node.last_rebirth = -math.inf
        for m in p.metrics:
            if m.name == BDSEQ:
                node.bd_seq = m.value
        self._learn(node, None, p)
        self._emit(group, node_id, None, p.metrics, p, node)

    def _dbirth(self, group: str, node_id: str, node: _Node, device: str,
                p: pb.Payload) -> None:
        self._learn(node, device, p)
        self._emit(group, node_id, device, p.metrics, p, node)

    def _learn(self, node: _Node, device: str | None, p: pb.Payload) -> None:
        for m in p.metrics:
            if m.name is None:
                continue
            if m.datatype is not None:
                node.types[(device, m.name)] = m.datatype
            if m.alias is not None:
                node.aliases[m.alias] = (device, m.name)
                node.names[(device, m.name)] = m.alias

    def _data(self, group: str, node_id: str, node: _Node, device: str | None,
              p: pb.Payload) -> None:
        known = []
        for m in p.metrics:
            key = node.aliases.get(m.alias) if m.name is None and m.alias is not None else (
                (device, m.name) if m.name is not None else None)
            if key is None or key not in node.types:
                self.request_rebirth(group, node_id, f"unknown metric alias {m.alias}")
                continue
            m.name = key[1]
            if m.datatype is None:
                m.datatype = node.types[key]
                m.value = None if m.is_null else pb.typed(m.value, m.datatype)
            known.append(m)
        self._emit(group, node_id, device, known, p, node)

    def _ndeath(self, group: str, node_id: str, node: _Node, p: pb.Payload) -> None:
        bd = next((m.value for m in p.metrics if m.name == BDSEQ), None)
        if node.bd_seq is not None and bd is not None and bd != node.bd_seq:
            log.info("sparkplug %s/%s: ignoring the NDEATH of an older session (bdSeq %s, "
                     "current %s)", group, node_id, bd, node.bd_seq)
            return
        node.online = False
        for device in {d for d, _ in node.types}:
            self._dead(group, node_id, node, device, "edge node offline (NDEATH)")

    def _dead(self, group: str, node_id: str, node: _Node, device: str | None,
              reason: str) -> None:
        bad = Reading(None, Quality.BAD, dt.datetime.now(dt.UTC), reason)
        for d, name in list(node.types):
            if d == device and name not in (BDSEQ, REBIRTH):
                self._on_metric(group, node_id, d, name, bad)

    def _check_seq(self, group: str, node_id: str, node: _Node, seq: int | None,
                   kind: str) -> None:
        expected = None if node.seq is None else (node.seq + 1) % 256
        if seq is not None:
            node.seq = seq
        if expected is not None and seq != expected:
            self.request_rebirth(group, node_id, f"sequence gap: {kind} has seq {seq}, "
                                 f"expected {expected}")

    def _emit(self, group: str, node_id: str, device: str | None,
              metrics: Iterable[pb.Metric], p: pb.Payload, node: _Node) -> None:
        for m in metrics:
            if m.name is None or m.name in (BDSEQ, REBIRTH) or m.is_historical:
                continue
            quality, reason = Quality.GOOD, None
            code = m.properties.get("Quality")
            if code is not None:
                quality = quality_from_code(code.value)
                reason = None if quality is Quality.GOOD else f"quality {code.value} at the edge"
            if m.is_null or m.value is None:
                quality = min(quality, Quality.UNCERTAIN)
                reason = reason or "null value"
            value = None if quality is Quality.BAD else m.value
            self._on_metric(group, node_id, device, m.name,
                            Reading(value, quality, _ts(m.timestamp or p.timestamp), reason))


# --------------------------------------------------------------------------- edge node
def alias_for(path: str) -> int:
    """A stable alias for a tag path (53 bits of BLAKE2b, safe in JSON numbers)."""
    digest = hashlib.blake2b(path.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 53) - 1)


def datatypes_from(tags: Iterable[Tag]) -> dict[str, pb.DataType]:
    """Sparkplug data types for tags of a tag model (engineering values: scaled -> Double)."""
    out: dict[str, pb.DataType] = {}
    for t in tags:
        kind = t.data_type
        if kind == "bool":
            out[t.path] = pb.DataType.Boolean
        elif kind == "string":
            out[t.path] = pb.DataType.String
        elif kind and kind.startswith(("int", "uint")) and t.scaling is None:
            out[t.path] = pb.DataType.UInt64 if kind == "uint64" else pb.DataType.Int64
        else:
            out[t.path] = pb.DataType.Double
    return out


def split_device(path: str) -> tuple[str | None, str]:
    """Default tag -> (device, metric): ``pad7.w1.pip`` -> (``pad7.w1``, ``pip``)."""
    device, _, metric = path.rpartition(".")
    return (device or None), metric


class BdSeqFile:
    """The last ``bdSeq`` an edge node used, in a small file replaced atomically.

    :meth:`next` reads the previous value, adds one (0..255, wrapping), writes it (a
    temporary file in the same folder, fsync, rename, fsync of the folder) and returns it.
    A missing file starts at 0; an unreadable one is logged and starts at 0 too (a host
    then sees one ambiguous session at worst, never a crash of the edge node).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def last(self) -> int | None:
        """The value stored, or None when there is none (or it is not a bdSeq)."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("sparkplug: cannot read bdSeq from %s (%s); starting at 0",
                        self.path, exc)
            return None
        if not text.isdigit() or int(text) > 255:
            log.warning("sparkplug: %s holds %r, not a bdSeq (0..255); starting at 0",
                        self.path, text[:20])
            return None
        return int(text)

    def next(self) -> int:
        """The next bdSeq, stored before it is returned."""
        last = self.last()
        value = 0 if last is None else (last + 1) % 256
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(f"{value}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _sync_folder(self.path.parent)  # the rename survives a power cut too
        return value


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # not every file system syncs folders
            os.fsync(fd)
    finally:
        os.close(fd)


def bd_seq_path(folder: str | os.PathLike[str], group: str, node: str) -> Path:
    """Where the wiring keeps an edge node's bdSeq: ``<folder>/sparkplug/<group>.<node>.bdseq``
    (group and node ids hold no ``/``, ``+`` or ``#``)."""
    return Path(folder) / "sparkplug" / f"{group}.{node}.bdseq"


@dataclass
class _Metric:
    tag: str
    device: str | None
    name: str
    alias: int
    datatype: pb.DataType


class SparkplugEdgeNode:
    """Publishes tag values as a Sparkplug B edge node over an :class:`MqttLink`."""

    def __init__(self, link: MqttLink, group: str, node: str,
                 tags: Mapping[str, pb.DataType | int], *,
                 device_of: Callable[[str], tuple[str | None, str]] = split_device,
                 on_command: Callable[[str, Any], None] | None = None, qos: int = 0,
                 bd_seq_file: str | os.PathLike[str] | None = None) -> None:
        for name, what in ((group, "group"), (node, "edge node")):
            if not name or any(c in name for c in "/+#"):
                raise ValueError(f"Sparkplug {what} id {name!r} must be non-empty without / + #")
        self.link = link
        self.group = group
        self.node = node
        self.qos = qos
        self.on_command = on_command
        self._metrics: dict[str, _Metric] = {}
        owners: dict[int, str] = {}
        for tag, dtype in tags.items():
            device, name = device_of(tag)
            alias = alias_for(tag)
            if alias in owners:
                raise ValueError(f"tags {owners[alias]!r} and {tag!r} hash to the same alias")
            owners[alias] = tag
            self._metrics[tag] = _Metric(tag, device, name, alias, pb.DataType(dtype))
        self._by_name = {(m.device, m.name): m for m in self._metrics.values()}
        self._values: dict[str, TagValue] = {}
        self._sent: dict[str, tuple[Value, Quality]] = {}
        #: where bdSeq survives restarts (None: it restarts at 0 with the process)
        self.bd_seq_store = BdSeqFile(bd_seq_file) if bd_seq_file is not None else None
        self.bd_seq = -1
        self._seq = 0
        self.online = False
        #: births published so far (tests and diagnostics)
        self.births = 0
        link.before_connect = self._arm_will
        link.on_connected.append(self._born)
        link.on_disconnected.append(self._lost)
        link.subscribe(f"{NAMESPACE}/{group}/NCMD/{node}", self._on_ncmd, 1)
        link.subscribe(f"{NAMESPACE}/{group}/DCMD/{node}/+", self._on_dcmd, 1)

    @property
    def devices(self) -> list[str]:
        """Device ids, in birth order."""
        return sorted({m.device for m in self._metrics.values() if m.device is not None})

    async def start(self, wait: float = 5.0) -> bool:
        """Connect; births follow on every (re)connect. True when connected within ``wait`` s."""
        return await self.link.connect(wait)

    async def stop(self) -> None:
        """Publish NDEATH and disconnect cleanly."""
        def death() -> None:
            info = self.link.publish(self._topic("NDEATH"), self._death_payload(), qos=1)
            info.wait_for_publish(2.0)
        self.online = False
        await self.link.close(before=death)

    def publish(self, values: Iterable[TagValue]) -> int:
        """Record values; while online publish what changed as NDATA/DDATA. Returns metrics sent."""
        changed: dict[str | None, list[pb.Metric]] = {}
        for tv in values:
            m = self._metrics.get(tv.tag)
            if m is None:
                continue
            self._values[tv.tag] = tv
            if not self.online or self._sent.get(tv.tag) == (tv.value, tv.quality):
                continue
            self._sent[tv.tag] = (tv.value, tv.quality)
            changed.setdefault(m.device, []).append(self._metric(m, tv, birth=False))
        for device, metrics in changed.items():
            kind = "DDATA" if device else "NDATA"
            self._send(kind, device, pb.Payload(timestamp=now_ms(), metrics=metrics,
                                                seq=self._next_seq()))
        return sum(len(v) for v in changed.values())

    # -- births, deaths, commands ------------------------------------------------------
    def _topic(self, kind: str, device: str | None = None) -> str:
        base = f"{NAMESPACE}/{self.group}/{kind}/{self.node}"
        return f"{base}/{device}" if device else base

    def _death_payload(self) -> bytes:
        return pb.encode_payload(pb.Payload(timestamp=now_ms(), metrics=[
            pb.Metric(name=BDSEQ, timestamp=now_ms(), datatype=pb.DataType.Int64,
                      value=max(self.bd_seq, 0))]))

    def _arm_will(self) -> None:
        """paho's thread, before each connection attempt: next bdSeq (stored first when
        persisted), and the NDEATH will carrying it."""
        if self.bd_seq_store is not None:
            try:
                self.bd_seq = self.bd_seq_store.next()
            except OSError as exc:  # a read-only data folder must not stop publishing
                log.error("sparkplug %s/%s: cannot store bdSeq in %s: %s", self.group,
                          self.node, self.bd_seq_store.path, exc)
                self.bd_seq = (self.bd_seq + 1) % 256
        else:
            self.bd_seq = (self.bd_seq + 1) % 256
        self.link.will_set(self._topic("NDEATH"), self._death_payload(), qos=1, retain=False)

    def _born(self) -> None:
        self._seq = 0
        ts = now_ms()
        node_metrics = [
            pb.Metric(name=BDSEQ, timestamp=ts, datatype=pb.DataType.Int64, value=self.bd_seq),
            pb.Metric(name=REBIRTH, timestamp=ts, datatype=pb.DataType.Boolean, value=False)]
        node_metrics += [self._metric(m, self._values.get(m.tag), birth=True)
                         for m in self._metrics.values() if m.device is None]
        self._send("NBIRTH", None, pb.Payload(timestamp=ts, metrics=node_metrics, seq=0))
        for device in self.devices:
            metrics = [self._metric(m, self._values.get(m.tag), birth=True)
                       for m in self._metrics.values() if m.device == device]
            self._send("DBIRTH", device, pb.Payload(timestamp=ts, metrics=metrics,
                                                    seq=self._next_seq()))
        self._sent = {t: (v.value, v.quality) for t, v in self._values.items()}
        self.online = True
        self.births += 1
        log.info("sparkplug %s/%s: born (bdSeq %s, %d device(s), %d metric(s))", self.group,
                 self.node, self.bd_seq, len(self.devices), len(self._metrics))

    def _lost(self, _reason: str) -> None:
        self.online = False

    def _metric(self, m: _Metric, tv: TagValue | None, *, birth: bool) -> pb.Metric:
        value = tv.value if tv is not None and tv.quality is not Quality.BAD else None
        if value is not None and m.datatype in (pb.DataType.Int64, pb.DataType.UInt64):
            value = int(value)
        elif value is not None and m.datatype is pb.DataType.Double:
            value = float(value)
        quality = tv.quality if tv is not None else Quality.BAD
        props = {} if quality is Quality.GOOD else {
            "Quality": pb.PropertyValue(pb.DataType.Int32, QUALITY_CODES[quality])}
        ts = int(tv.ts.timestamp() * 1000) if tv is not None else now_ms()
        return pb.Metric(name=m.name if birth else None, alias=m.alias, timestamp=ts,
                         datatype=m.datatype, value=value, is_null=value is None,
                         properties=props)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % 256
        return self._seq

    def _send(self, kind: str, device: str | None, payload: pb.Payload) -> None:
        self.link.publish(self._topic(kind, device), pb.encode_payload(payload), qos=self.qos)

    def _on_ncmd(self, _topic: str, payload: bytes, _retained: bool) -> None:
        try:
            p = pb.decode_payload(payload)
        except pb.DecodeError as exc:
            log.warning("sparkplug %s/%s: undecodable NCMD: %s", self.group, self.node, exc)
            return
        for m in p.metrics:
            if m.name == REBIRTH and m.value:
                log.info("sparkplug %s/%s: rebirth requested", self.group, self.node)
                if self.link.connected:
                    self._born()
            elif m.name is not None:
                self._command(None, m)

    def _on_dcmd(self, topic: str, payload: bytes, _retained: bool) -> None:
        try:
            p = pb.decode_payload(payload)
        except pb.DecodeError as exc:
            log.warning("sparkplug %s/%s: undecodable DCMD: %s", self.group, self.node, exc)
            return
        device = topic.rsplit("/", 1)[-1]
        for m in p.metrics:
            self._command(device, m)

    def _command(self, device: str | None, m: pb.Metric) -> None:
        target = self._by_name.get((device, m.name or "")) or next(
            (x for x in self._metrics.values() if x.alias == m.alias), None)
        if target is None or self.on_command is None:
            log.info("sparkplug %s/%s: ignoring a command for %s", self.group, self.node,
                     m.name or m.alias)
            return
        try:
            self.on_command(target.tag, pb.typed(m.value, m.datatype or target.datatype))
        except Exception:
            log.exception("sparkplug %s/%s: command for %s failed", self.group, self.node,
                          target.tag)
