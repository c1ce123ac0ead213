"""The ISA-18.2 / IEC 62682 alarm state machine, as pure functions over :class:`AlarmState`.

States: ``normal``; ``unack_active`` (raised, not acknowledged); ``ack_active``;
``rtn_unack`` (returned to normal, not acknowledged); ``latched`` (a latching alarm that
returned to normal and waits for a reset); ``shelved`` (hidden by an operator for a time,
with a reason); ``suppressed`` (suppressed by design while a condition holds, such as "pump
stopped by the operator"); ``out_of_service``. Shelved, suppressed and out of service are
overlays: the process condition is still followed underneath, and leaving the overlay goes
to the alarm's real state (active: raised again, unacknowledged; else normal), so no return
to normal is lost and nothing is annunciated twice.

On- and off-delays are kept as a pending change and the instant it started: the change
happens when the condition held for the whole delay, at the instant the delay ran out
(:func:`tick` fires it when no new sample comes). The pending instant is part of the
persisted state, so a restart in the middle of a delay neither restarts nor skips it; a
delay that ran out while the runtime was down fires at the first evaluation after the
restart that still sees the condition (never on a stale value).

Every function returns the :class:`Transition` records it made (for the journal); none
touches a clock, a database or a socket.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any


class State(enum.StrEnum):
    """The eight states of an alarm."""

    NORMAL = "normal"
    UNACK = "unack_active"
    ACKED = "ack_active"
    RTN_UNACK = "rtn_unack"
    LATCHED = "latched"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    OUT_OF_SERVICE = "out_of_service"


#: states an operator sees in the active list
ANNUNCIATED = frozenset({State.UNACK, State.ACKED, State.RTN_UNACK, State.LATCHED})
OVERLAYS = frozenset({State.SHELVED, State.SUPPRESSED, State.OUT_OF_SERVICE})


class ActionRefused(Exception):
    """An operator action that does not apply to the alarm's state (HTTP 409)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Transition:
    """One journal entry: an alarm went from one state to another (or was re-annunciated)."""

    alarm: str
    from_state: State
    to_state: State
    action: str
    ts: dt.datetime
    value: Any = None
    limit: float | None = None
    user: str | None = None
    comment: str | None = None


@dataclass(slots=True)
class AlarmState:
    """Everything about one alarm that must survive a restart."""

    alarm: str
    state: State = State.NORMAL
    #: the process condition after delays (what the operator is told)
    active: bool = False
    #: the condition before delays (deadband applied), as last evaluated
    raw: bool = False
    #: a change waiting for its delay: "on" or "off", since when
    pending: str | None = None
    pending_since: dt.datetime | None = None
    #: a latched alarm's acknowledgement
    acked: bool = True
    since: dt.datetime | None = None
    #: last annunciation (raise or re-alarm), for re-alarming
    raised_at: dt.datetime | None = None
    shelved_until: dt.datetime | None = None
    shelve_reason: str | None = None
    shelved_by: str | None = None
    #: the suppression-by-design condition
    suppressed: bool = False
    oos_by: str | None = None
    value: Any = None
    limit: float | None = None
    #: evaluated since it was loaded (delays of a restored state wait for a fresh value)
    fresh: bool = True

    def real_state(self) -> State:
        """Where the alarm goes when an overlay ends."""
        if self.suppressed:
            return State.SUPPRESSED
        return State.UNACK if self.active else State.NORMAL


def _move(st: AlarmState, to: State, action: str, ts: dt.datetime, user: str | None = None,
          comment: str | None = None) -> Transition:
    tr = Transition(st.alarm, st.state, to, action, ts, st.value, st.limit, user, comment)
    st.state = to
    st.since = ts
    if to is State.UNACK and action in ("raise", "realarm", "unshelve", "shelve_expired",
                                        "unsuppress", "in_service"):
        st.raised_at = ts
    return tr


def set_active(st: AlarmState, active: bool, ts: dt.datetime, *, latch: bool = False
               ) -> list[Transition]:
    """The (delayed) process condition changed."""
    st.active = active
    st.pending = st.pending_since = None
    s = st.state
    if s in OVERLAYS:
        return []  # followed underneath; the overlay decides when it is shown
    if active:
        if s in (State.NORMAL, State.RTN_UNACK, State.LATCHED):
            st.acked = False
            return [_move(st, State.UNACK, "raise", ts)]
        return []
    if s is State.UNACK:
        if latch:
            st.acked = False
            return [_move(st, State.LATCHED, "clear", ts)]
        return [_move(st, State.RTN_UNACK, "clear", ts)]
    if s is State.ACKED:
        if latch:
            st.acked = True
            return [_move(st, State.LATCHED, "clear", ts)]
        return [_move(st, State.NORMAL, "clear", ts)]
    return []


def evaluate(st: AlarmState, raw: bool | None, ts: dt.datetime, *, on_delay: float = 0.0,
             off_delay: float = 0.0, latch: bool = False) -> list[Transition]:
    """A new evaluation of the condition (None: undetermined, e.g. bad quality: hold)."""
    if raw is None:
        return []
    st.raw = raw
    was_fresh, st.fresh = st.fresh, True
    if raw == st.active:
        st.pending = st.pending_since = None
        return []
    want = "on" if raw else "off"
    delay = on_delay if raw else off_delay
    if delay <= 0:
        return set_active(st, raw, ts, latch=latch)
    if st.pending != want or st.pending_since is None:
        st.pending, st.pending_since = want, ts
        return []
    if (ts - st.pending_since).total_seconds() >= delay:
        # ran out between samples: at the instant it did; ran out while the runtime was
        # down: now, the first moment the condition is known to still hold
        at = st.pending_since + dt.timedelta(seconds=delay) if was_fresh else ts
        return set_active(st, raw, at, latch=latch)
    return []


def tick(st: AlarmState, now: dt.datetime, *, on_delay: float = 0.0, off_delay: float = 0.0,
         latch: bool = False, realarm: float | None = None) -> list[Transition]:
    """Timers: a delay that ran out, a shelve that expired, a re-alarm that is due."""
    out: list[Transition] = []
    if st.pending is not None and st.pending_since is not None and st.fresh:
        delay = on_delay if st.pending == "on" else off_delay
        due = st.pending_since + dt.timedelta(seconds=delay)
        if now >= due and st.raw == (st.pending == "on"):
            out += set_active(st, st.raw, due, latch=latch)
    if st.state is State.SHELVED and st.shelved_until is not None and now >= st.shelved_until:
        out += unshelve(st, st.shelved_until, expired=True)
    if realarm and st.state in (State.UNACK, State.ACKED) and st.raised_at is not None and \
            now >= st.raised_at + dt.timedelta(seconds=realarm):
        at = st.raised_at + dt.timedelta(seconds=realarm)
        st.acked = False
        out.append(_move(st, State.UNACK, "realarm", at))
        st.raised_at = at
    return out


def next_due(st: AlarmState, *, on_delay: float = 0.0, off_delay: float = 0.0,
             realarm: float | None = None) -> dt.datetime | None:
    """The next instant :func:`tick` has something to do (None: nothing scheduled)."""
    due: list[dt.datetime] = []
    if st.pending is not None and st.pending_since is not None:
        delay = on_delay if st.pending == "on" else off_delay
        due.append(st.pending_since + dt.timedelta(seconds=delay))
    if st.state is State.SHELVED and st.shelved_until is not None:
        due.append(st.shelved_until)
    if realarm and st.state in (State.UNACK, State.ACKED) and st.raised_at is not None:
        due.append(st.raised_at + dt.timedelta(seconds=realarm))
    return min(due) if due else None


def suppress(st: AlarmState, on: bool, ts: dt.datetime) -> list[Transition]:
    """The suppression-by-design condition changed."""
    if on == st.suppressed:
        return []
    st.suppressed = on
    if st.state in (State.SHELVED, State.OUT_OF_SERVICE):
        return []  # applied when that overlay ends
    if on:
        st.acked = True
        return [_move(st, State.SUPPRESSED, "suppress", ts)]
    if st.state is State.SUPPRESSED:
        st.acked = not st.active
        return [_move(st, st.real_state(), "unsuppress", ts)]
    return []


# ------------------------------------------------------------------ operator actions


def acknowledge(st: AlarmState, ts: dt.datetime, user: str | None = None,
                comment: str | None = None) -> list[Transition]:
    """Acknowledge: unack active -> ack active, RTN unack -> normal, latched -> acked."""
    if st.state is State.UNACK:
        return [_move(st, State.ACKED, "ack", ts, user, comment)]
    if st.state is State.RTN_UNACK:
        return [_move(st, State.NORMAL, "ack", ts, user, comment)]
    if st.state is State.LATCHED and not st.acked:
        st.acked = True
        return [_move(st, State.LATCHED, "ack", ts, user, comment)]
    raise ActionRefused(f"alarm '{st.alarm}' is {st.state.value}: nothing to acknowledge")


def shelve(st: AlarmState, ts: dt.datetime, until: dt.datetime, reason: str,
           user: str | None = None) -> list[Transition]:
    """Shelve until ``until`` (a shelved alarm's expiry may be changed)."""
    if st.state is State.OUT_OF_SERVICE:
        raise ActionRefused(f"alarm '{st.alarm}' is out of service; return it to service first")
    if until <= ts:
        raise ActionRefused("a shelve must end in the future", 422)
    st.shelved_until, st.shelve_reason, st.shelved_by = until, reason, user
    st.acked = True
    return [_move(st, State.SHELVED, "shelve", ts, user, reason)]


def unshelve(st: AlarmState, ts: dt.datetime, user: str | None = None,
             comment: str | None = None, *, expired: bool = False) -> list[Transition]:
    """End a shelve (by hand or on expiry): back to the real state."""
    if st.state is not State.SHELVED:
        raise ActionRefused(f"alarm '{st.alarm}' is {st.state.value}, not shelved")
    st.shelved_until = st.shelve_reason = st.shelved_by = None
    st.acked = not st.active
    return [_move(st, st.real_state(), "shelve_expired" if expired else "unshelve", ts,
                  user, comment)]


def remove_from_service(st: AlarmState, ts: dt.datetime, user: str | None = None,
                        comment: str | None = None) -> list[Transition]:
    """Out of service (maintenance): hidden until returned to service."""
    if st.state is State.OUT_OF_SERVICE:
        raise ActionRefused(f"alarm '{st.alarm}' is out of service already")
    st.shelved_until = st.shelve_reason = st.shelved_by = None
    st.oos_by = user
    st.acked = True
    return [_move(st, State.OUT_OF_SERVICE, "out_of_service", ts, user, comment)]


def return_to_service(st: AlarmState, ts: dt.datetime, user: str | None = None,
                      comment: str | None = None) -> list[Transition]:
    """Back in service: to the real state."""
    if st.state is not State.OUT_OF_SERVICE:
        raise ActionRefused(f"alarm '{st.alarm}' is {st.state.value}, not out of service")
    st.oos_by = None
    st.acked = not st.active
    return [_move(st, st.real_state(), "in_service", ts, user, comment)]


def reset(st: AlarmState, ts: dt.datetime, user: str | None = None,
          comment: str | None = None) -> list[Transition]:
    """Reset a latched alarm whose condition has cleared (acknowledging it if needed)."""
    if st.state is not State.LATCHED:
        raise ActionRefused(f"alarm '{st.alarm}' is {st.state.value}, not latched")
    st.acked = True
    return [_move(st, State.NORMAL, "reset", ts, user, comment)]


__all__ = ["ANNUNCIATED", "OVERLAYS", "ActionRefused", "AlarmState", "State", "Transition",
           "acknowledge", "evaluate", "next_due", "remove_from_service", "reset",
           "return_to_service", "set_active", "shelve", "suppress", "tick", "unshelve"]
