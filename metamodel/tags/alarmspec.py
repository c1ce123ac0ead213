"""The shapes of alarm rules in ``tags/`` (``alarms:`` of a template or a site), as pydantic.

An alarm rule watches one tag (``tag:``) or several (``when:`` an expression over tags) and
is one of these kinds, told apart by the key it gives:

- ``analog``: ``hihi``/``hi``/``lo``/``lolo`` limits (a number, or an expression of other
  tags and template parameters), with a ``deadband`` (absolute or ``'2%'`` of the range);
  each level is an alarm of its own (``pip_low.lo``, ``pip_low.lolo``);
- ``state``: a discrete tag in an alarm state (``state: false``, ``state: [1, 2]``);
- ``change``: any change of state of the tag (momentary; it returns to normal at once);
- ``bad_quality``: the tag's quality is bad (communications lost, sensor fault);
- ``rate``: the tag moves faster than ``limit`` units per ``per`` (rise, fall or both);
- ``when``: an expression over several tags in the expression language.

Common keys: ``priority``, ``message``/``guidance`` (es/en, with ``{value}``, ``{unit}``,
``{limit}``... filled at run time), ``area``, ``asset`` (the ERP record, default the
instance's ``bind``), ``on_delay``/``off_delay``, ``realarm``, ``latch``, ``suppress_when``
(suppression by design), and ``roles`` for who may acknowledge, shelve, take out of service
and reset. Only shapes here; :mod:`metamodel.tags.alarms` resolves and checks them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from ..spec import LabelText, Name, Spec

PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
Priority = Literal["critical", "high", "medium", "low"]
LEVELS: tuple[str, ...] = ("hihi", "hi", "lo", "lolo")
ACTIONS: tuple[str, ...] = ("acknowledge", "shelve", "out_of_service", "reset")
#: roles that may do each action when neither the rule nor the site says otherwise
DEFAULT_ACTION_ROLES: dict[str, tuple[str, ...]] = {
    "acknowledge": ("admin", "supervisor", "operator"),
    "shelve": ("admin", "supervisor"),
    "out_of_service": ("admin", "supervisor"),
    "reset": ("admin", "supervisor", "operator"),
}

_DURATION = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$"
#: ``500ms``, ``5s``, ``10m``, ``1h``, ``1d`` or a number of seconds (0 allowed: no delay)
AlarmDuration = Annotated[float, Field(ge=0, allow_inf_nan=False)] | Annotated[
    str, StringConstraints(pattern=_DURATION)]
#: an absolute deadband or a share of the tag's range (``'2%'``)
Deadband = Annotated[float, Field(ge=0, allow_inf_nan=False)] | Annotated[
    str, StringConstraints(pattern=r"^\s*\d+(\.\d+)?\s*%\s*$")]
#: a constant limit or an expression text (``'params.trip_current * 0.9'``)
LimitValue = Annotated[float, Field(allow_inf_nan=False)] | Annotated[
    str, StringConstraints(min_length=1)]
Scalar = bool | int | float | str


class LevelSpec(Spec):
    """One level of an analog alarm, when it needs more than a limit."""

    limit: LimitValue
    priority: Priority | None = None
    message: LabelText | None = None
    on_delay: AlarmDuration | None = None
    off_delay: AlarmDuration | None = None


Level = LevelSpec | LimitValue


class AnalogSpec(Spec):
    """Limits of an analog alarm: ``{hi: 85, hihi: {limit: 95, priority: high}}``."""

    hihi: Level | None = None
    hi: Level | None = None
    lo: Level | None = None
    lolo: Level | None = None

    @model_validator(mode="after")
    def _some(self) -> AnalogSpec:
        if all(getattr(self, k) is None for k in LEVELS):
            raise ValueError("an analog alarm needs at least one of hihi, hi, lo, lolo")
        return self


class RateSpec(Spec):
    """Rate of change: more than ``limit`` engineering units per ``per``."""

    limit: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    per: AlarmDuration = "1m"
    direction: Literal["rise", "fall", "both"] = "both"


class RolesSpec(Spec):
    """Who may act on an alarm (each list replaces the default for that action)."""

    acknowledge: list[Name] | None = None
    shelve: list[Name] | None = None
    out_of_service: list[Name] | None = None
    reset: list[Name] | None = None


class AlarmSpec(Spec):
    """One alarm rule of a template (per instance) or of a site."""

    #: the tag watched: a template's tag name, or a site's tag path below the site
    tag: Annotated[str, StringConstraints(min_length=1)] | None = None
    analog: AnalogSpec | None = None
    state: Scalar | list[Scalar] | None = None
    change: bool | None = None
    bad_quality: bool | None = None
    rate: RateSpec | None = None
    when: Annotated[str, StringConstraints(min_length=1)] | None = None
    deadband: Deadband | None = None
    priority: Priority | None = None
    message: LabelText | None = None
    guidance: LabelText | None = None
    area: Name | None = None
    #: the ERP record the alarm is about (default: the instance's ``bind``)
    asset: str | None = None
    on_delay: AlarmDuration = 0
    off_delay: AlarmDuration = 0
    #: annunciate again when still active this long after the last annunciation
    realarm: AlarmDuration | None = None
    #: stay latched after returning to normal until reset
    latch: bool = False
    #: suppression by design: while this expression is true the alarm is suppressed
    suppress_when: Annotated[str, StringConstraints(min_length=1)] | None = None
    roles: RolesSpec | None = None
    description: str | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> AlarmSpec:
        kinds = [k for k in KINDS if self._gives(k)]
        if len(kinds) != 1:
            got = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"an alarm rule has exactly one of {', '.join(KINDS)} (got {got})")
        if kinds[0] != "when" and self.tag is None:
            raise ValueError(f"a '{kinds[0]}' alarm needs the 'tag' it watches")
        if self.deadband is not None and kinds[0] != "analog":
            raise ValueError(f"'deadband' is for analog alarms, not '{kinds[0]}'")
        return self

    @property
    def kind(self) -> str:
        """``analog``, ``state``, ``change``, ``bad_quality``, ``rate`` or ``when``."""
        return next(k for k in KINDS if self._gives(k))

    def _gives(self, kind: str) -> bool:
        """Whether the rule is of ``kind``: ``state: false`` (or 0) is an alarm state, while
        ``change: false`` and ``bad_quality: false`` say "not this kind"."""
        value = getattr(self, kind)
        if kind == "state":
            return value is not None
        return value is not None and value is not False


KINDS: tuple[str, ...] = ("analog", "state", "change", "bad_quality", "rate", "when")


class SiteAlarmsSpec(Spec):
    """Site-wide alarm settings (``alarm_settings:`` of a site file)."""

    roles: RolesSpec | None = None
    #: operators on duty at the site, for the alarm-rate KPIs (per operator)
    operators: Annotated[int, Field(ge=1)] = 1


__all__ = ["ACTIONS", "DEFAULT_ACTION_ROLES", "KINDS", "LEVELS", "PRIORITIES", "AlarmSpec",
           "AnalogSpec", "LevelSpec", "RateSpec", "RolesSpec", "SiteAlarmsSpec"]
