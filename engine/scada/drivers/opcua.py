"""OPC-UA driver (asyncua): subscriptions by default, polling as a fallback.

A supervisor task owns the client. It connects, resolves namespace URIs to indexes (they may
change when the server restarts), creates one subscription per scan period with
handler-style monitored items (the iterator style drops changes when its queue fills), and
then watches two things: the connection state, and the time since the server last published
on each subscription (data or keep-alive). When a subscription has been silent for longer than
its stale timeout, derived from the revised publishing interval and keep-alive count, every
tag of the device goes BAD, the client is thrown away and a new one connects and subscribes
again, with exponential back-off. :meth:`OpcUaDriver.read` answers from the values the
subscriptions delivered; in ``mode="poll"`` it reads the nodes instead.

Addresses are node id strings (``ns=2;s=X``, ``nsu=urn:x;s=X``, ``s=X`` in the driver's
default namespace, ``i=2258``), objects with ``identifier``, ``kind``, ``namespace_index``
and ``namespace_uri`` attributes (:class:`metamodel.tags.OpcUaAddress`), or an
:class:`OpcUaPoint` wrapping either with the tag's scan period. The runtime builds drivers
and points with the module-level :func:`create` and :func:`point`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import DataChangeNotif, Subscription
from asyncua.crypto import security_policies
from asyncua.ua.uaerrors import UaStatusCodeError

from ..reasons import cause, offline
from ..types import DeviceUnavailable, PointRef, Quality, Reading, Value, WriteFailed

if TYPE_CHECKING:
    from metamodel.tags import Device, Tag

log = logging.getLogger(__name__)

Listener = Callable[[str, Reading], None]
T = TypeVar("T")

POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_NSU = re.compile(r"^nsu=(?P<uri>[^;]+);(?P<rest>[isgb]=.+)$")


class OpcUaWriteError(WriteFailed):
    """A write the server refused or that could not be sent; the message says why."""


@dataclass(frozen=True, slots=True)
class OpcUaPoint:
    """A tag's node and the period it is scanned at (its subscription's sampling interval)."""

    node: Any
    period: float | None = None


def create(device: Device, environ: Mapping[str, str] = os.environ) -> OpcUaDriver:
    """A driver for a tag-model device of type ``opcua`` (password from ``password_env``)."""
    from metamodel.tags.spec import OpcUaSpec

    spec = device.spec
    if not isinstance(spec, OpcUaSpec):
        raise TypeError(f"device {device.qualname} is {device.type}, not opcua")
    first, largest = device.reconnect_delays
    password = environ.get(spec.password_env) if spec.password_env else None
    return OpcUaDriver(
        spec.endpoint, namespace=spec.namespace, timeout=max(device.timeout, 1.0),
        reconnect_delay=first, reconnect_delay_max=largest, username=spec.username,
        password=password, security_policy=spec.security_policy,
        security_mode=spec.security_mode, certificate=spec.certificate,
        private_key=spec.private_key, server_certificate=spec.server_certificate,
        name=device.qualname)


def point(tag: Tag) -> PointRef:
    """The point of a tag: its node, sampled at the tag's scan period."""
    return PointRef(tag.path, OpcUaPoint(tag.address, tag.period))


class SessionLost(Exception):
    """The session ended: the connection dropped or a subscription went stale."""


def quality_of(status: ua.StatusCode | None) -> tuple[Quality, str | None]:
    """OPC-UA status code -> quality and, unless good, the status name as the reason."""
    if status is None or status.is_good():
        return Quality.GOOD, None
    if status.is_uncertain():
        return Quality.UNCERTAIN, status.name
    return Quality.BAD, status.name


def reading_of(dv: ua.DataValue) -> Reading:
    """A :class:`Reading` from a data value (value None unless the status is good/uncertain)."""
    quality, reason = quality_of(dv.StatusCode)
    value = dv.Value.Value if dv.Value is not None and quality is not Quality.BAD else None
    return Reading(value, quality, dv.SourceTimestamp or dv.ServerTimestamp, reason)


@dataclass
class _Group:
    """One subscription: the tags scanned at one period."""

    period: float
    tags: set[str] = field(default_factory=set)
    sub: Subscription | None = None
    stale_after: float = 0.0
    created: float = 0.0
    subscribed: set[str] = field(default_factory=set)

    def silent_for(self, now: float) -> float:
        last = self.sub.last_publish_at if self.sub is not None else None
        return now - max(self.created, last or 0.0)


class _Handler:
    """asyncua handler: data changes go to the driver's cache, status changes end the session."""

    def __init__(self, driver: OpcUaDriver, group: _Group) -> None:
        self.driver = driver
        self.group = group

    def datachange_notification(self, node: Any, val: Any, data: DataChangeNotif) -> None:
        dv = data.monitored_item.Value
        if dv is not None:
            reading = reading_of(dv)
            for tag in self.driver._tags_of_node.get(node.nodeid, ()):
                self.driver._store(tag, reading)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        self.driver._lost.set()
        log.warning("opcua %s: subscription status %s", self.driver.name, status.Status.name)


class OpcUaDriver:
    """A connection to one OPC-UA server (implements :class:`engine.scada.types.Driver`)."""

    def __init__(self, endpoint: str, *, namespace: str | None = None,
                 mode: Literal["subscribe", "poll"] = "subscribe", period: float = 1.0,
                 timeout: float = 4.0,
                 reconnect_delay: float = 0.5, reconnect_delay_max: float = 30.0,
                 stale_factor: float = 2.0, username: str | None = None,
                 password: str | None = None, security_policy: str = "None",
                 security_mode: str = "None", certificate: str | None = None,
                 private_key: str | None = None, server_certificate: str | None = None,
                 name: str | None = None) -> None:
        """
        :param namespace: namespace URI of addresses that name none (``s=W1.X``)
        :param period: sampling/publishing interval (s) of points that are no
            :class:`OpcUaPoint` with a period; one subscription per distinct period
        :param stale_factor: a subscription silent for this many keep-alive periods is stale
        """
        if mode not in ("subscribe", "poll"):
            raise ValueError(f"mode must be 'subscribe' or 'poll', got {mode!r}")
        if security_policy != "None" and security_policy not in POLICIES:
            raise ValueError(f"unknown security policy {security_policy!r}; expected None, "
                             + ", ".join(POLICIES))
        self.endpoint = endpoint
        self.name = name or endpoint
        self.namespace = namespace
        self.mode = mode
        self.period = period
        self.timeout = timeout
        self.reconnect_delay = reconnect_delay
        self.reconnect_delay_max = reconnect_delay_max
        self.stale_factor = stale_factor
        self._auth = (username, password)
        self._security = (security_policy, security_mode, certificate, private_key,
                          server_certificate)
        self._points: dict[str, PointRef] = {}
        self._cache: dict[str, Reading] = {}
        self._groups: dict[float, _Group] = {}
        self._nodeids: dict[str, ua.NodeId] = {}
        self._unresolved: set[str] = set()
        self._ns_array: list[str] = []
        self._tags_of_node: dict[ua.NodeId, list[str]] = {}
        self._vtypes: dict[ua.NodeId, ua.VariantType] = {}
        self._listeners: list[Listener] = []
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._down_reason = offline("not connected yet", self.endpoint)
        self._failing = False
        #: sessions established so far (1 after the first connect; tests watch it)
        self.sessions = 0

    # -- Driver protocol ----------------------------------------------------------------
    async def connect(self) -> None:
        """Start the supervisor and wait up to ``timeout`` for a first session.

        Once connected, the driver keeps itself connected: a lost or stale session turns the
        tags BAD and the supervisor reconnects and subscribes again on its own.

        :raises DeviceUnavailable: no session within ``timeout`` (the supervisor keeps
            trying until :meth:`close`)
        """
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._supervise(), name=f"opcua {self.name}")
        with contextlib.suppress(TimeoutError):
            await _within(self.timeout, self._ready.wait())
        if not self._ready.is_set():
            if not self._failing:  # no attempt has failed yet: the server is silent
                raise DeviceUnavailable(offline(f"no session within {self.timeout:g} s",
                                                self.endpoint))
            raise DeviceUnavailable(offline(self._down_reason, self.endpoint))

    async def read(self, points: Sequence[PointRef]) -> Mapping[str, Reading]:
        """Latest values (subscribe mode) or a fresh read of the nodes (poll mode)."""
        self._add(points)
        if self.mode == "poll":
            return await self._poll(points)
        return {p.tag: self._cache.get(p.tag) or self._bad(p.tag) for p in points}

    async def write(self, point: PointRef, value: Value) -> None:
        """Write with the node's own data type, then read it back into the cache.

        :raises DeviceUnavailable: no session
        :raises OpcUaWriteError: unknown node, or a bad status from the server
        """
        self._add([point])
        client = self._client
        if client is not None and self._ready.is_set():
            self._resolve(self._ns_array)
        if client is None or not self._ready.is_set():
            raise DeviceUnavailable(offline(self._down_reason, self.endpoint))
        nodeid = self._nodeids.get(point.tag)
        if nodeid is None:
            why = self._cache.get(point.tag)
            raise OpcUaWriteError(f"opcua {self.name}: cannot write {point.tag}: "
                                  f"{why.reason if why else 'node not resolved'}")
        node = client.get_node(nodeid)
        try:
            vtype = self._vtypes.get(nodeid)
            if vtype is None:
                vtype = await _within(self.timeout, node.read_data_type_as_variant_type())
                self._vtypes[nodeid] = vtype
            variant = ua.Variant(_coerce(value, vtype), vtype)
            await _within(self.timeout, node.write_value(ua.DataValue(variant)))
            dv = await _within(self.timeout, node.read_data_value(raise_on_bad_status=False))
        except UaStatusCodeError as exc:
            raise OpcUaWriteError(f"opcua {self.name}: the server refused {point.tag} = "
                                  f"{value!r}: {ua.StatusCode(exc.code).name}") from None
        except (OSError, TimeoutError, ConnectionError, ValueError, TypeError) as exc:
            raise OpcUaWriteError(f"opcua {self.name}: writing {point.tag} = {value!r} "
                                  f"failed: {exc or type(exc).__name__}") from None
        for tag in self._tags_of_node.get(nodeid, [point.tag]):
            self._store(tag, reading_of(dv))

    async def close(self) -> None:
        """Stop the supervisor and disconnect."""
        task, self._task = self._task, None
        self._closing = True
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=self.timeout)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("opcua %s: supervisor ended with %r", self.name, task.exception())

    # -- extras -------------------------------------------------------------------------
    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(tag, reading)`` for every change a subscription delivers."""
        self._listeners.append(callback)

    @property
    def connected(self) -> bool:
        """True while a session is up and subscribed."""
        return self._ready.is_set()

    def stale_timeouts(self) -> dict[float, float]:
        """Period -> stale timeout (s) of each live subscription."""
        return {p: g.stale_after for p, g in self._groups.items() if g.sub is not None}

    # -- internals ----------------------------------------------------------------------
    def _reason(self, exc: BaseException) -> str:
        """The reason the tags carry after ``exc`` (:mod:`engine.scada.reasons`): a status
        name the server answered, a stale subscription, or ``device offline: <cause>``."""
        if isinstance(exc, UaStatusCodeError):
            return str(ua.StatusCode(exc.code).name)
        text = str(exc)
        if isinstance(exc, SessionLost) and text.startswith("stale"):
            return text
        if isinstance(exc, ValueError) and text:  # a namespace not on the server
            return text
        return offline(text if isinstance(exc, SessionLost) else cause(exc), self.endpoint)

    def _add(self, points: Iterable[PointRef]) -> None:
        new = [p for p in points if p.tag not in self._points]
        for p in new:
            self._points[p.tag] = p
            period = getattr(p.address, "period", None) or self.period
            self._groups.setdefault(period, _Group(period)).tags.add(p.tag)
        if new:
            self._wake.set()

    def _bad(self, tag: str) -> Reading:
        reason = self._down_reason if not self._ready.is_set() else "no value from the server yet"
        return Reading(None, Quality.BAD, None, reason)

    def _store(self, tag: str, reading: Reading) -> None:
        self._cache[tag] = reading
        for cb in self._listeners:
            try:
                cb(tag, reading)
            except Exception:  # a listener must not break the driver
                log.exception("opcua %s: listener failed for %s", self.name, tag)

    def _mark_all_bad(self, reason: str) -> None:
        self._down_reason = reason
        now = Reading(None, Quality.BAD, None, reason)
        for tag in self._points:
            self._store(tag, now)

    async def _supervise(self) -> None:
        delay = self.reconnect_delay
        while not self._closing:
            started = time.monotonic()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure: tags BAD, new client after a delay
                reason = self._reason(exc)
                if not self._failing:
                    # the reason the tags carry is the outage's first: stable while it lasts
                    log.error("opcua %s: connection failed or lost: %s", self.name, reason)
                    self._failing = True
                    self._mark_all_bad(reason)
                else:
                    log.debug("opcua %s: still failing: %s", self.name, reason)
            finally:
                self._ready.clear()
                await self._drop_client()
            if time.monotonic() - started > 10 * self.reconnect_delay:
                delay = self.reconnect_delay  # the session lived a while: start over
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.reconnect_delay_max)

    async def _session(self) -> None:
        client = await self._new_client()
        self._client = client
        await _within(self.timeout * 2, client.connect())
        # asyncua's own stale watchdog would quietly recreate a silent subscription; this
        # driver owns that decision (tags go BAD, new client), so switch the library's off
        client._stale_check_margin = math.inf
        self._lost.clear()
        ns_array = await _within(self.timeout, client.get_namespace_array())
        # namespace indexes may differ after a server restart: resolve every node again
        self._nodeids.clear()
        self._tags_of_node.clear()
        self._unresolved.clear()
        self._vtypes.clear()
        self._ns_array = ns_array
        self._resolve(ns_array)
        for group in self._groups.values():
            group.sub = None
            group.subscribed.clear()
        if self.mode == "subscribe":
            await self._subscribe_all(client)
        self.sessions += 1
        self._ready.set()
        if self._failing:
            log.info("opcua %s: connected again", self.name)
        self._failing = False
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await _within(0.2, self._wake.wait())
            if self._lost.is_set() or client.state is not UaClientState.CONNECTED:
                raise SessionLost("connection lost")
            added = self._wake.is_set()
            self._wake.clear()
            if self.mode == "subscribe":
                if added:
                    self._resolve(ns_array)
                    await self._subscribe_all(client)
                self._check_stale()

    def _check_stale(self) -> None:
        now = time.monotonic()
        for group in self._groups.values():
            silent = group.silent_for(now)
            if group.sub is not None and silent > group.stale_after:
                log.warning("opcua %s: no publish from the server for %.1f s (limit %.1f s)",
                            self.name, silent, group.stale_after)
                raise SessionLost(f"stale: no publish from the server within "
                                  f"{group.stale_after:.1f} s")

    async def _new_client(self) -> Client:
        client = Client(self.endpoint, timeout=self.timeout,
                        watchdog_intervall=max(1.0, self.timeout / 2))
        username, password = self._auth
        if username:
            client.set_user(username)
            client.set_password(password or "")
        policy, mode, cert, key, server_cert = self._security
        if policy != "None":
            await client.set_security(POLICIES[policy], cert or "", key or "",
                                      server_certificate=server_cert,
                                      mode=getattr(ua.MessageSecurityMode, mode))
        return client

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        for group in self._groups.values():
            group.sub = None
        if client is not None:
            with contextlib.suppress(Exception):
                await _within(self.timeout, client.disconnect())

    def _resolve(self, ns_array: list[str]) -> None:
        for tag, point in self._points.items():
            if tag in self._nodeids or tag in self._unresolved:
                continue
            try:
                nodeid = self._node_id(point.address, ns_array)
            except ValueError as exc:
                self._unresolved.add(tag)
                self._store(tag, Reading(None, Quality.BAD, None, str(exc)))
                continue
            self._nodeids[tag] = nodeid
            self._tags_of_node.setdefault(nodeid, []).append(tag)

    def _node_id(self, address: Any, ns_array: list[str]) -> ua.NodeId:
        if isinstance(address, OpcUaPoint):
            address = address.node
        if isinstance(address, str):
            m = _NSU.match(address.strip())
            uri, rest = (m["uri"], m["rest"]) if m else (None, address.strip())
            if uri is None and not rest.startswith("ns=") and self.namespace:
                uri = self.namespace
            text = rest if uri is None else f"ns={_index(uri, ns_array)};{rest}"
            try:
                return ua.NodeId.from_string(text)
            except Exception:
                raise ValueError(f"'{address}' is not an OPC-UA node id") from None
        uri = getattr(address, "namespace_uri", None)
        index = getattr(address, "namespace_index", None)
        if uri is not None:
            index = _index(uri, ns_array)
        elif index is None and self.namespace:
            index = _index(self.namespace, ns_array)
        text = f"ns={index or 0};{address.kind}={address.identifier}"
        return ua.NodeId.from_string(text)

    async def _subscribe_all(self, client: Client) -> None:
        for group in self._groups.values():
            todo = [t for t in sorted(group.tags) if t in self._nodeids
                    and t not in group.subscribed]
            if not todo:
                continue
            if group.sub is None:
                await self._create_subscription(client, group)
            assert group.sub is not None
            nodes = [client.get_node(self._nodeids[t]) for t in todo]
            results = await _within(self.timeout, group.sub.subscribe_data_change(
                nodes, sampling_interval=ua.Double(group.period * 1000)))
            for tag, result in zip(todo, results, strict=True):
                group.subscribed.add(tag)
                if isinstance(result, ua.StatusCode):
                    self._store(tag, Reading(None, Quality.BAD, None, result.name))

    async def _create_subscription(self, client: Client, group: _Group) -> None:
        ms = group.period * 1000
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=ms, RequestedLifetimeCount=10_000,
            RequestedMaxKeepAliveCount=max(3, math.ceil(1000 / ms)),
            MaxNotificationsPerPublish=10_000, PublishingEnabled=True, Priority=0)
        group.sub = await _within(self.timeout,
                                  client.create_subscription(params, _Handler(self, group)))
        revised = group.sub.parameters
        keepalive_s = (revised.RequestedPublishingInterval / 1000
                       * revised.RequestedMaxKeepAliveCount)
        group.stale_after = keepalive_s * self.stale_factor + group.period
        group.created = time.monotonic()

    async def _poll(self, points: Sequence[PointRef]) -> dict[str, Reading]:
        client = self._client
        if client is None or not self._ready.is_set():
            return {p.tag: self._bad(p.tag) for p in points}
        self._resolve(self._ns_array)
        known = [p.tag for p in points if p.tag in self._nodeids]
        out = {p.tag: self._cache.get(p.tag) or self._bad(p.tag) for p in points}
        if not known:
            return out
        try:
            values = await _within(self.timeout, client.read_attributes(
                [client.get_node(self._nodeids[t]) for t in known]))
        except Exception as exc:  # the supervisor notices a dead connection on its own
            reason = self._reason(exc)
            return {p.tag: Reading(None, Quality.BAD, None, reason) for p in points}
        for tag, dv in zip(known, values, strict=True):
            out[tag] = reading_of(dv)
            self._cache[tag] = out[tag]
        return out


async def _within(seconds: float, aw: Awaitable[T]) -> T:
    """``await aw`` with a deadline (asyncio.timeout: no lost cancellations, unlike wait_for)."""
    async with asyncio.timeout(seconds):
        return await aw


def _index(uri: str, ns_array: list[str]) -> int:
    try:
        return ns_array.index(uri)
    except ValueError:
        raise ValueError(f"namespace '{uri}' is not on the server") from None


def _coerce(value: Value, vtype: ua.VariantType) -> Any:
    if vtype == ua.VariantType.Boolean:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "on", "yes")
        return bool(value)
    if vtype in (ua.VariantType.Float, ua.VariantType.Double):
        return float(value)  # type: ignore[arg-type]
    if vtype.name.startswith(("Int", "UInt", "SByte", "Byte")) and vtype.name != "ByteString":
        number = float(value)  # type: ignore[arg-type]
        if number != int(number):
            raise ValueError(f"{value!r} is not a whole number ({vtype.name})")
        return int(number)
    if vtype == ua.VariantType.String:
        return str(value)
    return value
