"""The model's rules at run time: compiled per entity when the app is built.

:class:`EntityRules` (here) holds, for one entity (top-level or a child table's), the
compiled expressions from :func:`engine.rules.rules_for` in the order the server applies
them, which link targets and child tables they read, and how to coerce a computed value to
its field's type. :mod:`engine.api.prepare` applies them to every write (defaults,
``fetch_from``, computed fields, ``required_if``/``readonly_if``, workflow ``editable``,
validations, naming series); :func:`serve_virtuals` computes ``stored: false`` fields on
every read. :func:`field_rules_meta` and :func:`entity_rules_meta` describe them in
``/api/meta``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import has_request_context, request
from sqlalchemy.engine import Connection

from engine.expr import Context, EvalError, Expression
from engine.rules import rules_for
from metamodel import Entity, Model
from metamodel.spec import ValidationSpec, labels_of

from .codecs import Codec, field_codec, kind_of

if TYPE_CHECKING:
    from .context import ApiContext
    from .resource import Resource

log = logging.getLogger(__name__)

LANGUAGES = ("en", "es")
#: messages of the server's own checks, per language
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "required_if": "required while {rule}",
        "readonly_if": "cannot be changed while {rule}",
        "editable": "cannot be changed while the record is {state}",
        "requires": "needs a value to {action}",
        "guard": "the record does not allow {action}: {rule}",
        "unevaluable": "rule could not be evaluated: {rule}",
    },
    "es": {
        "required_if": "obligatorio cuando {rule}",
        "readonly_if": "no se puede cambiar cuando {rule}",
        "editable": "no se puede cambiar mientras el registro está {state}",
        "requires": "necesita un valor para {action}",
        "guard": "el registro no permite {action}: {rule}",
        "unevaluable": "no se pudo evaluar la regla: {rule}",
    },
}


def request_language() -> str:
    """``en`` or ``es``, the best match of the request's ``Accept-Language`` (default en)."""
    if not has_request_context():
        return "en"
    return request.accept_languages.best_match(LANGUAGES, default="en") or "en"


def text(lang: str, key: str, **values: Any) -> str:
    """One of the server's messages in ``lang``."""
    return TEXT.get(lang, TEXT["en"])[key].format(**values)


# --------------------------------------------------------------------------- values


def coerce(f: Any, value: Any) -> Any:
    """A computed value in its field's type (:meth:`engine.api.codecs.Kind.coerce`: an int
    field gets a whole number, a decimal its scale); values of the wrong kind become None
    with a warning."""
    if value is None:
        return None
    try:
        return kind_of(f).coerce(f, value)
    except (TypeError, ValueError, ArithmeticError):
        log.warning("computed value %r does not suit a %s field; stored as null", value,
                    f.type)
        return None


def blank(value: Any) -> bool:
    """No value: null, empty or all-space text, an empty list of rows."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return not value
    return False


def same(a: Any, b: Any) -> bool:
    """Equal as stored values (``Decimal('1.0') == 1``; a naive datetime is UTC; a bool
    equals only a bool)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        a = a if a.tzinfo else a.replace(tzinfo=dt.UTC)
        b = b if b.tzinfo else b.replace(tzinfo=dt.UTC)
    try:
        return bool(a == b)
    except (TypeError, ArithmeticError):
        return False


# --------------------------------------------------------------------------- compiled


@dataclass
class LinkTarget:
    """A link field whose target records the rules read (fetch_from or ``self.link.x``)."""

    entity: Entity
    table: sa.Table


@dataclass
class EntityRules:
    """The compiled rules of one entity, in the order they are applied."""

    entity: Entity
    table: sa.Table
    #: (name, field spec, expression) of computed fields (stored and virtual), dependency order
    computed: list[tuple[str, Any, Expression]] = field(default_factory=list)
    #: (name, field spec, expression) of ``'='`` defaults, field order
    defaults: list[tuple[str, Any, Expression]] = field(default_factory=list)
    required_if: dict[str, Expression] = field(default_factory=dict)
    readonly_if: dict[str, Expression] = field(default_factory=dict)
    validations: list[tuple[ValidationSpec, Expression]] = field(default_factory=list)
    #: transition index -> guard
    guards: dict[int, Expression] = field(default_factory=dict)
    #: field -> (link field, field of the linked record)
    fetched: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: link fields whose records are read, with their target
    links: dict[str, LinkTarget] = field(default_factory=dict)
    #: table fields whose rows the rules read
    tables: set[str] = field(default_factory=set)
    #: virtual fields (no column) with their output codec
    virtual: dict[str, Codec] = field(default_factory=dict)
    #: fields clients may not write (computed, fetched, workflow state, series field)
    derived: frozenset[str] = frozenset()
    #: the site's time zone (``CAMPO_TIMEZONE``): ``today()``, dates of datetimes, series
    tz: dt.tzinfo = dt.UTC

    @property
    def active(self) -> bool:
        """Whether any rule applies on write."""
        wf = self.entity.workflow
        return bool(self.computed or self.defaults or self.required_if or self.readonly_if
                    or self.validations or self.fetched or self.entity.series
                    or (wf is not None))

    def all_expressions(self) -> Iterable[Expression]:
        """Every compiled expression of the entity."""
        yield from (e for _, _, e in self.computed)
        yield from (e for _, _, e in self.defaults)
        yield from self.required_if.values()
        yield from self.readonly_if.values()
        yield from (e for _, e in self.validations)
        yield from self.guards.values()

    def virtual_links(self) -> set[str]:
        """Link fields the virtual fields read."""
        return {k for name, _, e in self.computed if name in self.virtual for k in e.refs.links}

    def virtual_tables(self) -> set[str]:
        """Table fields the virtual fields read."""
        return {k for name, _, e in self.computed if name in self.virtual
                for k in e.refs.children}


def compile_entity_rules(model: Model, metadata: sa.MetaData, ent: Entity) -> EntityRules:
    """The run-time rules of ``ent`` from the model's compiled expressions."""
    compiled = rules_for(model).entities.get(ent.qualname)
    out = EntityRules(ent, metadata.tables[ent.table], derived=ent.derived_fields())
    out.fetched = ent.fetched_fields()
    if compiled is not None:
        out.computed = [(n, ent.fields[n], e) for n, e in compiled.computed.items()]
        out.defaults = [(n, ent.fields[n], compiled.defaults[n]) for n in ent.fields
                        if n in compiled.defaults]
        out.required_if = dict(compiled.required_if)
        out.readonly_if = dict(compiled.readonly_if)
        out.validations = list(compiled.validations)
        out.guards = dict(compiled.guards)
    links = {link for link, _ in out.fetched.values()}
    for expr in out.all_expressions():
        links.update(expr.refs.links)
        out.tables.update(expr.refs.children)
    for link in sorted(links):
        target = model.entity(ent.targets[link])
        out.links[link] = LinkTarget(target, metadata.tables[target.table])
    out.virtual = {n: field_codec(n, f) for n, f, _ in out.computed if f.is_virtual}
    return out


# --------------------------------------------------------------------------- evaluation


def user_context(ctx: ApiContext) -> dict[str, Any]:
    """``user`` in expressions: the caller's id, name, effective roles and sites."""
    ident = ctx.current_identity()
    if ident is not None:
        return {"id": ident.get("id"), "username": ident.get("username"),
                "roles": sorted(ident.get("roles") or ()),
                "sites": sorted(ident.get("sites") or ())}
    return {"id": None, "username": ctx.current_user(), "roles": sorted(ctx.current_roles()),
            "sites": []}


class RuleError(Exception):
    """An expression could not be evaluated with the record's values."""

    def __init__(self, expr: Expression, err: EvalError) -> None:
        super().__init__(f"{expr.source}: {err}")
        self.expr = expr


def evaluate(expr: Expression, c: Context) -> Any:
    """The expression's value; an :class:`EvalError` becomes a :class:`RuleError`."""
    try:
        return expr.evaluate(c)
    except EvalError as err:
        raise RuleError(expr, err) from None


def compute(rules: EntityRules, c: Context, values: dict[str, Any]) -> None:
    """Set every computed field of ``values`` (``c.record`` is ``values``), in order."""
    for name, f, expr in rules.computed:
        try:
            values[name] = coerce(f, expr.evaluate(c))
        except EvalError as err:
            log.warning("%s.%s: computed value could not be evaluated (%s); null",
                        rules.entity.qualname, name, err)
            values[name] = None


def load_rows(conn: Connection, table: sa.Table, ids: Iterable[int | None],
              scope: sa.ColumnElement[bool] | None = None) -> dict[int, dict[str, Any]]:
    """Raw rows of ``table`` by id (one query); rows outside ``scope`` are left out."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    stmt = sa.select(table).where(table.c.id.in_(wanted))
    if scope is not None:
        stmt = stmt.where(scope)
    return {row.id: dict(row._mapping) for row in conn.execute(stmt)}


def load_children(conn: Connection, table: sa.Table, parent_ids: Sequence[int]
                  ) -> dict[int, list[dict[str, Any]]]:
    """Raw child rows per parent id, in ``idx`` order (one query)."""
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not parent_ids:
        return out
    stmt = (sa.select(table).where(table.c.parent_id.in_(sorted(set(parent_ids))))
            .order_by(table.c.parent_id, table.c.idx, table.c.id))
    for row in conn.execute(stmt):
        out[row.parent_id].append(dict(row._mapping))
    return out


def serve_virtuals(conn: Connection, ctx: ApiContext, res: Resource, rules: EntityRules,
                   rows: Sequence[Any], names: Sequence[str],
                   items: list[dict[str, Any]]) -> None:
    """Add the virtual computed fields to served ``items`` (``rows`` are their raw rows
    with columns ``names``); links and child rows they read are loaded in one query each."""
    if not rules.virtual or not items:
        return
    records = [dict(zip(names, row, strict=False)) for row in rows[:len(items)]]
    linked: dict[str, dict[int, dict[str, Any]]] = {}
    for link in rules.virtual_links():
        target = rules.links[link]
        linked[link] = load_rows(conn, target.table, (r.get(link) for r in records),
                                 ctx.row_filter(target.entity, target.table))
    kids: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for tname in rules.virtual_tables():
        kids[tname] = load_children(conn, res.children[tname].api.table,
                                    [r["id"] for r in records])
    user = user_context(ctx)
    for record, item in zip(records, items, strict=False):
        links = {k: v.get(record[k], {}) for k, v in linked.items() if record.get(k)}
        children = {k: v.get(record["id"], []) for k, v in kids.items()}
        c = Context(record=record, links=links, children=children, user=user, tz=rules.tz)
        for name, f, expr in rules.computed:
            if name not in rules.virtual:
                continue
            try:
                value = coerce(f, expr.evaluate(c))
            except EvalError as err:
                log.warning("%s.%s: virtual value could not be evaluated (%s); null",
                            rules.entity.qualname, name, err)
                value = None
            record[name] = value
            dump = rules.virtual[name].dump
            item[name] = value if value is None or dump is None else dump(value)


# --------------------------------------------------------------------------- /api/meta


def field_rules_meta(ent: Entity, name: str, f: Any) -> dict[str, Any]:
    """The rule keys of a field in ``/api/meta`` (expression texts, for forms)."""
    wf = ent.workflow
    return {
        "computed": f.computed, "stored": not f.is_virtual, "fetch_from": f.fetch_from,
        "default_expression": f.default_expression,
        "visible_if": f.visible_if, "required_if": f.required_if,
        "readonly_if": f.readonly_if,
        "readonly": name in ent.derived_fields(),
        "workflow_state": wf is not None and wf.field == name,
    }


def _labels(value: Any, fallback: str) -> dict[str, str]:
    lab = labels_of(value, fallback)
    return {"es": lab.get("es"), "en": lab.get("en")}


def entity_rules_meta(ent: Entity) -> dict[str, Any]:
    """The entity-level rules in ``/api/meta``: validations, workflow, naming series."""
    wf = ent.workflow
    workflow = None
    if wf is not None:
        workflow = {
            "field": wf.field, "initial": wf.initial,
            "states": [{"name": s.name, "label": {"es": s.labels.get("es"),
                                                   "en": s.labels.get("en")},
                        "color": s.color,
                        "editable": None if s.editable is None else sorted(s.editable)}
                       for s in wf.states.values()],
            "transitions": [{"action": t.action, "from": list(t.sources()), "to": t.to,
                             "roles": list(t.roles), "guard": t.guard,
                             "requires": list(t.requires),
                             "label": _labels(t.label, t.action)}
                            for t in wf.transitions],
        }
    series = ent.series
    return {
        "validations": [{"id": v.id, "rule": v.rule, "field": v.field,
                         "message": {"es": v.messages().get("es"),
                                     "en": v.messages().get("en")}}
                        for v in ent.validations],
        "workflow": workflow,
        "series": None if series is None else {"field": series.field,
                                               "template": series.template},
    }

