"""``POST /api/desk/import/<module>/<entity>[?dry_run=true]``: CSV import with a dry run.

The body is CSV (UTF-8, a header row of field names or labels). Every row goes through
the same steps as a create (``engine.api``: input validation, field rules, scoped link
checks, the model's rules, naming series, constraints, audit), each in its own savepoint
of ONE transaction, so every row's errors are found, not only the first. The transaction
is committed only when it is not a dry run and no row failed: an import is all or nothing.

Cells are read with the field's type: numbers, ``true``/``false``/``sí``/``no``, ISO dates,
JSON; an empty cell is null; a link cell takes the linked record's id or the value of its
naming field (``PZ-12``); the ``'`` that exports put before formula-like text is removed.
System columns (``id``, ``created_at``...) are ignored, so an export can be imported again.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, request
from flask_smorest import Blueprint

from engine.api import gate, security
from engine.api.body import validate
from engine.api.context import ApiContext
from engine.api.errors import ApiError, json_response
from engine.api.naming import begin_write
from engine.api.resource import Resource
from engine.api.rules import request_language
from engine.api.writes import explain_integrity
from metamodel.spec import labels_of

from .context import ctx, hidden_fields, readable

if TYPE_CHECKING:
    from .plugin import DeskPlugin

SYSTEM = frozenset({"id", "created_at", "created_by", "updated_at", "updated_by", "version"})
_TRUE = {"true", "1", "yes", "y", "si", "sí", "verdadero", "x"}
_FALSE = {"false", "0", "no", "n", "falso"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
MAX_ROWS = 10_000
TEXT = {
    "en": {"int": "not a whole number", "float": "not a number", "bool": "not true/false",
           "json": "not valid JSON", "link": "no {target} named '{value}'",
           "table": "child tables cannot be imported from CSV",
           "unknown": "unknown column '{name}'", "ignored": "column '{name}' is ignored"},
    "es": {"int": "no es un número entero", "float": "no es un número",
           "bool": "no es verdadero/falso", "json": "no es JSON válido",
           "link": "no hay {target} llamado '{value}'",
           "table": "las tablas hijas no se importan desde CSV",
           "unknown": "columna desconocida '{name}'", "ignored": "se ignora la columna '{name}'"},
}


def _t(lang: str, key: str, **kw: Any) -> str:
    return TEXT.get(lang, TEXT["en"])[key].format(**kw)


def header_map(res: Resource, header: list[str], hidden: frozenset[str], lang: str
               ) -> tuple[dict[int, str], list[str], list[str]]:
    """Column index -> field name; problems that stop the import; ignored columns."""
    by_label: dict[str, str] = {}
    for name, f in res.entity.fields.items():
        if name in hidden:
            continue
        by_label[name.lower()] = name
        lab = labels_of(f.label, name)
        for text in (lab.es, lab.en):
            if text:
                by_label.setdefault(str(text).strip().lower(), name)
    cols: dict[int, str] = {}
    problems, ignored = [], []
    for i, raw in enumerate(header):
        key = raw.strip().lstrip("\ufeff").lower()
        if not key:
            continue
        if key in SYSTEM:
            ignored.append(_t(lang, "ignored", name=raw))
            continue
        name = by_label.get(key)
        if name is None:
            problems.append(_t(lang, "unknown", name=raw))
        elif res.entity.fields[name].type == "table":
            problems.append(f"{raw}: " + _t(lang, "table"))
        else:
            cols[i] = name
    return cols, problems, ignored


class LinkResolver:
    """Turns a link cell (an id, or the target's naming value) into an id, cached."""

    def __init__(self, c: ApiContext, conn: sa.Connection) -> None:
        self.c = c
        self.conn = conn
        self.cache: dict[tuple[str, str], int | None] = {}

    def resolve(self, target: str, text: str) -> int | None:
        key = (target, text)
        if key in self.cache:
            return self.cache[key]
        res = self.c.resources[target]
        found: int | None = None
        naming = res.entity.spec.naming
        if naming is not None and naming.field in res.table.c:
            stmt = sa.select(res.table.c.id).where(res.table.c[naming.field] == text)
            scope = self.c.scope(res)
            if scope is not None:
                stmt = stmt.where(scope)
            ids = self.conn.execute(stmt.limit(2)).scalars().all()
            found = ids[0] if len(ids) == 1 else None
        if found is None and text.isdigit():
            found = int(text)
        self.cache[key] = found
        return found


def convert(res: Resource, name: str, text: str, links: LinkResolver, lang: str) -> Any:
    """One cell as a JSON value of the field's type; ValueError with a message."""
    f = res.entity.fields[name]
    if text == "":
        return None
    if f.type in ("string", "text", "enum"):
        if text.startswith("'") and text[1:2] and text[1] in _FORMULA:
            return text[1:]
        return text
    if f.type == "int":
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(_t(lang, "int")) from None
    if f.type == "float":
        try:
            return float(text.strip())
        except ValueError:
            raise ValueError(_t(lang, "float")) from None
    if f.type == "decimal":
        return text.strip()
    if f.type == "bool":
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(_t(lang, "bool"))
    if f.type == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(_t(lang, "json")) from None
    if f.type == "link":
        target = res.links[name]
        rid = links.resolve(target, text.strip())
        if rid is None:
            raise ValueError(_t(lang, "link", target=target, value=text.strip()))
        return rid
    return text.strip()


def _errors_of(err: ApiError) -> dict[str, list[str]]:
    body = (err.errors or {}).get("json")
    if isinstance(body, dict) and body:
        return {str(k): v if isinstance(v, list) else [json.dumps(v, ensure_ascii=False)]
                for k, v in body.items()}
    return {"_rules": [err.message]}


def run_import(c: ApiContext, res: Resource, text: str, *, dry_run: bool) -> dict[str, Any]:
    """Check (and unless ``dry_run``, write) every row; see the module docstring."""
    lang = request_language()
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    if not rows:
        raise ApiError(422, "the CSV is empty", {"json": {"_schema": ["no header row"]}})
    if len(rows) - 1 > MAX_ROWS:
        raise ApiError(413, f"at most {MAX_ROWS} rows per import (got {len(rows) - 1})")
    hidden = hidden_fields(c, res)
    cols, problems, ignored = header_map(res, rows[0], hidden, lang)
    if problems:
        raise ApiError(422, "; ".join(problems), {"json": {"_header": problems}})
    report: list[dict[str, Any]] = []
    created = 0
    user = c.current_user()
    conn = c.engine.connect()
    try:
        trans = conn.begin()
        begin_write(conn)
        links = LinkResolver(c, conn)
        for line, cells in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in cells):
                continue
            errors: dict[str, list[str]] = {}
            data: dict[str, Any] = {}
            for i, name in cols.items():
                try:
                    data[name] = convert(res, name, cells[i] if i < len(cells) else "", links,
                                         lang)
                except ValueError as err:
                    errors.setdefault(name, []).append(str(err))
            if not errors:
                errors = _insert_row(c, conn, res, data, user)
            if errors:
                report.append({"line": line, "errors": errors, "values": data})
            else:
                created += 1
        ok = not report
        if ok and not dry_run:
            trans.commit()
        else:
            trans.rollback()
    finally:
        conn.close()
    return {"dry_run": dry_run, "ok": ok, "rows": created + len(report), "valid": created,
            "created": created if ok and not dry_run else 0, "errors": report,
            "ignored_columns": ignored}


def _insert_row(c: ApiContext, conn: sa.Connection, res: Resource, data: Mapping[str, Any],
                user: str | None) -> dict[str, list[str]]:
    """Create one record in a savepoint; its errors (the savepoint rolled back) or {}."""
    try:
        loaded = validate(res, security.check_body(c, res, dict(data)))
    except ApiError as err:
        return _errors_of(err)
    sp = conn.begin_nested()
    try:
        gate.write(c, conn, res, gate.Write("create", [loaded], user=user))  # the one gate
        sp.commit()
        return {}
    except ApiError as err:  # rules (422), scope (Denied 403)
        sp.rollback()
        return _errors_of(err)
    except sa.exc.IntegrityError as err:
        sp.rollback()
        return _errors_of(explain_integrity(c.engine, res, err, [loaded], bulk=False))


def register(blp: Blueprint, plugin: DeskPlugin) -> None:
    """Add the import route."""

    @blp.route("/import/<module>/<entity>", methods=["POST"])
    @blp.doc(summary="Import records from CSV (dry_run=true checks every row, writes nothing)",
             parameters=[{"in": "query", "name": "dry_run", "schema": {"type": "boolean"}}])
    def import_csv(module: str, entity: str) -> Response:
        c = ctx()
        res = readable(c, f"{module}.{entity}", "create")
        dry = (request.args.get("dry_run") or "").lower() in ("1", "true", "yes")
        raw = request.get_data(cache=False)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApiError(422, "the CSV must be UTF-8", {"json": {"_schema": ["not UTF-8"]}}
                           ) from None
        out = run_import(c, res, text, dry_run=dry)
        return json_response(out, 200 if out["ok"] or dry else 422)
