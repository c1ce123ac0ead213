"""The physics of the simulated pad: units driven by a variable-speed pump, stepped in time.

Each unit is an electric submersible pump lifting liquid from a reservoir (the sample site
calls them ESP wells; the model itself is generic). The frequency setpoint (40-60 Hz) drives
the pump: liquid rate rises roughly linearly with frequency, intake pressure falls as the
reservoir is drawn down (first-order lag towards ``static - rate / PI``), current rises with
frequency squared and with hydraulic load, motor temperature follows current. Faults change
what the model does (trip, gas lock) or only what the protocol faces show (stuck sensor,
comms loss, see :class:`Fault`).

The model is protocol-free and thread-safe (one lock per pad), so the Modbus and OPC-UA
faces, the asyncio tick task and a test thread can all use it.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import random
import threading
from dataclasses import dataclass, field

#: frequency setpoint limits (Hz), as a VSD would enforce them
MIN_SETPOINT_HZ = 40.0
MAX_SETPOINT_HZ = 60.0


class Fault(enum.IntEnum):
    """Injectable faults; the number is what the fault register holds."""

    NONE = 0
    #: the unit trips (overload) and cannot be restarted until the fault is cleared
    TRIP = 1
    #: the intake pressure sensor freezes at its last value (quality stays good)
    STUCK_SENSOR = 2
    #: the unit stops answering (Modbus: no response; OPC-UA: BadNoCommunication)
    COMMS_LOSS = 3
    #: gas in the pump: current and rate oscillate around a lower mean
    GAS_LOCK = 4


class TripCause(enum.IntEnum):
    """Why a unit stopped, as the trip cause register reports it."""

    NONE = 0
    OVERLOAD = 1
    UNDERLOAD = 2
    PHASE_IMBALANCE = 3
    HIGH_MOTOR_TEMP = 4
    MANUAL = 5


@dataclass(frozen=True, slots=True)
class PhysicsConfig:
    """Time constants of the model; tests speed them up."""

    #: VSD acceleration towards the setpoint (Hz per second)
    ramp_hz_per_s: float = 1.0
    #: lag of the liquid rate behind the pump frequency (s)
    rate_tau_s: float = 5.0
    #: drawdown lag of the intake pressure while pumping (s)
    drawdown_tau_s: float = 30.0
    #: build-up lag of the intake pressure after a stop (s), slower than drawdown
    buildup_tau_s: float = 120.0
    thermal_tau_s: float = 60.0
    #: period of the gas-lock oscillation (s)
    gas_lock_period_s: float = 8.0
    #: low load for this long trips the unit on underload (s)
    underload_trip_s: float = 600.0
    #: motor temperature that trips the unit (degC)
    max_motor_temp_c: float = 150.0
    #: scale of the measurement noise (0 turns it off)
    noise: float = 1.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a unit's instruments report at one instant (engineering units)."""

    unit: int
    intake_pressure: float  # psi
    tubing_pressure: float  # psi
    casing_pressure: float  # psi
    motor_current: float  # A
    frequency: float  # Hz, actual
    frequency_setpoint: float  # Hz
    liquid_rate: float  # bbl/d
    motor_temperature: float  # degC
    run_hours: float  # h
    trip_cause: TripCause
    running: bool
    run_command: bool
    fault: Fault
    ts: dt.datetime


@dataclass
class UnitModel:
    """One pumped unit: parameters drawn once from a seeded generator, then state."""

    unit: int
    rng: random.Random
    static_pressure: float = 1400.0  # psi, reservoir pressure at the pump intake
    productivity_index: float = 2.0  # bbl/d per psi of drawdown
    rate_at_60hz: float = 1800.0  # bbl/d
    current_at_60hz: float = 70.0  # A
    current_no_load: float = 12.0  # A
    line_pressure: float = 110.0  # psi, flowline back-pressure
    casing_base: float = 60.0  # psi
    reservoir_temp: float = 88.0  # degC
    setpoint: float = 50.0
    # state
    frequency: float = 0.0
    rate: float = 0.0
    pip: float = 0.0
    motor_temp: float = 0.0
    run_hours: float = 0.0
    running: bool = True
    run_command: bool = True
    trip_cause: TripCause = TripCause.NONE
    fault: Fault = Fault.NONE
    load: float = 1.0
    mean_load: float = 1.0
    underload_s: float = 0.0
    clock_s: float = 0.0
    reported: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, unit: int, seed: int) -> UnitModel:
        """A unit with plausible, reproducible parameters, running at steady state."""
        rng = random.Random(seed * 1009 + unit)
        m = cls(
            unit=unit,
            rng=rng,
            static_pressure=round(rng.uniform(1250, 1500), 1),
            productivity_index=round(rng.uniform(1.6, 2.6), 2),
            rate_at_60hz=round(rng.uniform(1500, 2200), 0),
            current_at_60hz=round(rng.uniform(62, 80), 1),
            run_hours=float(rng.randint(200, 9000)),
            setpoint=(45.0, 50.0, 55.0)[(unit - 1) % 3],
        )
        m.frequency = m.setpoint
        m.rate = m._pump_rate()
        m.pip = m._pip_target()
        m.motor_temp = m._temp_target(m._current())
        m._report()
        return m

    # -- commands (called under the pad lock) ---------------------------------------
    def set_setpoint(self, hz: float) -> None:
        """Change the frequency setpoint; outside 40-60 Hz is a ValueError."""
        if not MIN_SETPOINT_HZ <= hz <= MAX_SETPOINT_HZ:
            raise ValueError(f"frequency setpoint {hz} Hz is outside "
                             f"{MIN_SETPOINT_HZ:g}-{MAX_SETPOINT_HZ:g} Hz")
        self.setpoint = float(hz)

    def command_run(self, run: bool) -> None:
        """Start (True) or stop (False) the unit; a start is refused while a trip is active."""
        self.run_command = run
        if run and not self.running and self.fault is not Fault.TRIP:
            self.running = True
            self.trip_cause = TripCause.NONE
        elif not run and self.running:
            self._stop(TripCause.MANUAL)

    def inject(self, fault: Fault, cause: TripCause = TripCause.OVERLOAD) -> None:
        """Make ``fault`` active (``Fault.NONE`` clears); a trip stops the unit at once."""
        self.fault = Fault(fault)
        if self.fault is Fault.TRIP and self.running:
            self._stop(cause)

    def _stop(self, cause: TripCause) -> None:
        self.running = False
        self.trip_cause = cause
        self.frequency = 0.0
        self.reported["current"] = 0.0  # the motor current drops at once

    # -- physics ------------------------------------------------------------------
    def _pump_rate(self) -> float:
        # a centrifugal pump lifts nothing below ~20 Hz, then roughly linearly
        return self.rate_at_60hz * max(0.0, (self.frequency - 20.0) / 40.0) * self.load

    def _pip_target(self) -> float:
        return max(50.0, self.static_pressure - self.rate / self.productivity_index)

    def _current(self) -> float:
        if self.frequency < 0.5:
            return 0.0
        frac = self.frequency / 60.0
        return self.current_no_load + (self.current_at_60hz - self.current_no_load) \
            * frac * frac * self.load

    def _temp_target(self, current: float) -> float:
        heat = 40.0 * (current / self.current_at_60hz) ** 2
        poor_cooling = 15.0 if self.fault is Fault.GAS_LOCK and self.running else 0.0
        return self.reservoir_temp + heat + poor_cooling

    def step(self, dt_s: float, cfg: PhysicsConfig) -> None:
        """Advance the unit by ``dt_s`` seconds of simulated time."""
        if dt_s <= 0:
            return
        self.clock_s += dt_s
        target_hz = self.setpoint if self.running else 0.0
        dhz = cfg.ramp_hz_per_s * dt_s
        self.frequency += max(-dhz, min(dhz, target_hz - self.frequency))
        if self.fault is Fault.GAS_LOCK and self.running:
            phase = 2 * math.pi * self.clock_s / cfg.gas_lock_period_s
            self.load = 0.55 + 0.35 * math.sin(phase)
        else:
            self.load = 1.0
        self.rate += (self._pump_rate() - self.rate) * _lag(dt_s, cfg.rate_tau_s)
        # the underload relay sees the mean load, not the oscillation
        self.mean_load += (self.load - self.mean_load) * _lag(dt_s, cfg.gas_lock_period_s)
        if self.mean_load < 0.7 and self.running:
            self.underload_s += dt_s
        else:
            self.underload_s = 0.0
        tau = cfg.drawdown_tau_s if self.running else cfg.buildup_tau_s
        self.pip += (self._pip_target() - self.pip) * _lag(dt_s, tau)
        current = self._current()
        self.motor_temp += (self._temp_target(current) - self.motor_temp) \
            * _lag(dt_s, cfg.thermal_tau_s)
        if self.running:
            self.run_hours += dt_s / 3600.0
            if self.motor_temp > cfg.max_motor_temp_c:
                self._stop(TripCause.HIGH_MOTOR_TEMP)
            elif self.underload_s > cfg.underload_trip_s:
                self._stop(TripCause.UNDERLOAD)
        self._report(cfg.noise)

    def _report(self, noise: float = 0.0) -> None:
        def jitter(value: float, sigma: float) -> float:
            return value + self.rng.gauss(0.0, sigma * noise) if noise else value

        current = self._current()
        pip = jitter(self.pip, 2.0)
        if self.fault is Fault.STUCK_SENSOR and "pip" in self.reported:
            pip = self.reported["pip"]
        self.reported = {
            "pip": pip,
            "thp": jitter(self.line_pressure + self.rate * 0.09, 1.0),
            "chp": jitter(self.casing_base + 0.05 * (self.static_pressure - self.pip), 0.8),
            "current": max(0.0, jitter(current, 0.3)) if current else 0.0,
            "rate": max(0.0, jitter(self.rate, 4.0)) if self.rate > 1.0 else 0.0,
            "temp": jitter(self.motor_temp, 0.1),
        }

    def snapshot(self, now: dt.datetime) -> Snapshot:
        """The instruments' current readings."""
        r = self.reported
        return Snapshot(
            unit=self.unit, intake_pressure=r["pip"], tubing_pressure=r["thp"],
            casing_pressure=r["chp"], motor_current=r["current"], frequency=self.frequency,
            frequency_setpoint=self.setpoint, liquid_rate=r["rate"],
            motor_temperature=r["temp"], run_hours=self.run_hours,
            trip_cause=self.trip_cause, running=self.running, run_command=self.run_command,
            fault=self.fault, ts=now,
        )


def _lag(dt_s: float, tau_s: float) -> float:
    """Fraction of the gap a first-order lag closes in ``dt_s``."""
    return 1.0 - math.exp(-dt_s / tau_s) if tau_s > 0 else 1.0


class PadModel:
    """Several units stepped together; every method is safe to call from any thread."""

    def __init__(self, units: int = 4, *, seed: int = 7,
                 physics: PhysicsConfig | None = None) -> None:
        if not 1 <= units <= 247:
            raise ValueError(f"units must be 1..247 (one Modbus device id each), got {units}")
        self.physics = physics or PhysicsConfig()
        self._lock = threading.Lock()
        self._units = {n: UnitModel.create(n, seed) for n in range(1, units + 1)}
        self.paused = False

    @property
    def unit_ids(self) -> list[int]:
        """The unit numbers, 1..N."""
        return list(self._units)

    def _unit(self, unit: int) -> UnitModel:
        try:
            return self._units[unit]
        except KeyError:
            raise KeyError(f"no unit {unit}; the pad has units 1..{len(self._units)}") from None

    def step(self, dt_s: float) -> None:
        """Advance every unit by ``dt_s`` simulated seconds (no-op while paused)."""
        if self.paused:
            return
        with self._lock:
            for u in self._units.values():
                u.step(dt_s, self.physics)

    def snapshot(self, unit: int) -> Snapshot:
        """One unit's readings now."""
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            return self._unit(unit).snapshot(now)

    def snapshots(self) -> list[Snapshot]:
        """Every unit's readings, taken under one lock (a consistent instant)."""
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            return [u.snapshot(now) for u in self._units.values()]

    def set_setpoint(self, unit: int, hz: float) -> None:
        """Write the frequency setpoint (ValueError outside 40-60 Hz)."""
        with self._lock:
            self._unit(unit).set_setpoint(hz)

    def command_run(self, unit: int, run: bool) -> None:
        """Start or stop a unit."""
        with self._lock:
            self._unit(unit).command_run(run)

    def inject(self, unit: int, fault: Fault | int,
               cause: TripCause = TripCause.OVERLOAD) -> None:
        """Make a fault active on a unit (``Fault.NONE`` or 0 clears it)."""
        try:
            f = Fault(fault)
        except ValueError:
            raise ValueError(f"unknown fault {fault!r}; expected one of "
                             + ", ".join(f"{x.value} {x.name.lower()}" for x in Fault)) from None
        with self._lock:
            self._unit(unit).inject(f, cause)

    def fault(self, unit: int) -> Fault:
        """The fault active on a unit."""
        with self._lock:
            return self._unit(unit).fault
