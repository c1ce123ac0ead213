"""The pad as an OPC-UA server: folder ``Pad``, one object per unit, string node ids.

Values are pushed with ``write_attribute_value`` (the fast server-side write that still
notifies subscriptions) only when they changed. Client writes are picked up by a ``PostWrite``
callback and applied to the model; the model's value is written back on the next publish, so
an out-of-range setpoint snaps back to the value the model accepted. A unit with the
comms-loss fault shows ``BadNoCommunication`` on all its variables.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager

from .model import Fault, PadModel, Snapshot
from .ports import ensure_free

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:campo:simulator"
ENDPOINT_PATH = "/campo/sim"


@dataclass(frozen=True, slots=True)
class Variable:
    """One variable of a unit object: its name, type, and how to read it from a snapshot."""

    name: str
    vtype: ua.VariantType
    get: Callable[[Snapshot], Any]
    writable: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable("IntakePressure", ua.VariantType.Double, lambda s: s.intake_pressure),
    Variable("TubingPressure", ua.VariantType.Double, lambda s: s.tubing_pressure),
    Variable("CasingPressure", ua.VariantType.Double, lambda s: s.casing_pressure),
    Variable("MotorCurrent", ua.VariantType.Double, lambda s: s.motor_current),
    Variable("Frequency", ua.VariantType.Double, lambda s: s.frequency),
    Variable("FrequencySetpoint", ua.VariantType.Double, lambda s: s.frequency_setpoint, True),
    Variable("LiquidRate", ua.VariantType.Double, lambda s: s.liquid_rate),
    Variable("MotorTemperature", ua.VariantType.Double, lambda s: s.motor_temperature),
    Variable("Running", ua.VariantType.Boolean, lambda s: s.running),
    Variable("TripCause", ua.VariantType.UInt16, lambda s: int(s.trip_cause)),
    # additions beyond the shared map: run hours, run command and fault injection
    Variable("RunHours", ua.VariantType.Double, lambda s: s.run_hours),
    Variable("RunCommand", ua.VariantType.Boolean, lambda s: s.run_command, True),
    Variable("Fault", ua.VariantType.UInt16, lambda s: int(s.fault), True),
)


class _Users(UserManager):
    """Username/password check; anonymous sessions are refused when users are configured."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = dict(users)

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is not None and self._users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class OpcUaFace:
    """An asyncua server over a :class:`PadModel`."""

    def __init__(self, model: PadModel, host: str = "127.0.0.1",
                 users: Mapping[str, str] | None = None) -> None:
        self.model = model
        self.host = host
        self._users = users
        self._server: Server | None = None
        self._nodes: dict[tuple[int, str], ua.NodeId] = {}
        self._last: dict[tuple[int, str], Any] = {}
        self._by_nodeid: dict[ua.NodeId, tuple[int, str]] = {}
        self._silent: set[int] = set()
        self.namespace_index = 0
        self.port = 0

    @property
    def url(self) -> str:
        """The endpoint URL clients connect to."""
        return f"opc.tcp://{self.host}:{self.port}{ENDPOINT_PATH}"

    async def start(self, port: int = 0) -> None:
        """Build the address space and listen (``port=0`` picks a free port);
        :class:`~engine.scada.sim.ports.PortInUse` when the port is taken."""
        ensure_free("OPC-UA", self.host, port)
        server = Server(user_manager=_Users(self._users) if self._users else None)
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.host}:{port}{ENDPOINT_PATH}")
        server.set_server_name("Campo simulated pad")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if self._users:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        idx = await server.register_namespace(NAMESPACE_URI)
        self.namespace_index = idx
        pad = await server.nodes.objects.add_folder(ua.NodeId("Pad", idx),
                                                    ua.QualifiedName("Pad", idx))
        for snap in self.model.snapshots():
            obj_name = f"W{snap.unit}"
            obj = await pad.add_object(ua.NodeId(obj_name, idx), ua.QualifiedName(obj_name, idx))
            for var in VARIABLES:
                nodeid = ua.NodeId(f"{obj_name}.{var.name}", idx)
                node = await obj.add_variable(nodeid, ua.QualifiedName(var.name, idx),
                                              ua.Variant(var.get(snap), var.vtype))
                if var.writable:
                    await node.set_writable()
                self._nodes[(snap.unit, var.name)] = nodeid
        self._by_nodeid = {nid: key for key, nid in self._nodes.items()}
        server.subscribe_server_callback(CallbackType.PostWrite, self._post_write)
        await server.start()
        self._server = server
        self.port = server.bserver.port if server.bserver is not None else port
        self._last.clear()
        self._silent.clear()
        log.info("simulator: OPC-UA on %s (namespace %s = %s)", self.url, idx, NAMESPACE_URI)

    async def stop(self) -> None:
        """Stop listening and drop every session."""
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()

    async def stall_subscriptions(self) -> int:
        """Stop publishing on every existing subscription (sessions stay up): a hung server.

        Clients see neither data nor keep-alives, only their own stale-data watchdog can
        notice; subscriptions created afterwards work normally. Returns how many stalled.
        """
        if self._server is None:
            return 0
        subs = list(self._server.iserver.subscription_service.subscriptions.values())
        for sub in subs:
            await sub.stop()
        return len(subs)

    async def publish(self) -> None:
        """Write every value that changed since the last publish."""
        server = self._server
        if server is None:
            return
        now = dt.datetime.now(dt.UTC)
        for snap in self.model.snapshots():
            if snap.fault is Fault.COMMS_LOSS:
                if snap.unit not in self._silent:
                    self._silent.add(snap.unit)
                    bad = ua.StatusCode(ua.StatusCodes.BadNoCommunication)
                    for var in VARIABLES:
                        key = (snap.unit, var.name)
                        self._last.pop(key, None)
                        await server.write_attribute_value(
                            self._nodes[key], ua.DataValue(StatusCode=bad, SourceTimestamp=now,
                                                           ServerTimestamp=now))
                continue
            self._silent.discard(snap.unit)
            for var in VARIABLES:
                key = (snap.unit, var.name)
                value = var.get(snap)
                if self._last.get(key, _MISSING) == value:
                    continue
                self._last[key] = value
                await server.write_attribute_value(
                    self._nodes[key], ua.DataValue(ua.Variant(value, var.vtype),
                                                   SourceTimestamp=snap.ts, ServerTimestamp=now))

    async def _post_write(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        """Apply client writes of the writable variables to the model."""
        for wv, status in zip(event.request_params.NodesToWrite, event.response_params,
                              strict=False):
            key = self._by_nodeid.get(wv.NodeId)
            if key is None or wv.AttributeId != ua.AttributeIds.Value or not status.is_good():
                continue
            unit, name = key
            value = wv.Value.Value.Value if wv.Value and wv.Value.Value else None
            self._last.pop(key, None)  # republish what the model accepted
            if value is None:
                continue
            try:
                if name == "FrequencySetpoint":
                    self.model.set_setpoint(unit, float(value))
                elif name == "RunCommand":
                    self.model.command_run(unit, bool(value))
                elif name == "Fault":
                    self.model.inject(unit, int(value))
            except (TypeError, ValueError) as exc:
                log.info("simulator unit %s: refused an OPC-UA write of %s: %s", unit, name, exc)


_MISSING = object()
