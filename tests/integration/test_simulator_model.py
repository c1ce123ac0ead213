"""The simulator's physics, stepped by hand (no servers, no clock)."""

from __future__ import annotations

import pytest

from engine.scada.sim.model import Fault, PadModel, PhysicsConfig, TripCause

QUIET = PhysicsConfig(noise=0.0)


def run(pad: PadModel, seconds: float, dt: float = 0.5) -> None:
    for _ in range(int(seconds / dt)):
        pad.step(dt)


def test_every_unit_starts_in_plausible_ranges() -> None:
    pad = PadModel(8, physics=PhysicsConfig())
    run(pad, 5)
    for s in pad.snapshots():
        assert s.running and s.trip_cause is TripCause.NONE and s.fault is Fault.NONE
        assert 40 <= s.frequency == s.frequency_setpoint <= 60
        assert 200 <= s.intake_pressure <= 1500, s
        assert 100 <= s.tubing_pressure <= 400 and 50 <= s.casing_pressure <= 300, s
        assert 20 <= s.motor_current <= 90 and 90 <= s.motor_temperature <= 150, s
        assert 200 <= s.liquid_rate <= 3000, s
    # the same seed gives the same pad; another seed another one
    def rate(seed: int) -> float:
        return PadModel(2, seed=seed).snapshot(2).liquid_rate

    assert rate(7) == rate(7) and rate(8) != rate(7)


def test_frequency_drives_rate_current_and_drawdown() -> None:
    results = {}
    for hz in (40.0, 50.0, 60.0):
        pad = PadModel(1, physics=QUIET)
        pad.set_setpoint(1, hz)
        run(pad, 600)
        results[hz] = pad.snapshot(1)
    low, mid, high = results[40.0], results[50.0], results[60.0]
    assert low.liquid_rate < mid.liquid_rate < high.liquid_rate
    # roughly linear in frequency: equal steps give equal rate increments
    assert (high.liquid_rate - mid.liquid_rate) == pytest.approx(
        mid.liquid_rate - low.liquid_rate, rel=0.02)
    assert low.motor_current < mid.motor_current < high.motor_current
    assert low.intake_pressure > mid.intake_pressure > high.intake_pressure
    assert low.motor_temperature < high.motor_temperature
    assert low.tubing_pressure < high.tubing_pressure


def test_trip_drops_current_then_rate_and_pip_builds_up() -> None:
    pad = PadModel(1, physics=QUIET)
    before = pad.snapshot(1)
    pad.inject(1, Fault.TRIP)
    s = pad.snapshot(1)
    assert not s.running and s.motor_current == 0 and s.trip_cause is TripCause.OVERLOAD
    run(pad, 120)
    s = pad.snapshot(1)
    assert s.liquid_rate == 0 and s.frequency == 0
    assert s.intake_pressure > before.intake_pressure + 100
    hours = s.run_hours
    pad.command_run(1, True)  # refused while the trip is active
    run(pad, 10)
    assert not pad.snapshot(1).running and pad.snapshot(1).run_hours == hours
    pad.inject(1, Fault.NONE)
    assert not pad.snapshot(1).running  # clearing does not restart by itself
    pad.command_run(1, True)
    run(pad, 120)
    s = pad.snapshot(1)
    assert s.running and s.trip_cause is TripCause.NONE and s.run_hours > hours
    assert s.liquid_rate == pytest.approx(before.liquid_rate, rel=0.01)


def test_manual_stop_reports_cause_manual() -> None:
    pad = PadModel(1, physics=QUIET)
    pad.command_run(1, False)
    s = pad.snapshot(1)
    assert not s.running and not s.run_command and s.trip_cause is TripCause.MANUAL


def test_protective_trips_high_motor_temperature_and_underload() -> None:
    hot = PadModel(1, physics=PhysicsConfig(noise=0.0, max_motor_temp_c=100.0))
    run(hot, 60)
    assert hot.snapshot(1).trip_cause is TripCause.HIGH_MOTOR_TEMP
    gassy = PadModel(1, physics=PhysicsConfig(noise=0.0, underload_trip_s=20.0,
                                              gas_lock_period_s=10.0))
    gassy.inject(1, Fault.GAS_LOCK)
    run(gassy, 300)
    assert gassy.snapshot(1).trip_cause is TripCause.UNDERLOAD


def test_stuck_sensor_freezes_only_the_intake_pressure() -> None:
    pad = PadModel(1, physics=QUIET)
    pad.inject(1, Fault.STUCK_SENSOR)
    frozen = pad.snapshot(1)
    pad.set_setpoint(1, 60)
    run(pad, 300)
    s = pad.snapshot(1)
    assert s.intake_pressure == frozen.intake_pressure
    assert s.liquid_rate > frozen.liquid_rate * 1.1


def test_bad_commands_are_refused_with_clear_errors() -> None:
    pad = PadModel(2)
    with pytest.raises(ValueError, match="frequency setpoint 61.0 Hz is outside 40-60 Hz"):
        pad.set_setpoint(1, 61.0)
    with pytest.raises(ValueError, match="unknown fault 9; expected one of 0 none, 1 trip"):
        pad.inject(1, 9)
    with pytest.raises(KeyError, match="no unit 3; the pad has units 1..2"):
        pad.snapshot(3)
    with pytest.raises(ValueError, match="units must be 1..247"):
        PadModel(0)
