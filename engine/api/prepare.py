"""Apply the model's rules to a write, inside the write's transaction.

Create (``before_insert``), replace/patch (``before_update``) and workflow actions
(:mod:`engine.api.workflow`, through :meth:`Behaviour.prepare_update`) all run the same
steps on a :class:`Draft` per record and per child row:

1. the record as it will be stored: the input over the stored record (update) or over
   literal defaults (create); the workflow state starts at ``initial``;
2. the linked records the rules read (one query per link field and batch) and ``'='``
   defaults of fields the input left out (create and PUT);
3. ``fetch_from`` values (when the link is set or changed), then computed fields: child
   rows first, so ``sum(self.lines.amount)`` sees each row's computed ``amount``;
4. checks, every failure collected: derived fields sent with another value than the server
   keeps, workflow ``editable`` fields and ``readonly_if`` (judged on the stored record),
   then ``required_if`` and validations on the result; 422 lists them all, messages in the
   language of ``Accept-Language``;
5. the naming series number (create), taken in the same transaction.

What is returned is the full set of values for :func:`engine.api.writes.insert_records` /
``update_record``, so a PUT or PATCH never resets a derived field.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.expr import Context
from metamodel.spec import SYSTEM_COLUMNS, TransitionSpec, labels_of

from .behaviour import Prepared
from .codecs import default_value, fits
from .errors import ApiError
from .naming import assign_names, begin_write
from .rules import (
    EntityRules,
    RuleError,
    blank,
    coerce,
    compile_entity_rules,
    compute,
    evaluate,
    load_children,
    load_rows,
    request_language,
    same,
    serve_virtuals,
    text,
    user_context,
)
from .writes import missing_or_stale, utcnow

if TYPE_CHECKING:
    from .context import ApiContext
    from .resource import Resource

log = logging.getLogger(__name__)


@dataclass
class Draft:
    """One record or child row being written."""

    rules: EntityRules
    #: the validated input (None: a child row kept as stored)
    given: Mapping[str, Any] | None
    #: the values as they will be stored (plus system columns and virtual fields)
    values: dict[str, Any]
    #: the stored row before the write (update, existing child row)
    before: dict[str, Any] | None = None
    links: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    #: table field -> child rows (top-level records only)
    rows: dict[str, list[Draft]] = field(default_factory=dict)
    #: table field -> stored child rows before the write
    before_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    #: a PATCH: fields left out keep their stored values (and their defaults are not used)
    partial: bool = False

    def fail(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def context(self, user: Mapping[str, Any], parent: Mapping[str, Any] | None = None,
                values: Mapping[str, Any] | None = None) -> Context:
        children = {t: [r.values for r in rows] for t, rows in self.rows.items()}
        return Context(record=self.values if values is None else values, parent=parent,
                       tz=self.rules.tz,
                       links=self.links, children=children, user=user)


class Behaviour:
    """The rules of one resource, applied on write and read (``Resource.behaviour``)."""

    def __init__(self, ctx: ApiContext, res: Resource, top: EntityRules,
                 children: dict[str, EntityRules]) -> None:
        self.ctx = ctx
        self.res = res
        self.top = top
        self.children = children
        self.stored = list(res.entity.stored_fields())
        self.child_stored = {t: list(r.entity.stored_fields()) for t, r in children.items()}
        #: entity -> (field, check) of the stored values the server derives
        self.fits = {r.entity.qualname: _derived_checks(r) for r in (top, *children.values())}

    # ------------------------------------------------------------------ public

    def serve(self, conn: Connection, rows: Sequence[Any], names: Sequence[str],
              items: list[dict[str, Any]]) -> None:
        """Add virtual computed fields to served records."""
        if self.top.virtual:
            serve_virtuals(conn, self.ctx, self.res, self.top, rows, names, items)

    def before_insert(self, conn: Connection, items: Sequence[Mapping[str, Any]], *,
                      bulk: bool = False) -> list[dict[str, Any]]:
        """The values to insert for validated ``items``; 422 when a rule fails."""
        begin_write(conn)
        now = utcnow()
        user = user_context(self.ctx)
        drafts = [self._new(data, now, user["username"]) for data in items]
        self._derive(conn, drafts, user, creating=True)
        self._raise(drafts, bulk)
        series = self.res.entity.series
        if series is not None:
            assign_names(conn, self.res.qualname, series, [d.values for d in drafts],
                         now.astimezone(self.top.tz).date())
        return [self._output(d) for d in drafts]

    def before_update(self, conn: Connection, record_id: int, data: Mapping[str, Any], *,
                      partial: bool) -> dict[str, Any]:
        """The values to write for a PUT/PATCH; 404/409/422 when it cannot be written."""
        return self.prepare_update(conn, record_id, data, partial=partial).data

    def prepare_update(self, conn: Connection, record_id: int, data: Mapping[str, Any], *,
                       partial: bool, transition: TransitionSpec | None = None,
                       scope: sa.ColumnElement[bool] | None = None, lock: bool = True
                       ) -> Prepared:
        """Check and derive an update (or a workflow ``transition`` with its values).

        ``lock=False`` only judges (``GET .../actions``): no write lock is taken.
        """
        t = self.res.table
        stmt = sa.select(t).where(t.c.id == record_id)
        if scope is not None:
            stmt = stmt.where(scope)
        if lock:
            begin_write(conn)
            if conn.dialect.name != "sqlite":
                stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            raise ApiError(404, f"{self.res.qualname} {record_id} not found")
        before = dict(row._mapping)
        expected = data.get("version")
        if expected is not None and expected != before["version"]:
            raise missing_or_stale(conn, self.res, record_id, expected)
        user = user_context(self.ctx)
        draft = self._existing(conn, before, data, partial, utcnow(), user["username"])
        self._derive(conn, [draft], user, creating=False, transition=transition)
        self._raise([draft], False, status=422)
        out = self._output(draft)
        if expected is not None:
            out["version"] = expected
        return Prepared(out, before, draft.before_rows)

    # ------------------------------------------------------------------ drafts

    def _row_values(self, rules: EntityRules, given: Mapping[str, Any],
                    before: Mapping[str, Any] | None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, f in rules.entity.stored_fields().items():
            if name in rules.derived:
                values[name] = before.get(name) if before is not None else None
            elif name in given:
                values[name] = given[name]
            else:
                values[name] = default_value(f, rules.tz)
        return values

    def _stamp(self, now: Any, user: str | None, before: Mapping[str, Any] | None
               ) -> dict[str, Any]:
        if before is None:
            return {"id": None, "created_at": now, "created_by": user, "updated_at": now,
                    "updated_by": user, "version": 1}
        out = {k: before[k] for k in SYSTEM_COLUMNS if k in before}
        out.update(updated_at=now, updated_by=user)
        return out

    def _child_drafts(self, tname: str, given_rows: Sequence[Mapping[str, Any]],
                      before_rows: list[dict[str, Any]], now: Any, user: str | None
                      ) -> list[Draft]:
        rules = self.children[tname]
        by_id = {r["id"]: r for r in before_rows}
        out = []
        for idx, row in enumerate(given_rows):
            old = by_id.get(row.get("id"))
            values = self._stamp(now, user, old)
            values.update(idx=idx, parent_id=old["parent_id"] if old else None)
            values.update(self._row_values(rules, row, old))
            out.append(Draft(rules, row, values, old))
        return out

    def _new(self, data: Mapping[str, Any], now: Any, user: str | None) -> Draft:
        values = self._stamp(now, user, None)
        values.update(self._row_values(self.top, data, None))
        wf = self.res.entity.workflow
        if wf is not None:
            values[wf.field] = wf.initial
        draft = Draft(self.top, data, values)
        for tname in self.children:
            draft.rows[tname] = self._child_drafts(tname, data.get(tname) or (), [], now,
                                                   user)
        return draft

    def _existing(self, conn: Connection, before: dict[str, Any], data: Mapping[str, Any],
                  partial: bool, now: Any, user: str | None) -> Draft:
        values = self._stamp(now, user, before)
        for name, f in self.res.entity.stored_fields().items():
            if name in self.top.derived or (partial and name not in data):
                values[name] = before[name]
            elif name in data:
                values[name] = data[name]
            else:
                values[name] = default_value(f, self.top.tz)
        draft = Draft(self.top, data, values, before, partial=partial)
        for tname, child in self.res.children.items():
            stored = load_children(conn, child.api.table, [before["id"]]).get(before["id"], [])
            draft.before_rows[tname] = stored
            if tname in data or not partial:
                draft.rows[tname] = self._child_drafts(tname, data.get(tname) or (), stored,
                                                       now, user)
            else:
                draft.rows[tname] = [Draft(self.children[tname], None, dict(r), r)
                                     for r in stored]
        return draft

    # ------------------------------------------------------------------ deriving

    def _all(self, drafts: Sequence[Draft]) -> list[Draft]:
        out = list(drafts)
        for d in drafts:
            for rows in d.rows.values():
                out.extend(rows)
        return out

    def _load_links(self, conn: Connection, drafts: Sequence[Draft],
                    cache: dict[tuple[str, int], Mapping[str, Any]],
                    before: bool = False) -> None:
        """Fill ``links`` of every draft (and child row) for the links its rules read."""
        wanted: dict[str, tuple[Any, set[int]]] = {}
        for d in self._all(drafts):
            values = d.before if before else d.values
            if values is None:
                continue
            for link, target in d.rules.links.items():
                rid = values.get(link)
                if rid is not None and (target.table.name, rid) not in cache:
                    wanted.setdefault(target.table.name, (target, set()))[1].add(rid)
        for name, (target, ids) in wanted.items():
            found = load_rows(conn, target.table, ids,
                              self.ctx.row_filter(target.entity, target.table))
            for rid in ids:
                cache[(name, rid)] = found.get(rid, {})
        for d in self._all(drafts):
            values = d.before if before else d.values
            if values is None:
                continue
            d.links = {link: cache[(t.table.name, values[link])]
                       for link, t in d.rules.links.items() if values.get(link) is not None}

    def _defaults(self, d: Draft, user: Mapping[str, Any], parent: Mapping[str, Any] | None
                  ) -> bool:
        """Evaluate ``'='`` defaults of fields the input left out; whether a link changed."""
        if d.given is None or d.partial:
            return False
        changed = False
        for name, f, expr in d.rules.defaults:
            if name in d.given:
                continue
            try:
                d.values[name] = coerce(f, evaluate(expr, d.context(user, parent)))
            except RuleError as err:
                log.warning("%s.%s: default could not be evaluated: %s",
                            d.rules.entity.qualname, name, err)
                d.values[name] = None
            changed = changed or name in d.rules.links
        return changed

    def _fetch(self, d: Draft) -> None:
        for name, (link, target) in d.rules.fetched.items():
            if d.before is not None and same(d.before.get(link), d.values.get(link)):
                continue  # the link did not change: keep the copied value
            linked = d.links.get(link) if d.values.get(link) is not None else None
            f = d.rules.entity.fields[name]
            d.values[name] = None if linked is None else coerce(f, linked.get(target))

    def _derive(self, conn: Connection, drafts: Sequence[Draft], user: dict[str, Any], *,
                creating: bool, transition: TransitionSpec | None = None) -> None:
        cache: dict[tuple[str, int], Mapping[str, Any]] = {}
        self._load_links(conn, drafts, cache)
        relink = False
        for d in drafts:
            relink |= self._defaults(d, user, None)
            for rows in d.rows.values():
                for r in rows:
                    relink |= self._defaults(r, user, d.values)
        if relink:
            self._load_links(conn, drafts, cache)
        lang = request_language()
        for d in drafts:
            for r in self._all([d]):
                self._fetch(r)
            if not creating:
                self._judge_changes(conn, d, user, cache, lang)
            wf = self.res.entity.workflow
            if transition is not None and wf is not None:
                self._compute(d, user)
                guard = self._guard(transition)
                if guard is not None and not self._holds(guard, d, user, None):
                    label = labels_of(transition.label, transition.action).get(lang)
                    d.fail("_guard", text(lang, "guard", action=label, rule=guard.source))
                d.values[wf.field] = transition.to
            self._compute(d, user)
            self._check_fits(d, "")
            self._check_claims(d, creating, transition)
            if transition is not None:
                self._check_requires(d, transition, lang)
            self._check_rules(d, user, None, lang, "")
            for tname, rows in d.rows.items():
                for i, r in enumerate(rows):
                    self._check_fits(r, f"{tname}.{i}.")
                    self._check_claims(r, creating, None, f"{tname}.{i}.")
                    self._check_rules(r, user, d.values, lang, f"{tname}.{i}.")

    def _compute(self, d: Draft, user: Mapping[str, Any]) -> None:
        for rows in d.rows.values():
            for r in rows:
                compute(r.rules, r.context(user, d.values), r.values)
        compute(d.rules, d.context(user), d.values)

    def _check_fits(self, d: Draft, prefix: str) -> None:
        """Derived values (computed, ``'='`` defaults, fetched) must fit their columns:
        a 422 naming the field, not other digits (SQLite) or a refusal naming nothing."""
        for name, check in self.fits[d.rules.entity.qualname]:
            message = check(d.values.get(name))
            if message is not None:
                d.fail(prefix + name, message)

    def _guard(self, transition: TransitionSpec) -> Any:
        wf = self.res.entity.workflow
        assert wf is not None
        index = next(i for i, t in enumerate(wf.transitions) if t is transition)
        return self.top.guards.get(index)

    def _holds(self, expr: Any, d: Draft, user: Mapping[str, Any],
               parent: Mapping[str, Any] | None, values: Mapping[str, Any] | None = None
               ) -> bool:
        try:
            return bool(evaluate(expr, d.context(user, parent, values)))
        except RuleError as err:
            log.warning("%s: rule could not be evaluated: %s", d.rules.entity.qualname, err)
            return False

    # ------------------------------------------------------------------ checks

    def _check_claims(self, d: Draft, creating: bool, transition: TransitionSpec | None,
                      prefix: str = "") -> None:
        """Derived fields in the input must hold what the server keeps for them."""
        if d.given is None:
            return
        ent = d.rules.entity
        wf = ent.workflow
        series = ent.series
        for name in sorted(d.rules.derived | set(d.rules.virtual)):
            if name not in d.given:
                continue
            sent = d.given[name]
            f = ent.fields[name]
            if wf is not None and name == wf.field:
                kept = d.before[name] if d.before is not None else wf.initial
                if transition is not None or not same(sent, kept):
                    d.fail(prefix + name, f"{name} changes only through the workflow's "
                           f"actions (POST {self.res.url}/<id>/actions/<action>), not by "
                           "writing it")
            elif series is not None and name == series.field:
                kept = d.before[name] if d.before is not None else None
                if not same(sent, kept):
                    d.fail(prefix + name, f"{name} is given by the naming series "
                           f"{series.template}; it cannot be written")
            elif not same(coerce(f, sent), d.values.get(name)):
                how = (f"copied from {f.fetch_from}" if f.fetch_from is not None
                       else f"computed when read ({f.computed})" if f.is_virtual
                       else f"computed ({f.computed})")
                d.fail(prefix + name, f"{name} is {how}; it cannot be written")

    def _check_requires(self, d: Draft, t: TransitionSpec, lang: str) -> None:
        label = labels_of(t.label, t.action).get(lang)
        for name in t.requires:
            value = [r.values for r in d.rows[name]] if name in d.rows else d.values.get(name)
            if blank(value):
                d.fail(name, text(lang, "requires", action=label))

    def _check_rules(self, d: Draft, user: Mapping[str, Any], parent: Mapping[str, Any] | None,
                     lang: str, prefix: str) -> None:
        """``required_if`` and validations on the record as it will be stored."""
        for name, expr in d.rules.required_if.items():
            if blank(d.values.get(name)) and self._holds(expr, d, user, parent):
                d.fail(prefix + name, text(lang, "required_if", rule=expr.source))
        for spec, expr in d.rules.validations:
            if not self._holds(expr, d, user, parent):
                d.fail(prefix + (spec.field or "_rules"), spec.messages().get(lang))

    def _judge_changes(self, conn: Connection, d: Draft, user: Mapping[str, Any],
                       cache: dict[tuple[str, int], Mapping[str, Any]], lang: str) -> None:
        """Workflow ``editable`` and ``readonly_if``, judged on the stored record."""
        before = d.before
        assert before is not None
        ent = self.res.entity
        changed = [n for n in self.stored if n not in self.top.derived
                   and not same(d.values.get(n), before.get(n))]
        changed += [t for t, rows in d.rows.items() if self._rows_changed(t, rows,
                                                                         d.before_rows[t])]
        if not changed:
            return
        wf = ent.workflow
        if wf is not None:
            editable = wf.editable_in(before[wf.field])
            if editable is not None:
                state = wf.states[before[wf.field]].labels.get(lang)
                for name in changed:
                    if name not in editable:
                        d.fail(name, text(lang, "editable", state=state))
        if not self.top.readonly_if:
            return
        old = Draft(self.top, None, dict(before), before)
        old.rows = {t: [Draft(self.children[t], None, dict(r), r) for r in rows]
                    for t, rows in d.before_rows.items()}
        self._load_links(conn, [old], cache)
        self._compute(old, user)
        for name, expr in self.top.readonly_if.items():
            if name in changed and self._holds(expr, old, user, None):
                d.fail(name, text(lang, "readonly_if", rule=expr.source))

    def _rows_changed(self, tname: str, rows: list[Draft], stored: list[dict[str, Any]]
                      ) -> bool:
        if len(rows) != len(stored):
            return True
        rules = self.children[tname]
        for r, old in zip(rows, stored, strict=True):
            if r.before is not old:
                return True
            for name in self.child_stored[tname]:
                if name not in rules.derived and not same(r.values.get(name), old.get(name)):
                    return True
        return False

    # ------------------------------------------------------------------ output

    def _raise(self, drafts: Sequence[Draft], bulk: bool, status: int = 422) -> None:
        failed = {i: d.errors for i, d in enumerate(drafts) if d.errors}
        for i, d in enumerate(drafts):
            for rows in d.rows.values():
                for r in rows:
                    if r.errors:
                        failed.setdefault(i, d.errors).update(r.errors)
        if not failed:
            return
        if bulk:
            raise ApiError(status, f"{len(failed)} of {len(drafts)} records break the "
                           "rules; nothing was created", {"json": failed})
        errors = failed[0]
        shown = "; ".join(f"{k}: {v[0]}" for k, v in list(errors.items())[:5])
        raise ApiError(status, f"the record breaks its rules: {shown}", {"json": errors})

    def _output(self, d: Draft) -> dict[str, Any]:
        out = {n: d.values[n] for n in self.stored}
        for tname, rows in d.rows.items():
            if d.given is not None and (tname in d.given or not d.partial):
                out[tname] = [self._row_out(tname, r) for r in rows]
            elif any(not same(r.values.get(n), (r.before or {}).get(n))
                     for r in rows for n in self.child_stored[tname]):
                out[tname] = [self._row_out(tname, r) for r in rows]  # recomputed rows
        return out

    def _row_out(self, tname: str, r: Draft) -> dict[str, Any]:
        row = {n: r.values[n] for n in self.child_stored[tname]}
        if r.before is not None:
            row["id"] = r.before["id"]
        return row


def _derived_checks(rules: EntityRules) -> list[tuple[str, Callable[[Any], str | None]]]:
    names = [n for n, _f, _e in rules.computed if n not in rules.virtual]
    names += [n for n, _f, _e in rules.defaults] + list(rules.fetched)
    out = []
    for name in dict.fromkeys(names):
        check = fits(rules.entity.fields[name])
        if check is not None:
            out.append((name, check))
    return out


def site_zone(name: str) -> dt.tzinfo:
    """The site's time zone from ``CAMPO_TIMEZONE`` (UTC when empty)."""
    if not name or name.upper() == "UTC":
        return dt.UTC
    return zoneinfo.ZoneInfo(name)


def attach_behaviour(ctx: ApiContext, res: Resource) -> None:
    """Compile the rules of ``res`` (and its child tables) and set ``res.behaviour`` when
    there are any (an entity without rules keeps the plain write path)."""
    metadata = res.table.metadata
    top = compile_entity_rules(ctx.model, metadata, res.entity)
    kids = {t: compile_entity_rules(ctx.model, metadata, c.api.entity)
            for t, c in res.children.items()}
    tz = site_zone(ctx.settings.timezone)
    for rules in (top, *kids.values()):
        rules.tz = tz
    res.tz = tz  # the plain write path's `today` defaults too (engine.api.writes)
    for child in res.children.values():
        child.tz = tz
    if top.active or top.virtual or any(k.active for k in kids.values()):
        res.behaviour = Behaviour(ctx, res, top, kids)
