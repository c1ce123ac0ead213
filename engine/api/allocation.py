"""``POST /api/<module>/<entity>/<id>/allocations/<name>[?dry_run=true]``: distribute a
record's measured totals over matching rows of another entity (``allocations:`` in YAML).

For each ``split``, row *i* gets ``total * w_i / sum(w)`` rounded to the ``into`` field's
scale by the largest-remainder method (:func:`largest_remainder`), so the shares add up to
the total exactly. The rows are the records of ``rows`` whose ``match`` fields equal the
record's; every one must be inside the caller's row scope (else 403: a partial allocation
would not add up). Shares are written through the write gate (:mod:`engine.api.gate`: the
model's rules, scope checks, one audit row per record, action ``allocation.<name>``) in one
transaction with the record's own ``factor``/``count_into`` fields. ``dry_run`` computes
and answers without writing.
"""

from __future__ import annotations

import logging
import math
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, request
from flask_smorest import Blueprint

from engine.expr import Context, EvalError
from engine.rules import capabilities_for
from engine.rules.capabilities import CompiledAllocation

from .errors import ApiError, json_response
from .gate import Write, write
from .openapi import ID_PARAMETER

if TYPE_CHECKING:
    from .context import ApiContext
    from .resource import Resource

log = logging.getLogger(__name__)


def largest_remainder(total: Decimal, weights: list[Decimal], scale: int) -> list[Decimal]:
    """Shares of ``total`` proportional to ``weights``, each a multiple of ``10**-scale``,
    adding up exactly to ``total`` rounded to that scale.

    Each share starts as the exact share rounded down; the units left over go one each to
    the largest remainders (ties: the larger weight, then the earlier row).
    """
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    wsum = sum((Fraction(w) for w in weights), Fraction(0))
    if wsum == 0:
        raise ValueError("the weights add up to zero")
    quantum = Decimal(1).scaleb(-scale)
    units = int((total / quantum).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    exact = [Fraction(units) * Fraction(w) / wsum for w in weights]
    floors = [math.floor(e) for e in exact]
    left = units - sum(floors)
    order = sorted(range(len(weights)),
                   key=lambda i: (-(exact[i] - floors[i]), -Fraction(weights[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [(Decimal(f) * quantum).quantize(quantum) for f in floors]


def _number(value: Any, what: str) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ApiError(422, f"{what} is not a number")
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def _scale(res: Resource, name: str) -> int:
    f = res.entity.fields[name]
    return int(getattr(f, "scale", 0) or 0) if f.type == "decimal" else 0


def _may_run(ctx: ApiContext, res: Resource, alloc: CompiledAllocation) -> None:
    roles = alloc.spec.roles
    if roles is None:
        ctx.check(res, "update")
        return
    held = ctx.current_roles()
    if "admin" not in held and not (set(roles) & set(held)):
        message = (f"not allowed to run allocation {alloc.name} on {res.qualname}: it needs "
                   f"the role {' or '.join(roles)}")
        ctx.record_denial(res.entity, f"allocation.{alloc.name}", message)
        raise ApiError(403, message)


def run_allocation(ctx: ApiContext, res: Resource, record_id: int, name: str) -> Response:
    """Compute (and unless ``dry_run``, write) one allocation of one record."""
    alloc = capabilities_for(ctx.model).allocations.get((res.qualname, name))
    if alloc is None:
        raise ApiError(404, f"{res.qualname} has no allocation '{name}'")
    rows_res = ctx.resources[alloc.spec.rows if "." in alloc.spec.rows
                             else f"{res.entity.module}.{alloc.spec.rows}"]
    ctx.check(res, "read")
    _may_run(ctx, res, alloc)
    ctx.check(rows_res, "update")
    dry = (request.args.get("dry_run") or "").lower() in ("1", "true", "yes")
    user = ctx.current_user()
    identity = ctx.current_identity()
    with ctx.engine.begin() as conn:
        t = res.table
        stmt = sa.select(t).where(t.c.id == record_id)
        scope = ctx.scope(res)
        if scope is not None:
            stmt = stmt.where(scope)
        src = conn.execute(stmt).mappings().first()
        if src is None:
            raise ApiError(404, f"{res.qualname} {record_id} not found")
        record = dict(src)
        if alloc.when is not None and not alloc.when.evaluate(
                Context(record=record, user=identity)):
            raise ApiError(422, f"allocation {name} cannot run now: {alloc.spec.when}",
                           {"json": {"_guard": [f"not met: {alloc.spec.when}"]}})
        rt = rows_res.table
        cond = [rt.c[rf] == record[own] for rf, own in alloc.spec.match.items()]
        rows = [dict(r) for r in conn.execute(sa.select(rt).where(*cond).order_by(rt.c.id))
                .mappings()]
        row_scope = ctx.scope(rows_res)
        if row_scope is not None:
            seen = conn.execute(sa.select(sa.func.count()).select_from(rt)
                                .where(*cond, row_scope)).scalar_one()
            if seen != len(rows):
                raise ApiError(403, f"{len(rows) - seen} of the {len(rows)} {rows_res.qualname} "
                               f"records of this allocation are outside your scope")
        if not rows:
            raise ApiError(422, f"no {rows_res.qualname} records match "
                           + ", ".join(f"{rf} = {record[own]}"
                                       for rf, own in alloc.spec.match.items()),
                           {"json": {"_rows": ["nothing to allocate to"]}})
        shares: dict[int, dict[str, Decimal]] = {r["id"]: {} for r in rows}
        own: dict[str, Any] = {}
        splits = []
        for sp, wexpr in zip(alloc.spec.split, alloc.weights, strict=True):
            try:
                weights = [_number(wexpr.evaluate(Context(record=r, user=identity)),
                                   f"the weight of {rows_res.qualname} {r['id']}") for r in rows]
            except EvalError as err:
                raise ApiError(422, f"weight of {sp.into}: {err}") from None
            total = _number(record[sp.total], sp.total)
            try:
                values = largest_remainder(total, weights, _scale(rows_res, sp.into))
            except ValueError as err:
                raise ApiError(422, f"cannot allocate {sp.total}: {err}",
                               {"json": {sp.total: [str(err)]}}) from None
            for r, v in zip(rows, values, strict=True):
                shares[r["id"]][sp.into] = v
            wsum = sum(weights, Decimal(0))
            factor = None
            if sp.factor is not None:
                factor = (total / wsum).quantize(Decimal(1).scaleb(-_scale(res, sp.factor)),
                                                 rounding=ROUND_HALF_EVEN)
                own[sp.factor] = factor
            splits.append({"total": sp.total, "into": sp.into, "measured": str(total),
                           "weight_sum": str(wsum), "factor": None if factor is None
                           else str(factor), "allocated": str(sum(values, Decimal(0)))})
        if alloc.spec.count_into is not None:
            own[alloc.spec.count_into] = len(rows)
        if not dry:
            for row_id, values in shares.items():
                write(ctx, conn, rows_res, Write(kind="update", record_id=row_id, items=[{}],
                                                 data=values, partial=True, user=user,
                                                 action=f"allocation.{name}"))
            if own:
                write(ctx, conn, res, Write(kind="update", record_id=record_id, items=[{}],
                                            data=own, partial=True, user=user,
                                            action=f"allocation.{name}"))
        log.info("allocation %s of %s %s over %d %s rows%s", name, res.qualname, record_id,
                 len(rows), rows_res.qualname, " (dry run)" if dry else "")
    return json_response({
        "allocation": name, "record": record_id, "rows_entity": rows_res.qualname,
        "dry_run": dry, "splits": splits,
        "rows": [{"id": rid, **{k: str(v) for k, v in vals.items()}}
                 for rid, vals in shares.items()]})


def add_allocation_routes(ctx: ApiContext, res: Resource, blp: Blueprint) -> None:
    """Register ``/<entity>/<id>/allocations/<name>`` when the entity declares any."""
    if not res.entity.spec.allocations:
        return
    ent = res.entity.name
    names = sorted(res.entity.spec.allocations)

    def run(record_id: int, allocation: str) -> Response:
        return run_allocation(ctx, res, record_id, allocation)

    doc = Blueprint.doc(
        summary=f"Allocate a {res.entity.labels.get('en')} record's totals",
        tags=[res.entity.module],
        description="Distributes measured totals over the matching rows in proportion to "
                    "their weights; the shares add up exactly (largest remainder). "
                    "?dry_run=true computes without writing.",
        parameters=[{"in": "query", "name": "dry_run", "schema": {"type": "boolean"},
                     "description": "compute only"}],
        responses={"200": {"description": "the totals, factors and each row's shares"},
                   "403": "FORBIDDEN", "404": "NOT_FOUND", "422": "UNPROCESSABLE_ENTITY"})
    blp.route(f"/{ent}/<id:record_id>/allocations/<any({', '.join(names)}):allocation>",
              endpoint=f"{ent}_allocation", methods=["POST"],
              parameters=[ID_PARAMETER, {"in": "path", "name": "allocation", "required": True,
                                         "schema": {"type": "string", "enum": names}}])(doc(run))
