"""What the caller may see and change, applied by the generated views.

Three kinds of rule from the model, all evaluated for the caller of the current request
through the hooks of :mod:`engine.api.access`:

- **field rules** (``hidden_for``/``readonly_for`` on a field): a hidden field is left out of
  records, expansions, exports and ``/api/meta``; naming it in a filter, sort, ``fields=``,
  ``expand=`` or a body is the same mistake as naming an unknown field (400/422). A read-only
  field may be sent back unchanged; a write that changes it is a 403 naming the field.
- **row scopes** (``scope:`` on an entity, ``ctx.scope(res)``): added to the ``WHERE`` of every
  read; a record outside the scope is a 404 for gets, updates and deletes; an expanded link to
  one is ``null``; linking to one is a 422; a write whose result would leave the scope is a 403.
- **audit**: every write calls ``ctx.record_change`` once per record in its transaction, and
  every 403 decided here is audited through ``ctx.record_denial`` after the rollback.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from werkzeug.datastructures import MultiDict

from metamodel import Entity

from .access import no_audit
from .codecs import Codec, default_value
from .errors import ApiError
from .query import ListQuery, QueryError, parse_list_query
from .reads import get_record
from .resource import Resource

if TYPE_CHECKING:
    from .context import ApiContext

log = logging.getLogger(__name__)


class Denied(ApiError):
    """A 403 decided by the API (read-only field, write outside the scope); the view audits
    it with :func:`deny` once the write's transaction is rolled back."""

    def __init__(self, message: str, action: str, record_id: Any = None) -> None:
        super().__init__(403, message)
        self.action = action
        self.record_id = record_id


def deny(ctx: ApiContext, res: Resource, err: Denied) -> NoReturn:
    """Audit ``err`` (own transaction) and raise it (the 403 answer)."""
    ctx.record_denial(res.entity, err.action, err.message, err.record_id)
    raise err


# --------------------------------------------------------------------------- field rules


@dataclass(frozen=True)
class FieldRules:
    """The fields of one entity the caller may not see, and may not change."""

    hidden: frozenset[str]
    readonly: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.hidden or self.readonly)


NO_RULES = FieldRules(frozenset(), frozenset())
_RULES: dict[tuple[int, frozenset[str]], tuple[Entity, FieldRules]] = {}


def rules_of(ent: Entity, roles: frozenset[str]) -> FieldRules:
    """The field rules of ``ent`` for a caller holding ``roles`` (inherited included)."""
    key = (id(ent), roles)
    hit = _RULES.get(key)
    if hit is not None and hit[0] is ent:
        return hit[1]
    hidden = frozenset(n for n, f in ent.fields.items()
                       if f.hidden_for and not roles.isdisjoint(f.hidden_for))
    readonly = frozenset(n for n, f in ent.fields.items()
                         if f.readonly_for and not roles.isdisjoint(f.readonly_for)) - hidden
    rules = FieldRules(hidden, readonly) if hidden or readonly else NO_RULES
    if len(_RULES) > 4096:
        _RULES.clear()
    _RULES[key] = (ent, rules)
    return rules


def field_rules(ctx: ApiContext, ent: Entity) -> FieldRules:
    """The field rules of ``ent`` for the caller of the current request."""
    if not any(f.hidden_for or f.readonly_for for f in ent.fields.values()):
        return NO_RULES
    return rules_of(ent, ctx.current_roles())


def allowed_actions(ctx: ApiContext, ent: Entity) -> list[str]:
    """The actions the caller's roles allow on ``ent`` (no audit: nothing is refused)."""
    roles = ctx.current_roles()
    return sorted(set().union(*(ent.permissions.get(r, ()) for r in roles)))


# --------------------------------------------------------------------------- reads


def _query_error(param: str, message: str) -> ApiError:
    return ApiError(400, message, {"query": {param: [message]}})


def list_query(ctx: ApiContext, res: Resource, args: MultiDict[str, str], *,
               max_limit: int | None = None) -> ListQuery:
    """A list request's query, checked against the caller's field rules, with the caller's
    row scope in ``where`` (so counts and estimates see only visible rows)."""
    settings = ctx.settings
    try:
        q = parse_list_query(res, args, default_limit=settings.default_page_size,
                             max_limit=max_limit or settings.max_page_size,
                             dialect=ctx.engine.dialect.name,
                             hidden=field_rules(ctx, res.entity).hidden)
    except QueryError as err:
        raise _query_error(err.param, err.message) from None
    clause = ctx.scope(res)
    if clause is not None:
        q.where.append(clause)
    return q


def visible(ctx: ApiContext, conn: Connection, res: Resource, record_id: int, *,
            lock: bool = False) -> bool | None:
    """Whether the record exists inside the caller's scope; None when there is no scope
    to check (the caller sees every row) and ``lock`` is false."""
    clause = ctx.scope(res)
    if clause is None and not lock:
        return None
    t = res.table
    stmt = sa.select(t.c.id).where(t.c.id == record_id)
    if clause is not None:
        stmt = stmt.where(clause)
    if lock:
        stmt = stmt.with_for_update(of=t)
    return conn.execute(stmt).first() is not None


def strip(ctx: ApiContext, res: Resource, items: Sequence[dict[str, Any]]) -> None:
    """Remove the fields hidden from the caller from served records (in place; child
    entities have no field rules of their own: a table field is hidden whole)."""
    strip_fields(ctx, res.entity, items)


def strip_fields(ctx: ApiContext, ent: Entity, items: Sequence[dict[str, Any]]) -> None:
    """Remove the fields of ``ent`` hidden from the caller from ``items`` (in place)."""
    hidden = field_rules(ctx, ent).hidden
    if hidden:
        for item in items:
            for name in hidden:
                item.pop(name, None)


def shape(ctx: ApiContext, conn: Connection, res: Resource,
          items: Sequence[dict[str, Any]]) -> None:
    """Apply the caller's rules to served records: hidden fields removed, expanded links to
    records outside the caller's scope (or to entities they may not read) set to null."""
    strip(ctx, res, items)
    expanded = [item["_expanded"] for item in items if "_expanded" in item]
    if not expanded:
        return
    for name in expanded[0]:
        target = ctx.resources.get(res.links.get(name, ""))
        if target is None:
            continue
        records = [e[name] for e in expanded if e.get(name) is not None]
        clause = ctx.scope(target)
        if clause is not None and records:
            ids = sorted({r["id"] for r in records})
            t = target.table
            seen = set(conn.execute(sa.select(t.c.id).where(t.c.id.in_(ids), clause))
                       .scalars())
            for e in expanded:
                if e.get(name) is not None and e[name]["id"] not in seen:
                    e[name] = None
        strip(ctx, target, [e[name] for e in expanded if e.get(name) is not None])


def get_visible(ctx: ApiContext, conn: Connection, res: Resource, record_id: int
                ) -> dict[str, Any] | None:
    """One record as the caller may see it, or None (missing or outside the scope)."""
    if visible(ctx, conn, res, record_id) is False:
        return None
    item = get_record(conn, res, record_id)
    if item is not None:
        strip(ctx, res, [item])
    return item


# --------------------------------------------------------------------------- writes


def _dumped(codecs: Mapping[str, Codec], name: str, value: Any) -> Any:
    codec = codecs.get(name)
    if value is None or codec is None or codec.dump is None:
        return value
    return codec.dump(value)


def _rows_dumped(res: Resource, name: str, rows: Any) -> list[dict[str, Any]]:
    child = res.children[name]
    fields = child.api.entity.stored_fields()
    return [{"id": r.get("id"), **{f: _dumped(child.api.codecs, f, r.get(f)) for f in fields}}
            for r in rows or ()]


def _differs(res: Resource, name: str, value: Any, current: Any) -> bool:
    """Whether a validated input value changes the served value ``current``."""
    if name in res.children:
        return _rows_dumped(res, name, value) != _rows_dumped(res, name, current)
    return bool(_dumped(res.api.codecs, name, value) != current)


def check_body(ctx: ApiContext, res: Resource, body: Any) -> Any:
    """422 when a body names a field hidden from the caller (as for an unknown field)."""
    hidden = field_rules(ctx, res.entity).hidden
    if hidden and isinstance(body, dict):
        named = sorted(n for n in body if n in hidden)
        if named:
            raise ApiError(422, "invalid input: " + ", ".join(named),
                           {"json": {n: ["Unknown field."] for n in named}})
    return body


def update_body(ctx: ApiContext, res: Resource, body: Any, record_id: int, *,
                partial: bool) -> Any:
    """Check a PUT/PATCH body against the field rules; a PUT leaves out what the caller
    cannot see or change, so those fields keep their values (read here, as served)."""
    check_body(ctx, res, body)
    rules = field_rules(ctx, res.entity)
    if partial or not rules or not isinstance(body, dict):
        return body
    keep = (rules.hidden | rules.readonly) - res.entity.derived_fields() - set(body)
    if not keep:
        return body
    with ctx.engine.connect() as conn:
        current = get_record(conn, res, record_id)
    if current is None:
        raise ApiError(404, f"{res.qualname} {record_id} not found")
    return {**body, **{n: current[n] for n in keep if n in current}}


def check_readonly(ctx: ApiContext, res: Resource, items: Sequence[Mapping[str, Any]],
                   before: Mapping[str, Any] | None, action: str,
                   record_id: Any = None) -> None:
    """:class:`Denied` when an item changes a field that is read-only for the caller
    (on create: sets it to something else than its default)."""
    readonly = field_rules(ctx, res.entity).readonly
    if not readonly:
        return
    for data in items:
        for name in sorted(readonly):
            if name not in data:
                continue
            if before is not None:
                current = before.get(name)
            elif name in res.children:
                current = []
            else:
                current = _dumped(res.api.codecs, name, default_value(res.entity.fields[name]))
            if _differs(res, name, data[name], current):
                raise Denied(f"field '{name}' is read-only for your roles", action, record_id)


def check_links(ctx: ApiContext, conn: Connection, res: Resource,
                items: Sequence[Mapping[str, Any]], *, bulk: bool,
                before: Mapping[str, Any] | None = None) -> None:
    """422 when an item links to a record outside the caller's scope of the target (one
    query per scoped target entity, whatever the number of rows). Links an update leaves
    as they were (``before``) are not checked: keeping a link is not making one."""
    scopes: dict[str, sa.ColumnElement[bool] | None] = {}

    def scope_of(target: str) -> sa.ColumnElement[bool] | None:
        if target not in scopes:
            tres = ctx.resources.get(target)
            scopes[target] = ctx.scope(tres) if tres is not None else None
        return scopes[target]

    old = before or {}
    wanted: dict[str, set[int]] = defaultdict(set)
    uses: list[tuple[int, str, str, int]] = []
    for i, data in enumerate(items):
        for name, target in res.links.items():
            value = data.get(name)
            if value is not None and value != old.get(name) and scope_of(target) is not None:
                wanted[target].add(value)
                uses.append((i, name, target, value))
        for tname, child in res.children.items():
            kept = {(r.get("id"), f, r.get(f)) for r in old.get(tname) or ()
                    for f in child.api.entity.targets}
            for r, row in enumerate(data.get(tname) or ()):
                for fname, target in child.api.entity.targets.items():
                    value = row.get(fname)
                    if value is not None and (row.get("id"), fname, value) not in kept \
                            and scope_of(target) is not None:
                        wanted[target].add(value)
                        uses.append((i, f"{tname}.{r}.{fname}", target, value))
    if not uses:
        return
    seen: dict[str, set[int]] = {}
    for target, ids in wanted.items():
        t = ctx.resources[target].table
        seen[target] = set(conn.execute(sa.select(t.c.id).where(
            t.c.id.in_(sorted(ids)), scope_of(target))).scalars())  # type: ignore[arg-type]
    errors: dict[int, dict[str, list[str]]] = defaultdict(dict)
    for i, key, target, value in uses:
        if value not in seen[target]:
            errors[i][key] = [f"{target} {value} does not exist or is outside your scope"]
    if errors:
        names = sorted({k.split(".")[0] for e in errors.values() for k in e})
        raise ApiError(422, "link to a record you cannot see: " + ", ".join(names),
                       {"json": dict(errors) if bulk else errors[min(errors)]})


def check_in_scope(ctx: ApiContext, conn: Connection, res: Resource, ids: Sequence[int],
                   action: str) -> None:
    """:class:`Denied` when a written record is outside the caller's scope afterwards."""
    clause = ctx.scope(res)
    if clause is None or not ids:
        return
    t = res.table
    inside = set(conn.execute(sa.select(t.c.id).where(t.c.id.in_(list(ids)), clause))
                 .scalars())
    outside = [i for i in ids if i not in inside]
    if outside:
        raise Denied(f"missing permission: {action} of a record outside your scope of "
                     f"{res.qualname}", action, outside[0] if len(ids) == 1 else None)


def auditing(ctx: ApiContext) -> bool:
    """Whether writes are audited (an auth-enabled app)."""
    return ctx.record_change is not no_audit


def before_write(ctx: ApiContext, conn: Connection, res: Resource, record_id: int
                 ) -> dict[str, Any] | None:
    """The record before an update or delete, locked (PostgreSQL), as served; 404 when it
    is missing or outside the caller's scope. None when nothing needs it (no audit, no
    scope, no field rules): the write itself answers 404 then."""
    need = auditing(ctx) or bool(field_rules(ctx, res.entity))
    if not need and ctx.scope(res) is None:
        return None
    if not visible(ctx, conn, res, record_id, lock=True):
        raise ApiError(404, f"{res.qualname} {record_id} not found")
    return get_record(conn, res, record_id)


# --------------------------------------------------------------------------- /api/meta


def meta_for(ctx: ApiContext, ent: Entity, meta: dict[str, Any]) -> dict[str, Any] | None:
    """``meta`` (the prebuilt description of ``ent``) as the caller may see it, or None when
    they may not read the entity (a child entity: its parent). Adds ``allowed`` (the
    caller's actions) and ``readonly_fields``; fields hidden from the caller are left out."""
    owner = ctx.model.entity(ent.parent[0]) if ent.parent is not None else ent
    allowed = allowed_actions(ctx, owner)
    if "read" not in allowed:
        return None
    rules = field_rules(ctx, ent)
    out = {**meta, "allowed": allowed, "readonly_fields": sorted(rules.readonly)}
    if rules.hidden:
        out["fields"] = [f for f in meta["fields"] if f["name"] not in rules.hidden]
    return out
