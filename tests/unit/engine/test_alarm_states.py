"""The ISA-18.2 state machine, transition by transition (pure functions, no clock)."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.alarms import state as sm
from engine.alarms.state import ActionRefused, AlarmState, State

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def moves(trs: list[sm.Transition]) -> list[tuple[str, str, str]]:
    return [(t.from_state.value, t.to_state.value, t.action) for t in trs]


def raised() -> AlarmState:
    st = AlarmState("a")
    assert moves(sm.evaluate(st, True, at(0))) == [("normal", "unack_active", "raise")]
    return st


def test_raise_ack_clear() -> None:
    st = raised()
    assert st.raised_at == at(0) and st.active
    assert moves(sm.acknowledge(st, at(1), "ana", "seen")) == [
        ("unack_active", "ack_active", "ack")]
    assert moves(sm.evaluate(st, False, at(2))) == [("ack_active", "normal", "clear")]


def test_clear_before_ack_then_ack_and_reraise() -> None:
    st = raised()
    assert moves(sm.evaluate(st, False, at(1))) == [("unack_active", "rtn_unack", "clear")]
    assert moves(sm.evaluate(st, True, at(2))) == [("rtn_unack", "unack_active", "raise")]
    sm.evaluate(st, False, at(3))
    tr = sm.acknowledge(st, at(4), "ana")
    assert moves(tr) == [("rtn_unack", "normal", "ack")] and tr[0].user == "ana"


def test_same_condition_again_is_no_transition() -> None:
    st = raised()
    assert sm.evaluate(st, True, at(1)) == []
    assert sm.evaluate(st, None, at(2)) == []  # undetermined (bad quality): hold
    assert st.state is State.UNACK


def test_on_delay_filters_a_short_excursion_and_raises_a_sustained_one() -> None:
    st = AlarmState("a")
    assert sm.evaluate(st, True, at(0), on_delay=5) == []
    assert st.pending == "on" and st.pending_since == at(0)
    assert sm.evaluate(st, False, at(3), on_delay=5) == []
    assert st.pending is None and st.state is State.NORMAL
    sm.evaluate(st, True, at(10), on_delay=5)
    assert sm.next_due(st, on_delay=5) == at(15)
    assert sm.tick(st, at(14), on_delay=5) == []
    tr = sm.tick(st, at(15.2), on_delay=5)
    assert moves(tr) == [("normal", "unack_active", "raise")] and tr[0].ts == at(15)


def test_a_sample_after_the_delay_ran_out_raises_at_the_delay_end() -> None:
    st = AlarmState("a")
    sm.evaluate(st, True, at(0), on_delay=5)
    tr = sm.evaluate(st, True, at(8), on_delay=5)
    assert moves(tr) == [("normal", "unack_active", "raise")] and tr[0].ts == at(5)


def test_off_delay_holds_the_alarm_until_the_condition_stayed_clear() -> None:
    st = raised()
    sm.acknowledge(st, at(1))
    assert sm.evaluate(st, False, at(2), off_delay=10) == []
    assert sm.evaluate(st, True, at(5), off_delay=10) == []  # came back: pending cancelled
    assert st.pending is None
    sm.evaluate(st, False, at(6), off_delay=10)
    tr = sm.tick(st, at(16), off_delay=10)
    assert moves(tr) == [("ack_active", "normal", "clear")] and tr[0].ts == at(16)


def test_latching_alarm_waits_for_reset() -> None:
    st = AlarmState("a")
    sm.evaluate(st, True, at(0), latch=True)
    assert moves(sm.evaluate(st, False, at(1), latch=True)) == [
        ("unack_active", "latched", "clear")]
    assert not st.acked
    with pytest.raises(ActionRefused):
        sm.unshelve(st, at(2))
    assert moves(sm.acknowledge(st, at(2), "ana")) == [("latched", "latched", "ack")]
    with pytest.raises(ActionRefused):
        sm.acknowledge(st, at(3))
    assert moves(sm.reset(st, at(3), "ana")) == [("latched", "normal", "reset")]


def test_acknowledged_latching_alarm_latches_acknowledged_and_reraises() -> None:
    st = AlarmState("a")
    sm.evaluate(st, True, at(0), latch=True)
    sm.acknowledge(st, at(1))
    assert moves(sm.evaluate(st, False, at(2), latch=True)) == [
        ("ack_active", "latched", "clear")]
    assert st.acked
    assert moves(sm.evaluate(st, True, at(3), latch=True)) == [
        ("latched", "unack_active", "raise")]


def test_reset_of_an_alarm_that_is_not_latched_is_refused() -> None:
    st = raised()
    with pytest.raises(ActionRefused) as info:
        sm.reset(st, at(1))
    assert info.value.status == 409


def test_shelve_hides_and_expiry_returns_to_the_real_state() -> None:
    st = raised()
    tr = sm.shelve(st, at(1), at(61), "sensor being replaced", "jefe")
    assert moves(tr) == [("unack_active", "shelved", "shelve")]
    assert tr[0].comment == "sensor being replaced" and st.shelved_by == "jefe"
    assert sm.evaluate(st, False, at(10)) == []  # cleared underneath: no RTN shown
    assert sm.evaluate(st, True, at(20)) == []   # active again underneath
    assert sm.next_due(st) == at(61)
    tr = sm.tick(st, at(62))
    assert moves(tr) == [("shelved", "unack_active", "shelve_expired")] and tr[0].ts == at(61)
    assert st.shelved_until is None and st.raised_at == at(61)


def test_shelve_expiry_of_a_cleared_alarm_goes_to_normal() -> None:
    st = raised()
    sm.shelve(st, at(1), at(31), "nuisance")
    sm.evaluate(st, False, at(2))
    assert moves(sm.tick(st, at(31))) == [("shelved", "normal", "shelve_expired")]


def test_unshelve_by_hand_and_refusals() -> None:
    st = AlarmState("a")
    with pytest.raises(ActionRefused) as info:
        sm.shelve(st, at(10), at(5), "x")
    assert info.value.status == 422
    sm.shelve(st, at(0), at(100), "x")
    assert moves(sm.unshelve(st, at(1), "ana")) == [("shelved", "normal", "unshelve")]
    with pytest.raises(ActionRefused):
        sm.unshelve(st, at(2))


def test_suppression_by_design_hides_and_restores() -> None:
    st = raised()
    assert moves(sm.suppress(st, True, at(1))) == [("unack_active", "suppressed", "suppress")]
    assert sm.suppress(st, True, at(2)) == []
    assert sm.evaluate(st, False, at(3)) == []  # RTN while suppressed: nothing shown
    assert moves(sm.suppress(st, False, at(4))) == [("suppressed", "normal", "unsuppress")]
    sm.suppress(st, True, at(5))
    sm.evaluate(st, True, at(6))  # raised while suppressed: not annunciated...
    assert st.state is State.SUPPRESSED
    assert moves(sm.suppress(st, False, at(7))) == [("suppressed", "unack_active", "unsuppress")]


def test_suppression_while_shelved_applies_when_the_shelve_ends() -> None:
    st = raised()
    sm.shelve(st, at(1), at(10), "x")
    assert sm.suppress(st, True, at(2)) == []
    assert moves(sm.unshelve(st, at(3))) == [("shelved", "suppressed", "unshelve")]


def test_out_of_service_and_back() -> None:
    st = raised()
    sm.shelve(st, at(1), at(100), "x")
    assert moves(sm.remove_from_service(st, at(2), "tec", "transmitter replaced")) == [
        ("shelved", "out_of_service", "out_of_service")]
    assert st.shelved_until is None
    with pytest.raises(ActionRefused):
        sm.shelve(st, at(3), at(50), "x")
    with pytest.raises(ActionRefused):
        sm.remove_from_service(st, at(3))
    sm.evaluate(st, False, at(4))
    assert moves(sm.return_to_service(st, at(5), "tec")) == [
        ("out_of_service", "normal", "in_service")]
    with pytest.raises(ActionRefused):
        sm.return_to_service(st, at(6))


def test_realarm_reannunciates_an_alarm_that_stays_active() -> None:
    st = raised()
    sm.acknowledge(st, at(5))
    assert sm.next_due(st, realarm=60) == at(60)
    assert sm.tick(st, at(59), realarm=60) == []
    tr = sm.tick(st, at(61), realarm=60)
    assert moves(tr) == [("ack_active", "unack_active", "realarm")] and tr[0].ts == at(60)
    assert moves(sm.tick(st, at(125), realarm=60)) == [("unack_active", "unack_active",
                                                        "realarm")]


def test_nothing_to_acknowledge() -> None:
    st = AlarmState("a")
    with pytest.raises(ActionRefused) as info:
        sm.acknowledge(st, at(0))
    assert info.value.status == 409 and "nothing to acknowledge" in info.value.message


def test_a_restored_pending_delay_fires_only_on_a_fresh_value() -> None:
    st = AlarmState("a")
    sm.evaluate(st, True, at(0), on_delay=60)
    st.fresh = False  # as restored from the store after a restart
    assert sm.tick(st, at(100), on_delay=60) == []  # no value seen since the restart
    tr = sm.evaluate(st, True, at(101), on_delay=60)
    assert moves(tr) == [("normal", "unack_active", "raise")] and tr[0].ts == at(101)


def test_every_transition_action_is_one_a_route_may_name() -> None:
    """``notify/`` routes are checked against ``metamodel.notify.ALARM_ACTIONS``: it must
    list every action the state machine writes (read from its source, so a new one fails)."""
    import ast
    import inspect

    from engine.alarms import state
    from metamodel.notify import ALARM_ACTIONS

    used = set()
    for node in ast.walk(ast.parse(inspect.getsource(state))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_move":
            arg = node.args[2]
            if isinstance(arg, ast.Constant):
                used.add(arg.value)
            elif isinstance(arg, ast.IfExp):  # "shelve_expired" if expired else "unshelve"
                used |= {arg.body.value, arg.orelse.value}  # type: ignore[attr-defined]
    assert len(used) >= 10
    assert used == set(ALARM_ACTIONS)
