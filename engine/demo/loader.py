"""Load data sets (``demo/*.yaml``, :mod:`engine.demo.language`) through the REST API.

Every record is created by ``POST /api/<module>/<entity>`` and moved by
``POST .../actions/<action>``, in-process but through the whole HTTP stack (gateway, auth
with an API key of the ``campo-demo`` service account, validation, the model's rules and
workflows, scopes, audit): the data is exactly what users could have typed. Idempotent: a
record whose ``key`` value exists is not created again, only its remaining actions run.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from flask.testing import FlaskClient

from engine.errors import UserError
from engine.expr import Context, ExprError, Expression, FieldType, Scope, Type, compile
from metamodel import Model

from .language import DataSet, Step, combinations

log = logging.getLogger(__name__)
SERVICE_USER = "campo-demo"
#: records per bulk request (steps without actions are created in bulk)
BULK = 200
_TYPES = {bool: Type.BOOL, int: Type.NUMBER, float: Type.NUMBER, Decimal: Type.NUMBER,
          str: Type.STRING, dt.date: Type.DATE, dt.datetime: Type.DATETIME}


class Progress:
    """A one-line progress bar on a text stream (redrawn at most 10 times a second)."""

    def __init__(self, total: int, out: TextIO, width: int = 30) -> None:
        self.total, self.out, self.width = max(total, 1), out, width
        self.done, self.label, self._drawn = 0, "", 0.0

    def step(self, label: str, n: int = 1) -> None:
        self.done += n
        self.label = label
        now = time.monotonic()
        if now - self._drawn > 0.1 or self.done >= self.total:
            self._drawn = now
            filled = int(self.width * self.done / self.total)
            self.out.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] "
                           f"{self.done}/{self.total} {label:<40.40}")
            self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return value


class StepRunner:
    """Evaluates one step's expressions (compiled once) for each loop assignment."""

    def __init__(self, step: Step, where: str) -> None:
        self.step, self.where = step, where
        self.cache: dict[str, Expression] = {}
        first = next(combinations(step), {})
        self.types = {k: FieldType(_TYPES.get(type(v), Type.ANY)) for k, v in first.items()}
        for name, value in step.let.items():
            expr = self.compile(value, f"let.{name}") if _is_expr(value) else None
            self.types[name] = FieldType(expr.type if expr is not None else
                                         _TYPES.get(type(value), Type.ANY))
        self.when = self._condition(step.when, "when")
        self.actions_if = self._condition(step.actions_if, "actions_if")

    def _condition(self, source: str | None, what: str) -> Expression | None:
        if not source:
            return None
        return self.compile(source if source.startswith("=") else "=" + source, what)

    def run_actions(self, env: dict[str, Any]) -> bool:
        """Whether the step's actions run for this assignment."""
        return self.actions_if is None or bool(self.actions_if.evaluate(Context(variables=env)))

    def compile(self, source: str, what: str) -> Expression:
        if source not in self.cache:
            try:
                self.cache[source] = compile(source[1:], Scope(variables=self.types, user=None))
            except ExprError as err:
                raise UserError(f"{self.where}: {what}: {source[1:]}: {err}") from None
        return self.cache[source]

    def variables(self, assignment: dict[str, Any]) -> dict[str, Any] | None:
        """The loop values plus the ``let`` names; None when ``when`` is false."""
        env = dict(assignment)
        for name, value in self.step.let.items():
            env[name] = self.value(value, env, f"let.{name}")
        if self.when is not None and not self.when.evaluate(Context(variables=env)):
            return None
        return env

    def value(self, value: Any, env: dict[str, Any], what: str) -> Any:
        if isinstance(value, dict):
            return {k: self.value(v, env, f"{what}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            rows = [self.value(v, env, f"{what}[{i}]") for i, v in enumerate(value)]
            return [{k: v for k, v in r.items() if k != "_if"} if isinstance(r, dict) else r
                    for r in rows if not (isinstance(r, dict) and r.get("_if") is False)]
        if _is_expr(value):
            return self.compile(value, what).evaluate(Context(variables=env))
        return value


def key_text(values: list[Any]) -> str:
    """One text for a record's key values (as the API serves them)."""
    return "\x1f".join("" if v is None else str(v) for v in values)


def _is_expr(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("=")


class ApiWriter:
    """Creates records and runs actions through the API, resolving links by naming value."""

    def __init__(self, client: FlaskClient, headers: dict[str, str], model: Model) -> None:
        self.client, self.headers, self.model = client, headers, model
        self.ids: dict[tuple[str, str], int] = {}
        self.created = self.skipped = self.actions = 0

    def url(self, qual: str) -> str:
        return "/api/" + qual.replace(".", "/")

    def call(self, method: str, url: str, body: Any = None) -> Any:
        r = self.client.open(url, method=method, json=body, headers=self.headers)
        if r.status_code >= 400:
            detail = r.json if r.is_json else r.data[:300]
            raise UserError(f"{method} {url}: {r.status_code} {detail}")
        return r.json

    def existing(self, qual: str, keys: list[str]) -> dict[str, int]:
        """Key value(s) -> id of the records of ``qual`` (one export request)."""
        rows = self.call("GET", f"{self.url(qual)}/export?format=json&fields=id,"
                         + ",".join(keys))
        return {key_text([r[k] for k in keys]): int(r["id"]) for r in rows}

    def link_id(self, target: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if (target, value) not in self.ids:
            ent = self.model.entities[target]
            naming = ent.spec.naming.field if ent.spec.naming else None
            if naming is None:
                raise UserError(f"{target} has no naming field: give its id, not '{value}'")
            for key, rid in self.existing(target, [naming]).items():
                self.ids[(target, key)] = rid
            if (target, value) not in self.ids:
                raise UserError(f"no {target} named '{value}'")
        return self.ids[(target, value)]

    def resolve(self, qual: str, values: dict[str, Any]) -> dict[str, Any]:
        ent = self.model.entities[qual]
        out = {}
        for name, value in values.items():
            f = ent.fields.get(name)
            if f is not None and f.type == "link" and value is not None:
                value = self.link_id(ent.targets[name], value)
            elif f is not None and f.type == "table" and isinstance(value, list):
                value = [self.resolve(ent.targets[name], row) for row in value]
            out[name] = value
        return out

    def run_actions(self, qual: str, record_id: int, wanted: list[str]) -> None:
        base = f"{self.url(qual)}/{record_id}/actions"
        for action in wanted:
            offered = {a["action"]: a for a in self.call("GET", base)["actions"]}
            if action in offered and offered[action]["allowed"] and offered[action]["ready"]:
                self.call("POST", f"{base}/{action}", {"comment": "demo data"})
                self.actions += 1


def _flush(writer: ApiWriter, entity: str, pending: list[tuple[str, dict[str, Any]]],
           have: dict[str, int], bar: Progress) -> None:
    """Create the pending records of ``entity`` in one bulk request."""
    if not pending:
        return
    items = writer.call("POST", writer.url(entity) + "/bulk",
                        [body for _, body in pending])["items"]
    for (key, _), item in zip(pending, items, strict=True):
        have[key] = int(item["id"])
    writer.created += len(pending)
    bar.step(entity, len(pending))
    pending.clear()


def run_steps(writer: ApiWriter, sets: list[tuple[Path, DataSet]], out: TextIO) -> None:
    """Create every record of every step, with a progress bar on ``out``."""
    plans: list[tuple[str, Step, StepRunner, list[dict[str, Any]]]] = []
    for path, data in sets:
        for i, step in enumerate(data.steps):
            where = f"{path.name}: steps[{i}] ({step.entity})"
            if step.entity not in writer.model.entities:
                raise UserError(f"{where}: unknown entity '{step.entity}'")
            runner = StepRunner(step, where)
            envs = [e for a in combinations(step) if (e := runner.variables(a)) is not None]
            plans.append((where, step, runner, envs))
    total = sum(len(envs) * max(len(step.records), 1) for _, step, _, envs in plans)
    bar = Progress(total, out)
    for where, step, runner, envs in plans:
        have = writer.existing(step.entity, step.keys)
        pending: list[tuple[str, dict[str, Any]]] = []   # (key, body) for one bulk request

        for env in envs:
            for literal in step.records or [{}]:
                literal = dict(literal)
                actions = literal.pop("_actions", step.actions)
                values = writer.resolve(step.entity,
                                        runner.value({**step.values, **literal}, env, "values"))
                missing = [k for k in step.keys if values.get(k) is None]
                if missing:
                    raise UserError(f"{where}: the record has no value for key {missing}")
                key = key_text([_jsonable(values[k]) for k in step.keys])
                rid = have.get(key)
                if rid is None and not actions and all(k != key for k, _ in pending):
                    pending.append((key, _jsonable(values)))     # created in bulk, in order
                    if len(pending) >= BULK:
                        _flush(writer, step.entity, pending, have, bar)
                    continue
                if rid is None:
                    rid = int(writer.call("POST", writer.url(step.entity), _jsonable(values))["id"])
                    have[key] = rid
                    writer.created += 1
                else:
                    writer.skipped += 1
                if actions and runner.run_actions(env):
                    writer.run_actions(step.entity, rid, actions)
                bar.step(step.entity)
        _flush(writer, step.entity, pending, have, bar)
    bar.close()


def load_demo(model: Model, engine: sa.Engine, settings: Any, folder: Path,
              out: TextIO = sys.stderr, make_app: Callable[..., Any] | None = None
              ) -> dict[str, int]:
    """Load the data sets of ``folder`` as the ``campo-demo`` service account; return counts."""
    from engine.api import create_app
    from engine.auth.apikeys import create_api_key, revoke_api_key
    from engine.auth.hooks import api_hooks, auth_init_hook
    from engine.auth.tables import user_table
    from engine.auth.users import create_user

    from .language import load_data_sets

    sets = load_data_sets(folder)
    if not sets:
        raise UserError(f"{folder}: no data sets (*.yaml) here")
    settings = settings.model_copy(update={"api_rate_limit": "1000000 per minute"})
    app = (make_app or create_app)(model, engine, settings, **api_hooks(),
                                   on_init=[auth_init_hook(engine, settings, model)])
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        uid = conn.execute(sa.select(user_table.c.id).where(
            user_table.c.username == SERVICE_USER)).scalar()
        if uid is None:
            uid = create_user(conn, model, username=SERVICE_USER, now=now, roles=["admin"],
                              sites=["*"], is_service=True, display_name="Demo data loader")
        key_id, key = create_api_key(conn, uid, "campo demo load", now,
                                     expires_at=now + dt.timedelta(hours=6))
    writer = ApiWriter(app.test_client(), {"X-API-Key": key}, model)
    try:
        run_steps(writer, sets, out)
    finally:
        with engine.begin() as conn:
            revoke_api_key(conn, key_id, dt.datetime.now(dt.UTC))
    return {"created": writer.created, "existing": writer.skipped, "actions": writer.actions}
