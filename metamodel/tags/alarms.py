"""Alarm rules resolved per instance and checked: one :class:`AlarmRule` per alarm.

A template's rules are expanded for every instance of the template (``sim_pad.w1.pip_low``),
a site's rules once (``sim_pad.header_pressure``); an analog rule gives one alarm per level
(``sim_pad.w1.pip_low.lo``, ``sim_pad.w1.pip_low.lolo``), each with its own state.

Checked here, each at its ``file:line:col``: the watched tag exists (did-you-mean), an
analog alarm has a deadband (a ``%`` one needs the tag's range), constant setpoints are in
order and their deadbands do not overlap (``lolo < lo < hi < hihi``), an on/off delay is not
shorter than the watched tag's scan period (the scan cannot resolve it), message
placeholders are known, roles exist. The priority mix of each site is compared with the
ISA-18.2 guideline and reported as a warning (:attr:`TagModel.warnings`), never an error.
Expressions (limits given as text, ``when:``, ``suppress_when:``) are compiled by the
engine (``engine.alarms.compile``), which reports their unknown tags the same way.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import Location, Problem, Problems, expected_one_of
from ..source import Document, dotted
from ..spec import Labels, labels_of
from .alarmspec import (
    ACTIONS,
    DEFAULT_ACTION_ROLES,
    LEVELS,
    PRIORITIES,
    AlarmSpec,
    LevelSpec,
    RolesSpec,
    SiteAlarmsSpec,
)
from .model import Binding, Instance, Tag
from .params import fill, placeholders

#: run-time placeholders of messages and guidance (``{value}``)
MESSAGE_FIELDS: tuple[str, ...] = (
    "value", "limit", "unit", "tag", "label", "site", "asset", "alarm", "priority", "level")
#: ISA-18.2's suggested distribution of configured alarms (share of all), for the warning
PRIORITY_GUIDE: dict[str, float] = {"critical": 0.01, "high": 0.05, "medium": 0.15, "low": 0.8}
#: above this share of critical + high alarms the priority mix is reported
HIGH_SHARE_WARN = 0.2
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ALARM: TypeAdapter[AlarmSpec] = TypeAdapter(AlarmSpec)


def duration(value: float | str | None) -> float:
    """An alarm duration in seconds (``'5m'`` -> 300.0; None -> 0)."""
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$", value)
    if not m:
        raise ValueError(f"'{value}' is not a duration such as 5s, 10m, 1h")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass(frozen=True, slots=True, eq=False)
class ExprText:
    """An expression written in YAML, with what is needed to locate its characters."""

    text: str
    doc: Document
    path: tuple[Any, ...]

    @property
    def location(self) -> Location:
        return self.doc.where(self.path)


@dataclass(frozen=True, slots=True, eq=False)
class AlarmRule:
    """One alarm (one state machine): a rule on one instance, one level of an analog rule."""

    #: ``site.instance.rule[.level]``: the alarm's identity in states, journal and API
    path: str
    #: the rule's name (``pip_low``) and, for analog alarms, the level (``lo``)
    name: str
    level: str | None
    #: analog, state, change, bad_quality, rate or when
    kind: str
    site: str
    #: path prefix tag names in expressions are relative to (instance path or site)
    base: str
    instance: str | None
    template: str | None
    #: the watched tag's path (None for ``when`` alarms)
    tag: str | None
    priority: str
    #: es/en templates with ``{value}``... (template ``${params}`` already filled)
    message: Labels
    guidance: Labels | None
    area: str | None
    asset: str | None
    binding: Binding | None
    #: constant limit, or an expression (analog levels)
    limit: float | None = None
    limit_expr: ExprText | None = None
    deadband: float = 0.0
    on_delay: float = 0.0
    off_delay: float = 0.0
    realarm: float | None = None
    latch: bool = False
    #: discrete alarm states (``state:``)
    states: tuple[Any, ...] = ()
    #: rate of change: limit per ``per`` seconds, direction
    rate: tuple[float, float, str] | None = None
    when: ExprText | None = None
    suppress_when: ExprText | None = None
    #: action -> roles allowed
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: the instance's template parameters (``params.x`` in expressions)
    params: tuple[tuple[str, str], ...] = ()
    #: the watched tag's unit and label
    unit: str | None = None
    label: Labels | None = None
    #: scan period (s) of the watched tag (None for ``when``)
    period: float | None = None
    location: Location = field(default_factory=lambda: Location("<unknown>", 0, 0))
    description: str | None = None

    @property
    def rule(self) -> str:
        """The rule's path without the level (``sim_pad.w1.pip_low``)."""
        return self.path if self.level is None else self.path.rsplit(".", 1)[0]

    def may(self, action: str, roles: Iterable[str]) -> bool:
        """Whether a caller holding ``roles`` may do ``action`` on this alarm."""
        return not self.roles.get(action, frozenset()).isdisjoint(roles)


@dataclass
class _Ctx:
    """Where one rule is resolved: its document, key, site, instance and tags."""

    doc: Document
    key: tuple[Any, ...]
    site: str
    base: str
    tags: Mapping[str, Tag]
    declared: frozenset[str]
    problems: Problems
    roles: frozenset[str] | None
    site_roles: RolesSpec | None
    instance: Instance | None = None
    values: Mapping[str, str] = field(default_factory=dict)

    def at(self, *sub: Any) -> Location:
        return self.doc.where(self.key + sub)

    def add(self, sub: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        self.problems.add(self.at(*sub), dotted(self.key + sub), message, hint)


def resolve_alarms(
    templates: Mapping[str, tuple[Document, Any, Any]], instances: Mapping[str, Instance],
    tags: Iterable[Tag], sites: list[tuple[str, Document, Mapping[str, Any]]],
    problems: Problems, roles: frozenset[str] | None,
) -> tuple[dict[str, AlarmRule], list[Problem]]:
    """Every alarm of every instance and site, and the priority-mix warnings."""
    by_path = {t.path: t for t in tags}
    by_instance: dict[str, dict[str, Tag]] = {}
    for t in by_path.values():
        if t.instance is not None:
            by_instance.setdefault(t.instance, {})[t.path[len(t.instance) + 1:]] = t
    out: dict[str, AlarmRule] = {}
    settings: dict[str, SiteAlarmsSpec | None] = {}
    site_rules: dict[str, list[tuple[Document, str, AlarmSpec]]] = {}
    for site, doc, body in sites:
        settings[site] = _settings(body.get("alarm_settings"))
        _site_roles(settings[site], doc, roles, problems)
        raw = body.get("alarms")
        site_rules[site] = [(doc, n, s) for n, s in _specs(raw)]
    for path, inst in sorted(instances.items()):
        tpl = templates.get(inst.template)
        if tpl is None:
            continue
        tdoc, tfile, _ = tpl
        if not tfile.alarms:
            continue
        mine = by_instance.get(path, {})
        site_set = settings.get(inst.site)
        for name, spec in tfile.alarms.items():
            ctx = _Ctx(tdoc, ("alarms", name), inst.site, path, mine, frozenset(tfile.tags),
                       problems, roles, site_set.roles if site_set else None, inst,
                       dict(inst.params))
            _keep(out, _resolve(name, spec, ctx), problems)
    for site, rules in site_rules.items():
        prefix = site + "."
        mine = {p[len(prefix):]: t for p, t in by_path.items() if p.startswith(prefix)}
        site_set = settings.get(site)
        for doc, name, spec in rules:
            ctx = _Ctx(doc, ("alarms", name), site, site, mine, frozenset(mine), problems,
                       roles, site_set.roles if site_set else None)
            _keep(out, _resolve(name, spec, ctx), problems)
    return dict(sorted(out.items())), _mix_warnings(out.values(), sites)


def site_alarm_settings(sites: list[tuple[str, Document, Mapping[str, Any]]]
                        ) -> dict[str, SiteAlarmsSpec]:
    """Each site's ``alarm_settings:`` (defaults where it gives none)."""
    return {site: _settings(body.get("alarm_settings")) or SiteAlarmsSpec()
            for site, _doc, body in sites}


def _site_roles(spec: SiteAlarmsSpec | None, doc: Document, roles: frozenset[str] | None,
                problems: Problems) -> None:
    """A site's default action roles (``alarm_settings.roles``) name real roles."""
    if spec is None or spec.roles is None or roles is None:
        return
    for action in ACTIONS:
        for i, r in enumerate(getattr(spec.roles, action) or ()):
            if r not in roles:
                path = ("alarm_settings", "roles", action, i)
                problems.add(doc.where(path), f"alarm_settings.roles.{action}[{i}]",
                             f"unknown role '{r}'", expected_one_of(r, roles))


def _settings(raw: Any) -> SiteAlarmsSpec | None:
    try:
        return SiteAlarmsSpec.model_validate(raw) if isinstance(raw, dict) else None
    except ValidationError:  # reported with the site file's shape
        return None


def _specs(raw: Any) -> list[tuple[str, AlarmSpec]]:
    """Rules of a site file that validate (the broken ones were reported with its shape)."""
    if not isinstance(raw, dict):
        return []
    out = []
    for name, value in raw.items():
        try:
            out.append((name, _ALARM.validate_python(value)))
        except ValidationError:
            continue
    return out


def _keep(out: dict[str, AlarmRule], rules: list[AlarmRule], problems: Problems) -> None:
    for r in rules:
        if r.path in out:
            problems.add(r.location, "alarms", f"alarm '{r.path}' is already defined at "
                         f"{out[r.path].location}", "rename one of the rules")
            continue
        out[r.path] = r


def _resolve(name: str, spec: AlarmSpec, ctx: _Ctx) -> list[AlarmRule]:
    if not spec.enabled:
        return []
    kind = spec.kind
    tag: Tag | None = None
    if spec.tag is not None:
        tag = ctx.tags.get(spec.tag)
        if tag is None:
            if spec.tag not in ctx.declared:
                where = "the template" if ctx.instance is not None else f"site '{ctx.site}'"
                ctx.add(("tag",), f"unknown tag '{spec.tag}' of {where}",
                        expected_one_of(spec.tag, ctx.declared) if ctx.declared else
                        "declare the tag under 'tags:'")
            return []  # a declared tag that did not resolve was reported with the tag
    common = _common(name, spec, tag, ctx)
    if kind == "analog":
        assert tag is not None and spec.analog is not None
        levels = _analog(spec, tag, ctx)
        if levels is None:
            return []
        return [AlarmRule(**{**common, "path": f"{common['path']}.{lv}", "level": lv,
                             **extra}) for lv, extra in levels]
    extra: dict[str, Any] = {}
    if kind == "state":
        states = spec.state if isinstance(spec.state, list) else [spec.state]
        if tag is not None and tag.data_type == "bool" and any(
                not isinstance(s, bool) for s in states):
            ctx.add(("state",), f"'{tag.path}' is a bool; its alarm state is true or false")
            return []
        extra["states"] = tuple(states)
    elif kind == "rate":
        assert spec.rate is not None
        if tag is not None and tag.data_type in ("bool", "string"):
            ctx.add(("rate",), f"a {tag.data_type} tag has no rate of change")
            return []
        extra["rate"] = (spec.rate.limit, duration(spec.rate.per) or 60.0, spec.rate.direction)
    elif kind == "when":
        assert spec.when is not None
        extra["when"] = ExprText(spec.when, ctx.doc, ctx.key + ("when",))
    return [AlarmRule(**{**common, **extra})]


def _common(name: str, spec: AlarmSpec, tag: Tag | None, ctx: _Ctx) -> dict[str, Any]:
    """The fields every kind has. A problem here (priority, delay, message, roles) is
    reported and the rule kept with a default in its place, so that its expressions are
    still compiled and their problems reported in the same run (the load fails anyway)."""
    kind = spec.kind
    if spec.priority is None and not (kind == "analog" and spec.analog is not None and all(
            isinstance(getattr(spec.analog, lv), LevelSpec) and getattr(spec.analog, lv).priority
            for lv in LEVELS if getattr(spec.analog, lv) is not None)):
        ctx.add((), "missing 'priority'",
                "give priority: critical, high, medium or low (on the rule or each level)")
    period = tag.period if tag is not None else None
    for key in ("on_delay", "off_delay"):
        _delay_ok(duration(getattr(spec, key)), period, (key,), tag, ctx)
    message = _labels(spec.message, ("message",), ctx) if spec.message is not None else None
    guidance = _labels(spec.guidance, ("guidance",), ctx) if spec.guidance is not None else None
    roles = _roles(spec.roles, ctx)
    binding = ctx.instance.binding if ctx.instance is not None else None
    asset = spec.asset if spec.asset is not None else (binding.value if binding else None)
    realarm = duration(spec.realarm) if spec.realarm is not None else None
    return {
        "path": f"{ctx.base}.{name}", "name": name, "level": None, "kind": kind,
        "site": ctx.site, "base": ctx.base,
        "instance": ctx.instance.path if ctx.instance else None,
        "template": ctx.instance.template if ctx.instance else None,
        "tag": tag.path if tag else None, "priority": spec.priority or "low",
        "message": message or _default_message(kind), "guidance": guidance, "area": spec.area,
        "asset": fill(asset, ctx.values) if asset else None, "binding": binding,
        "on_delay": duration(spec.on_delay), "off_delay": duration(spec.off_delay),
        "realarm": realarm or None, "latch": spec.latch,
        "suppress_when": ExprText(spec.suppress_when, ctx.doc, ctx.key + ("suppress_when",))
        if spec.suppress_when else None,
        "roles": roles, "params": tuple(sorted(ctx.values.items())),
        "unit": tag.unit if tag else None, "label": tag.label if tag else None,
        "period": period, "location": ctx.doc.where_key(ctx.key),
        "description": spec.description,
    }


def _delay_ok(seconds: float, period: float | None, key: tuple[Any, ...], tag: Tag | None,
              ctx: _Ctx) -> bool:
    if seconds and period is not None and tag is not None and seconds < period:
        ctx.add(key, f"{key[-1]} {seconds:g} s is shorter than the scan period of "
                f"'{tag.path}' ({period:g} s): the scan cannot resolve it",
                f"use at least {period:g} s, or a faster scan class for the tag")
        return False
    return True


def _default_message(kind: str) -> Labels:
    es, en = {
        "analog": ("{label} {level}: {value} {unit} (límite {limit})",
                   "{label} {level}: {value} {unit} (limit {limit})"),
        "state": ("{label}: {value}", "{label}: {value}"),
        "change": ("{label} cambió a {value}", "{label} changed to {value}"),
        "bad_quality": ("{label}: sin comunicación o señal mala",
                        "{label}: communications lost or bad signal"),
        "rate": ("{label} cambia demasiado rápido ({value} {unit})",
                 "{label} changes too fast ({value} {unit})"),
        "when": ("{alarm}", "{alarm}"),
    }[kind]
    return Labels(es=es, en=en)


def _labels(value: Any, key: tuple[Any, ...], ctx: _Ctx) -> Labels | None:
    labels = labels_of(value, "x")
    out: dict[str, str] = {}
    ok = True
    for lang in ("es", "en"):
        text = getattr(labels, lang)
        if text is None:
            continue
        sub = key + ((lang,) if not isinstance(value, str) else ())
        text = _message(text, sub, ctx)
        if text is None:
            ok = False
        elif text is not None:
            out[lang] = text
        if isinstance(value, str):
            break  # one text for both languages: checked once
    if not ok:
        return None
    return Labels(**out) if isinstance(value, Labels) else Labels(es=out["es"], en=out["es"])


def _message(text: str, sub: tuple[Any, ...], ctx: _Ctx) -> str | None:
    """``text`` with its ``${params}`` filled in and its ``{fields}`` checked."""
    for ph in placeholders(text):
        if ph not in ctx.values:
            ctx.add(sub, f"unknown parameter '{ph}'",
                    expected_one_of(ph, ctx.values) if ctx.values else
                    "template parameters are declared under 'parameters:'")
            return None
    text = fill(text, ctx.values)
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        ctx.add(sub, f"message '{text}' is not a valid template: {exc}",
                "placeholders are written {value}; a literal brace is {{ or }}")
        return None
    for f in names:
        base = f.split(":")[0]
        if base not in MESSAGE_FIELDS:
            ctx.add(sub, f"unknown placeholder '{{{f}}}'", expected_one_of(base, MESSAGE_FIELDS))
            return None
    return text


def _roles(spec: RolesSpec | None, ctx: _Ctx) -> dict[str, frozenset[str]]:
    """Who may do each action (an unknown role is reported; it matches nobody)."""
    out: dict[str, frozenset[str]] = {}
    for action in ACTIONS:
        own = getattr(spec, action) if spec is not None else None
        site = getattr(ctx.site_roles, action) if ctx.site_roles is not None else None
        chosen = own if own is not None else site
        if own is not None and ctx.roles is not None:
            for i, r in enumerate(own):
                if r not in ctx.roles:
                    ctx.add(("roles", action, i), f"unknown role '{r}'",
                            expected_one_of(r, ctx.roles))
        out[action] = frozenset(chosen if chosen is not None else DEFAULT_ACTION_ROLES[action])
    return out


def _analog(spec: AlarmSpec, tag: Tag, ctx: _Ctx) -> list[tuple[str, dict[str, Any]]] | None:
    assert spec.analog is not None
    ok = True
    if tag.data_type in ("bool", "string"):
        ctx.add(("analog",), f"'{tag.path}' is a {tag.data_type}; analog limits need a number",
                "use state: for a discrete tag")
        return None
    db = spec.deadband
    deadband = 0.0
    if db is None:
        ctx.add(("analog",), "an analog alarm needs a deadband",
                "add deadband: <engineering units> or '1%' of the tag's range, so a value "
                "hovering at a limit raises the alarm once")
        ok = False
    elif isinstance(db, str):
        span = (tag.range[1] - tag.range[0]) if tag.range else (
            tag.scaling.span if tag.scaling else None)
        if not span:
            ctx.add(("deadband",), f"deadband '{db.strip()}' is a share of the range, but "
                    f"'{tag.path}' has none", "give the tag a range, or an absolute deadband")
            ok = False
        else:
            deadband = float(db.strip().rstrip("%")) / 100.0 * span
    else:
        deadband = float(db)
        if deadband == 0:
            ctx.add(("deadband",), "a deadband of 0 lets a value hovering at a limit chatter",
                    "give a deadband above 0 (engineering units or '1%')")
            ok = False
    levels: list[tuple[str, dict[str, Any]]] = []
    constants: list[tuple[str, float]] = []
    for lv in LEVELS:
        raw = getattr(spec.analog, lv)
        if raw is None:
            continue
        lspec = raw if isinstance(raw, LevelSpec) else None
        value = lspec.limit if lspec is not None else raw
        sub = ("analog", lv) + (("limit",) if lspec is not None else ())
        extra: dict[str, Any] = {}
        if isinstance(value, str):
            extra["limit_expr"] = ExprText(value, ctx.doc, ctx.key + sub)
        else:
            extra["limit"] = float(value)
            constants.append((lv, float(value)))
        if lspec is not None:
            if lspec.priority is not None:
                extra["priority"] = lspec.priority
            if lspec.message is not None:
                msg = _labels(lspec.message, ("analog", lv, "message"), ctx)
                if msg is None:
                    ok = False
                extra["message"] = msg
            for key in ("on_delay", "off_delay"):
                d = getattr(lspec, key)
                if d is not None:
                    if not _delay_ok(duration(d), tag.period, ("analog", lv, key), tag, ctx):
                        ok = False
                    extra[key] = duration(d)
        extra["deadband"] = deadband
        levels.append((lv, extra))
    if ok and not check_setpoints(constants, deadband, tag, ctx.doc, ctx.key, ctx.problems):
        ok = False
    return levels if ok else None


def check_setpoints(limits: list[tuple[str, float]], deadband: float, tag: Tag | None,
                    doc: Document, key: tuple[Any, ...], problems: Problems,
                    where: Location | None = None, suffix: str = "") -> bool:
    """Limits in order ``lolo < lo < hi < hihi`` and deadbands that do not reach across."""
    order = {lv: i for i, lv in enumerate(reversed(LEVELS))}  # lolo 0 .. hihi 3
    ranked = sorted(limits, key=lambda x: order[x[0]])
    ok = True

    def report(lv: str, message: str, hint: str) -> None:
        sub = key + ("analog", lv)
        problems.add(where or doc.where(sub), dotted(sub), message + suffix, hint)

    for (a, va), (b, vb) in zip(ranked, ranked[1:], strict=False):
        if va >= vb:
            report(b, f"{b} {vb:g} is not above {a} {va:g}: the setpoints are inverted",
                   "limits go lolo < lo < hi < hihi")
            ok = False
        elif _side(a) != _side(b) and vb - va <= 2 * deadband:
            report(b, f"{b} {vb:g} and {a} {va:g} overlap with deadband {deadband:g}: a value "
                   f"between them may hold both alarms", f"keep {b} - {a} above twice the "
                   "deadband, or make the deadband smaller")
            ok = False
    if tag is not None and tag.range is not None:
        lo, hi = tag.range
        for lv, v in limits:
            if not lo <= v <= hi:
                report(lv, f"{lv} {v:g} is outside the range [{lo:g}, {hi:g}] of "
                       f"'{tag.path}'", "the tag can never reach it; fix the limit or the range")
                ok = False
    return ok


def _side(level: str) -> str:
    return "hi" if level.startswith("hi") else "lo"


def _mix_warnings(alarms: Iterable[AlarmRule],
                  sites: list[tuple[str, Document, Mapping[str, Any]]]) -> list[Problem]:
    per_site: dict[str, Counter[str]] = {}
    for a in alarms:
        per_site.setdefault(a.site, Counter())[a.priority] += 1
    docs = {site: doc for site, doc, _ in sites}
    out = []
    for site, counts in sorted(per_site.items()):
        total = sum(counts.values())
        high = counts["critical"] + counts["high"]
        if total == 0 or high / total <= HIGH_SHARE_WARN:
            continue
        mix = ", ".join(f"{p} {counts[p]} ({100 * counts[p] / total:.0f}%)" for p in PRIORITIES)
        guide = ", ".join(f"{p} ~{100 * s:g}%" for p, s in PRIORITY_GUIDE.items())
        doc = docs.get(site)
        where = doc.where(("site",)) if doc is not None else Location("<unknown>", 0, 0)
        out.append(Problem(where, "site", f"warning: priority mix of {total} alarms is "
                           f"outside the ISA-18.2 guideline: {mix}",
                           f"ISA-18.2 suggests about {guide}; keep critical and high "
                           "for what needs an operator at once"))
    return out


__all__ = ["MESSAGE_FIELDS", "AlarmRule", "ExprText", "check_setpoints", "duration",
           "resolve_alarms", "site_alarm_settings"]
