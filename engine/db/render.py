"""Render plan items into the Python body of a revision's ``upgrade()``.

Alembic operations are rendered by Alembic's own renderer (``render_python_code``) in batch
style, so the same revision runs on SQLite (table copy) and PostgreSQL (``ALTER TABLE``).
Consecutive operations on one table in one phase share a ``batch_alter_table`` block; code
items (data fills, registry rows) are copied as they are. Dialect-specific types reflected
from the database are rendered as their generic SQLAlchemy types and Campo's ``UTCDateTime``
as ``sa.DateTime(timezone=True)``, so revisions import nothing from Campo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from alembic.autogenerate import render_python_code, renderers
from alembic.operations import ops

from .steps import Item
from .tables import UTCDateTime, sql_type


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


class _UsingAlterColumnOp(ops.AlterColumnOp):
    """``alter_column`` whose ``postgresql_using`` Alembic's own renderer would leave out."""


@renderers.dispatch_for(_UsingAlterColumnOp)
def _render_using(autogen_context: Any, op: _UsingAlterColumnOp) -> str:
    text = str(renderers.dispatch(ops.AlterColumnOp)(autogen_context, op))
    assert text.endswith(")")
    return text[:-1] + f",\n               postgresql_using={op.kw['postgresql_using']!r})"


def _with_using(op: Any) -> Any:
    if type(op) is ops.AlterColumnOp and "postgresql_using" in op.kw:
        op.__class__ = _UsingAlterColumnOp
    elif isinstance(op, ops.ModifyTableOps):
        for inner in op.ops:
            _with_using(inner)
    return op


def _render_ops(op: Any) -> list[str]:
    text = render_python_code(ops.UpgradeOps([_with_using(op)]), render_as_batch=True,
                              render_item=_render_item)
    lines = text.split("\n")
    out = [lines[0]] + [ln[4:] if ln.startswith("    ") else ln for ln in lines[1:]]
    return [ln.rstrip() for ln in out if ln.strip() and not ln.strip().startswith("# ###")]


def render_items(items: Sequence[Item]) -> tuple[str, set[str]]:
    """Python source (unindented) of the items in phase order, and the imports it needs."""
    ordered = sorted(enumerate(items), key=lambda p: (p[1].phase, _table_rank(items, p[1]),
                                                       p[0]))
    lines: list[str] = []
    imports: set[str] = set()
    batch: list[Any] = []
    batch_key: tuple[int, str] | None = None

    def flush() -> None:
        nonlocal batch, batch_key
        if batch and batch_key is not None:
            lines.extend(_keep_autoincrement(
                _render_ops(ops.ModifyTableOps(batch_key[1], batch))))
        batch, batch_key = [], None

    for _, item in ordered:
        imports |= item.imports
        if item.op is not None and item.table is not None:
            key = (int(item.phase), item.table)
            if key != batch_key:
                flush()
                batch_key = key
            batch.append(item.op)
            continue
        flush()
        if item.op is not None:
            lines.extend(_render_ops(item.op))
        elif item.code:
            lines.extend(item.code.rstrip().split("\n"))
    flush()
    body = "\n".join(lines)
    if "postgresql." in body:
        imports.add("from sqlalchemy.dialects import postgresql")
    return body, imports


def _keep_autoincrement(lines: list[str]) -> list[str]:
    """A SQLite batch that copies a table rebuilds it from its reflection, which does not
    carry ``AUTOINCREMENT``: say it again (generated tables have it; a table without an
    integer key ignores it, and PostgreSQL ignores ``sqlite_*`` options)."""
    head = lines[0]
    assert head.startswith("with op.batch_alter_table(") and head.endswith(") as batch_op:")
    lines[0] = head[:-len(") as batch_op:")] + \
        ", table_kwargs={'sqlite_autoincrement': True}) as batch_op:"
    return lines


def _table_rank(items: Sequence[Item], item: Item) -> int:
    """Keep a table's items together within a phase, tables in order of first appearance."""
    if item.table is None:
        return -1
    for i, other in enumerate(items):
        if other.table == item.table:
            return i
    return len(items)


def execute_code(sql: str) -> str:
    """Code that runs one SQL statement."""
    return f"op.execute({sql!r})"


def type_source(f: Any) -> str:
    """Source of the SQLAlchemy type of a field's column (``tables.SQL_TYPES``)."""
    return sql_type(f).source


def value_source(f: Any) -> tuple[str, set[str]]:
    """Source of a field's default value (``today``/``now`` become SQL functions)."""
    v = f.literal_default  # an '=expression' default is the API's, never written by a migration
    if f.type == "date" and v == "today":
        return "sa.func.current_date()", set()
    if f.type == "datetime" and v == "now":
        return "sa.func.now()", set()
    if f.type == "datetime" and isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        v = dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)
    if f.type == "datetime" and isinstance(v, dt.datetime) and v.tzinfo is None:
        v = v.replace(tzinfo=dt.UTC)
    src = repr(v)
    return src, ({"import datetime"} if "datetime." in src else set())


def fill_code(table: str, column: str, f: Any) -> tuple[str, set[str]]:
    """Code that gives every row whose ``column`` is NULL the field's default."""
    value, imports = value_source(f)
    code = (f"_t = sa.table({table!r}, sa.column({column!r}, {type_source(f)}))\n"
            f"op.execute(_t.update().where(_t.c[{column!r}].is_(None))"
            f".values({{{column!r}: {value}}}))")
    return code, imports


def truncate_code(table: str, column: str, length: int) -> str:
    """Code that cuts values of ``column`` to ``length`` characters (before a narrowing)."""
    return execute_code(f'UPDATE "{table}" SET "{column}" = substr("{column}", 1, {length}) '
                        f'WHERE length("{column}") > {length}')


def pg_rename_code(new: str, old: str, constraints: dict[str, str]) -> str:
    """PostgreSQL bookkeeping after a table rename: constraint and id sequence names.

    ``constraints`` maps the primary key's old name to the new one: PostgreSQL names the
    key's index after it, in one namespace per schema, so a new entity reusing the old name
    would collide. Links keep their names on both databases (names are per table there, and
    later drops find them by their reflected name).
    """
    stmts = [f'ALTER TABLE "{new}" RENAME CONSTRAINT "{a}" TO "{b}"'
             for a, b in constraints.items() if a != b]
    stmts.append(f'ALTER SEQUENCE IF EXISTS "{old}_id_seq" RENAME TO "{new}_id_seq"')
    body = "\n".join("    " + execute_code(s) for s in stmts)
    return f'if op.get_bind().dialect.name == "postgresql":\n{body}'



def autoincrement_code(table: str, entity: str) -> str:
    """Code that rebuilds a SQLite table as ``AUTOINCREMENT`` (rows, ids, indexes and links
    kept). The sequence starts after the largest id kept and after the largest id the audit
    trail names for ``entity``, so a deleted record's id is not handed out again even when
    it was the last one. Nothing to do on PostgreSQL (sequences never reuse an id), so the
    same revision runs there."""
    seq = sa_quote(table)
    audit = (f"SELECT max(CAST(record_id AS INTEGER)) FROM campo_audit "
             f"WHERE entity = {sa_quote(entity)}")
    return "\n".join([
        'if op.get_bind().dialect.name == "sqlite":',
        f'    with op.batch_alter_table({table!r}, recreate="always",',
        '                              table_kwargs={"sqlite_autoincrement": True}):',
        '        pass',
        '    if sa.inspect(op.get_bind()).has_table("campo_audit"):',
        "        " + execute_code(f"INSERT INTO sqlite_sequence (name, seq) SELECT {seq}, 0 WHERE "
                             f"NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = {seq})"),
        "        " + execute_code(f"UPDATE sqlite_sequence SET seq = max(seq, coalesce(("
                                 f"{audit}), 0)) WHERE name = {seq}"),
    ])


def sa_quote(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
