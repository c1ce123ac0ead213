"""ERP rollups: records computed from tag history (``history_rollups:`` in module YAML).

:func:`load_rules` reads the rules of the project's modules and checks them against the
model and the tag model (entity, link and date fields, value fields, the template and its
tags), every problem at ``file:line:col``. :class:`ErpRollups` computes, for a rule and a
production day, one record per bound instance of the rule's template (the day starts at the
site's ``day_start_hour`` in its ``timezone``) and writes it through a :class:`RecordWriter`
(the wiring gives one over the generated API, so defaults, ``fetch_from``, computed fields,
validations and the audit apply as for any write). The record is found by its link and date
fields: re-running a day updates that day's record, never adds a second one.

Example::

    rules = load_rules(root, model, tags)
    runner = ErpRollups(rules, tags, history, writer)
    runner.run_days(dt.date(2024, 5, 1), dt.date(2024, 5, 31))
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError

from metamodel import DefinitionError, Model
from metamodel.errors import Location, Problems, expected_one_of
from metamodel.loader import read_documents
from metamodel.rollups import PER_SECONDS, HistoryRollupSpec, RollupValueSpec
from metamodel.tags import TagModel

from .query import History
from .samples import US, HistTag
from .tables import run_table

log = logging.getLogger(__name__)

NUMERIC = ("int", "decimal", "float")
_RULE: TypeAdapter[HistoryRollupSpec] = TypeAdapter(HistoryRollupSpec)


@dataclass(frozen=True)
class Rule:
    """A checked rollup rule."""

    name: str
    entity: str
    template: str
    link: str
    date: str
    values: Mapping[str, RollupValueSpec]
    set: Mapping[str, Any]
    schedule: str
    location: Location
    #: field -> decimal scale (decimal fields), for rounding
    scales: Mapping[str, int]
    ints: frozenset[str]


@dataclass(frozen=True)
class Outcome:
    """What one rule did for one instance and day."""

    rule: str
    instance: str
    day: dt.date
    action: str  # created, updated, skipped
    record_id: int | None = None
    values: Mapping[str, Any] | None = None
    reason: str | None = None


class RecordWriter(Protocol):
    """Where records go (the wiring's goes through the generated API)."""

    def find(self, entity: str, filters: Mapping[str, Any]) -> int | None:
        """The id of the one record matching ``filters`` (field = value), or None."""

    def create(self, entity: str, values: Mapping[str, Any]) -> int:
        """Create a record; its id."""

    def update(self, entity: str, record_id: int, values: Mapping[str, Any]) -> None:
        """Change some fields of a record."""


def load_rules(root: Path | str, model: Model, tags: TagModel | None) -> list[Rule]:
    """Every ``history_rollups:`` rule of ``root``'s modules, checked; DefinitionError lists
    every problem."""
    problems = Problems()
    rules: list[Rule] = []
    for doc in read_documents(Path(root), "modules", problems):
        if not isinstance(doc.value, dict) or not isinstance(doc.value.get("history_rollups"),
                                                             dict):
            continue
        module = doc.value.get("module")
        for name, raw in doc.value["history_rollups"].items():
            try:
                spec = _RULE.validate_python(raw)
            except ValidationError:
                continue  # the module loader reports the shape (campo validate)
            rule = _check(doc, str(module), str(name), spec, model, tags, problems)
            if rule is not None:
                rules.append(rule)
    problems.raise_if_any()
    return rules


def _check(doc: Any, module: str, name: str, spec: HistoryRollupSpec, model: Model,
           tags: TagModel | None, problems: Problems) -> Rule | None:
    key = ("history_rollups", name)

    def add(sub: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        problems.add(doc.where(key + sub), ".".join(map(str, key + sub)), message, hint)

    qual = spec.entity if "." in spec.entity else f"{module}.{spec.entity}"
    ent = model.entities.get(qual)
    if ent is None:
        add(("entity",), f"unknown entity '{qual}'", expected_one_of(qual, model.entities))
        return None
    fields = ent.spec.fields
    ok = True
    if tags is None or spec.template not in tags.templates:
        add(("template",), f"unknown tag template '{spec.template}'",
            expected_one_of(spec.template, tags.templates) if tags else "no tags/ folder")
        return None
    template = tags.templates[spec.template]
    link = fields.get(spec.link)
    if link is None or link.type != "link":
        add(("link",), f"'{spec.link}' is not a link field of {qual}",
            expected_one_of(spec.link, [f for f, s in fields.items() if s.type == "link"]))
        ok = False
    else:
        target = ent.targets[spec.link]
        for inst in tags.instances.values():
            if inst.template == spec.template and inst.binding is not None and \
                    inst.binding.entity != target:
                add(("link",), f"'{spec.link}' links to {target}, but instance {inst.path} of "
                    f"template '{spec.template}' is bound to {inst.binding.entity} "
                    f"(at {inst.location})")
                ok = False
                break
    date = fields.get(spec.date)
    if date is None or date.type != "date":
        add(("date",), f"'{spec.date}' is not a date field of {qual}",
            expected_one_of(spec.date, [f for f, s in fields.items() if s.type == "date"]))
        ok = False
    for fname, value in spec.values.items():
        f = fields.get(fname)
        if f is None or f.type not in NUMERIC:
            add(("values", fname), f"'{fname}' is not a number field of {qual}",
                expected_one_of(fname, [n for n, s in fields.items() if s.type in NUMERIC]))
            ok = False
        if value.tag not in template.tags:
            add(("values", fname, value.aggregate), f"template '{spec.template}' has no tag "
                f"'{value.tag}'", expected_one_of(value.tag, template.tags))
            ok = False
    for fname in spec.set:
        if fname not in fields:
            add(("set", fname), f"unknown field '{fname}' of {qual}",
                expected_one_of(fname, fields))
            ok = False
    if not ok:
        return None
    scales = {f: int(getattr(fields[f], "scale", 0)) for f in spec.values
              if fields[f].type == "decimal"}
    ints = frozenset(f for f in spec.values if fields[f].type == "int")
    return Rule(f"{module}.{name}", qual, spec.template, spec.link, spec.date, spec.values,
                spec.set, spec.schedule, doc.where_key(key), scales, ints)


def production_day(tags: TagModel, site: str, day: dt.date) -> tuple[int, int]:
    """``[start, end)`` in µs of ``day`` at ``site`` (its day start hour and time zone)."""
    hist = tags.history.get(site)
    hour = hist.day_start_hour if hist else 0
    zone = zoneinfo.ZoneInfo(hist.timezone if hist else "UTC")
    start = dt.datetime.combine(day, dt.time(hour), zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(hour), zone)
    return round(start.timestamp() * US), round(end.timestamp() * US)


class ErpRollups:
    """Runs rules over days (see the module docstring)."""

    def __init__(self, rules: Sequence[Rule], tags: TagModel, history: History,
                 writer: RecordWriter) -> None:
        self.rules = list(rules)
        self.tags = tags
        self.history = history
        self.writer = writer

    def instances(self, rule: Rule) -> list[Any]:
        """The bound instances of the rule's template."""
        return [i for i in self.tags.instances.values()
                if i.template == rule.template and i.binding is not None]

    def compute(self, rule: Rule, instance: Any, day: dt.date) -> dict[str, Any] | None:
        """The rule's values for one instance and day (None: no history that day)."""
        start, end = production_day(self.tags, instance.site, day)
        paths = {f: f"{instance.path}.{v.tag}" for f, v in rule.values.items()}
        known = {t.path: t for t in self.history.catalog.select(paths.values())}
        if len(known) < len(set(paths.values())):
            self.history.catalog.load()
            known = {t.path: t for t in self.history.catalog.select(paths.values())}
        rows = self.history.window(list(known.values()), start, end)
        out: dict[str, Any] = {}
        seen = False
        for fname, value in rule.values.items():
            tag: HistTag | None = known.get(paths[fname])
            row = rows.get(tag.id) if tag is not None else None
            if row is None:
                continue
            got = _aggregate(value, row)
            if row[11] > 0 or row[2] > 0:
                seen = True
            if got is None:
                continue
            got *= value.factor
            if fname in rule.scales:
                got = Decimal(str(round(got, rule.scales[fname])))
            elif fname in rule.ints:
                got = round(got)
            out[fname] = got
        return out if seen else None

    def run(self, rule: Rule, day: dt.date) -> list[Outcome]:
        """Compute and write the day's record of every instance of the rule."""
        out = []
        for inst in self.instances(rule):
            assert inst.binding is not None
            target = self.writer.find(inst.binding.entity,
                                      {inst.binding.key: inst.binding.value})
            if target is None:
                out.append(Outcome(rule.name, inst.path, day, "skipped", reason=(
                    f"no {inst.binding} record")))
                continue
            values = self.compute(rule, inst, day)
            if values is None:
                out.append(Outcome(rule.name, inst.path, day, "skipped",
                                   reason="no history that day"))
                continue
            record = {**rule.set, **values}
            key = {rule.link: target, rule.date: day.isoformat()}
            found = self.writer.find(rule.entity, key)
            if found is None:
                rid = self.writer.create(rule.entity, {**key, **record})
                out.append(Outcome(rule.name, inst.path, day, "created", rid, record))
            else:
                self.writer.update(rule.entity, found, record)
                out.append(Outcome(rule.name, inst.path, day, "updated", found, record))
        return out

    def run_days(self, first: dt.date, last: dt.date, rules: Iterable[Rule] | None = None,
                 progress: Callable[[int, int, dt.date], None] | None = None) -> list[Outcome]:
        """Every rule (or ``rules``) for every day of ``[first, last]``."""
        chosen = list(self.rules if rules is None else rules)
        days = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
        out: list[Outcome] = []
        for i, day in enumerate(days):
            for rule in chosen:
                out += self.run(rule, day)
            if progress is not None:
                progress(i + 1, len(days), day)
        self.note(out)
        return out

    def note(self, outcomes: Iterable[Outcome]) -> None:
        """Remember written records in ``campo_history_rollup_run`` (for scheduling)."""
        done = [o for o in outcomes if o.record_id is not None]
        if not done:
            return
        now = dt.datetime.now(dt.UTC)
        by_rule = {r.name: r for r in self.rules}
        with self.history.store.engine.begin() as conn:
            for o in done:
                conn.execute(run_table.delete().where(sa.and_(
                    run_table.c.rule == o.rule, run_table.c.instance == o.instance,
                    run_table.c.day == o.day)))
                conn.execute(run_table.insert().values(
                    rule=o.rule, instance=o.instance, day=o.day,
                    entity=by_rule[o.rule].entity if o.rule in by_rule else "",
                    record_id=o.record_id, computed_at=now))

    def due(self, now: dt.datetime, back_days: int = 7) -> list[tuple[Rule, dt.date]]:
        """Daily rules' closed production days not computed yet (at most ``back_days``)."""
        out = []
        with self.history.store.engine.connect() as conn:
            for rule in self.rules:
                if rule.schedule != "daily":
                    continue
                sites = {i.site for i in self.instances(rule)}
                for site in sorted(sites):
                    hist = self.tags.history.get(site)
                    zone = zoneinfo.ZoneInfo(hist.timezone if hist else "UTC")
                    local = now.astimezone(zone)
                    last = local.date() - dt.timedelta(days=1)
                    if local.hour < (hist.day_start_hour if hist else 0):
                        last -= dt.timedelta(days=1)
                    first = last - dt.timedelta(days=back_days - 1)
                    done = {r[0] for r in conn.execute(sa.select(run_table.c.day).where(
                        run_table.c.rule == rule.name, run_table.c.day >= first))}
                    for k in range(back_days):
                        day = first + dt.timedelta(days=k)
                        if day not in done and (rule, day) not in out:
                            out.append((rule, day))
        return out


def _aggregate(value: RollupValueSpec, row: list[float]) -> float | None:
    count = int(row[2])
    agg = value.aggregate
    if agg == "integral":
        return row[10] / PER_SECONDS[value.per] if row[11] > 0 else None
    if agg == "hours_on":
        return row[10] / 3600.0 if row[11] > 0 else None
    if agg == "twa":
        return row[10] / row[11] if row[11] > 0 else None
    if agg == "count":
        return float(count)
    if count == 0:
        return None
    return {"avg": row[3] / count, "min": row[4], "max": row[5], "first": row[6],
            "last": row[8]}[agg]


__all__ = ["ErpRollups", "Outcome", "RecordWriter", "Rule", "load_rules", "production_day",
           "DefinitionError"]
