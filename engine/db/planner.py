"""Compute the migration plan: what the live database needs to match the model.

1. The model's tables (:func:`engine.db.build_metadata`) plus the registry table are compared
   with the database by Alembic autogenerate (``produce_migrations``), limited by
   ``include_name``/``include_object`` to generated tables: the model's and the registered
   ones (:mod:`engine.db.registry`). Nothing else is looked at.
2. Renames declared with ``renamed_from`` become ``rename_table`` (the renamed table is
   compared under its old name, then its operations are retargeted) and
   ``alter_column(new_column_name=...)`` instead of a drop and an add.
3. Each operation becomes a :class:`~engine.db.steps.Step`: type changes are classified as
   widening or narrowing (:mod:`engine.db.typechange`), drops and narrowings are destructive
   and carry their blast radius, and steps the current rows would make fail are blocked
   (:mod:`engine.db.blast`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.migration import MigrationContext
from alembic.operations import ops
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import Connection

from metamodel import Model

from . import blast, registry
from .errors import PlanError
from .render import (
    autoincrement_code,
    execute_code,
    fill_code,
    pg_rename_code,
    truncate_code,
)
from .steps import Item, Phase, Plan, Step
from .tables import INFO_KEY, NAMING_CONVENTION, build_metadata
from .typechange import classify, max_abs, max_length, shape_of

log = logging.getLogger(__name__)


def _context(conn: Connection, tables: Callable[[str], bool],
             metadata_tables: Callable[[str], bool]) -> MigrationContext:
    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "table" or (name is not None and tables(name))

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool,
                       compare_to: Any) -> bool:
        if type_ != "table" or name is None:
            return True
        return tables(name) if reflected else metadata_tables(name)

    return MigrationContext.configure(conn, opts={
        "compare_type": True, "include_name": include_name, "include_object": include_object,
    })


def compute_plan(conn: Connection, model: Model, url: str) -> Plan:
    """The plan for the database behind ``conn`` (read-only: nothing is changed)."""
    md = build_metadata(model)
    if registry.REGISTRY_TABLE in md.tables:
        raise PlanError(f"table name '{registry.REGISTRY_TABLE}' is reserved by Campo; "
                        "rename the module or entity that produces it")
    registry.registry_table(md)
    insp = sa.inspect(conn)
    db_tables = set(insp.get_table_names())
    managed = registry.managed_names(md.tables, conn)
    renames: dict[str, str] = {}
    for ent in model.entities.values():
        old = f"{ent.module}_{ent.spec.renamed_from}" if ent.spec.renamed_from else None
        # only a table Campo manages is renamed (registered, so never another application's)
        if (old and old in db_tables and old in managed and ent.table not in db_tables
                and old not in md.tables):
            renames[ent.table] = old
    hidden_old = set(renames.values())

    def compared(name: str) -> bool:
        return name in managed and name not in hidden_old

    def wanted(name: str) -> bool:
        return name not in renames

    ctx = _context(conn, compared, wanted)
    script = produce_migrations(ctx, md)
    b = _Builder(conn, md, model, renames, managed)
    for new, old in renames.items():
        b.rename_table(new, old)
    assert script.upgrade_ops is not None
    for op in script.upgrade_ops.ops:
        b.top(op)
    b.autoincrement()
    for new, old in renames.items():
        tmp = sa.MetaData(naming_convention=NAMING_CONVENTION)
        for t in md.sorted_tables:
            t.to_metadata(tmp)
        _copy_named(md.tables[new], tmp, old)
        only_old = old.__eq__
        sub = produce_migrations(_context(conn, only_old, only_old), tmp)
        assert sub.upgrade_ops is not None
        for op in sub.upgrade_ops.ops:
            if isinstance(op, ops.ModifyTableOps):
                for inner in op.ops:
                    setattr(inner, "table_name", new)  # noqa: B010 - every table op has it
                    if isinstance(inner, ops.CreateForeignKeyOp):
                        inner.source_table = new
                        inner.referent_table = b.renamed_to.get(inner.referent_table,
                                                                inner.referent_table)
                b.modify(new, op.ops, db_table=old)
    return Plan(url, b.finish())


def _copy_named(table: sa.Table, metadata: sa.MetaData, name: str) -> sa.Table:
    """``table`` copied as ``name``, keeping its constraint and index names (the new ones)."""
    copy = table.to_metadata(metadata, name=name)
    items: list[Any] = [*table.indexes, *table.constraints]
    names = {(type(c).__name__, tuple(col.name for col in c.columns)): c.name for c in items}
    copies: list[Any] = [*copy.indexes, *copy.constraints]
    for c in copies:
        key = (type(c).__name__, tuple(col.name for col in c.columns))
        if key in names and names[key]:
            c.name = sa.sql.elements.conv(str(names[key]))
    return copy


class _Builder:
    """Turns Alembic operations into steps, asking the database about its rows."""

    def __init__(self, conn: Connection, md: sa.MetaData, model: Model,
                 renames: dict[str, str], managed: set[str]) -> None:
        self.conn = conn
        self.md = md
        self.renames = renames
        self.renamed_to = {old: new for new, old in renames.items()}
        self.managed = managed
        self.entity_of = {e.table: e.qualname for e in model.entities.values()}
        self.insp = sa.inspect(conn)
        self.db_tables = set(self.insp.get_table_names())
        self.steps: list[Step] = []
        self.created: dict[str, Step] = {}
        self.drops: list[Step] = []

    # ------------------------------------------------------------------ helpers

    def type_str(self, t: Any) -> str:
        try:
            return str(t.compile(dialect=self.conn.dialect))
        except sa.exc.CompileError:
            return repr(t)

    def field_of(self, table: str, column: str) -> Any:
        t = self.md.tables.get(table)
        if t is None or column not in t.c:
            return None
        return t.c[column].info.get(INFO_KEY)

    def db_columns(self, db_table: str) -> dict[str, Any]:
        if db_table not in self.db_tables:
            return {}
        return {c["name"]: c for c in self.insp.get_columns(db_table)}

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def finish(self) -> list[Step]:
        order = _drop_order([s.table for s in self.drops], self.conn)
        self.drops.sort(key=lambda s: order.index(s.table))
        steps = self.steps + self.drops
        return sorted(steps, key=lambda s: min((i.phase for i in s.items), default=Phase.ALTER))

    # ------------------------------------------------------------------ tables

    def top(self, op: Any) -> None:
        if isinstance(op, ops.CreateTableOp):
            self.create_table(op)
        elif isinstance(op, ops.DropTableOp):
            self.drop_table(op)
        elif isinstance(op, ops.ModifyTableOps) and op.table_name in self.created:
            step = self.created[op.table_name]
            step.items += [Item(Phase.CREATE, op.table_name, inner) for inner in op.ops]
            n = sum(1 for inner in op.ops if isinstance(inner, ops.CreateIndexOp))
            step.text = step.text[:-1] + f", {n} index{'es' if n > 1 else ''})" if n else step.text
        elif isinstance(op, ops.ModifyTableOps):
            self.modify(op.table_name, op.ops, db_table=op.table_name)
        elif isinstance(op, (ops.CreateIndexOp, ops.DropIndexOp)) and op.table_name in self.created:
            self.created[op.table_name].items.append(Item(Phase.CREATE, None, op))
        elif isinstance(op, (ops.CreateIndexOp, ops.DropIndexOp)):
            self.index(str(op.table_name), op, str(op.table_name), Phase.ALTER, top=True)
        else:
            self.add(Step("~", str(op.to_diff_tuple()), str(getattr(op, "table_name", "")),
                          items=[Item(Phase.ALTER, None, op)]))

    def create_table(self, op: ops.CreateTableOp) -> None:
        name = op.table_name
        op.info = {}        # Campo's model objects live there; revisions must not render them
        n = sum(1 for c in op.columns if isinstance(c, sa.Column))
        items = [Item(Phase.CREATE, None, op)]
        if name == registry.REGISTRY_TABLE:
            text = f"create table {name} (registry of the tables Campo generates)"
        else:
            text = f"create table {name} ({n} columns)"
            items.append(Item(Phase.REGISTER, None, code=execute_code(
                registry.insert_sql(name, self.entity_of.get(name, "")))))
        self.created[name] = self.add(Step("+", text, name, items=items))

    def drop_table(self, op: ops.DropTableOp) -> None:
        name = op.table_name
        details = [f"blast radius: {blast.rows(self.conn, name)} row(s) in {name}"]
        for link in blast.links_to(self.conn, name, self.managed):
            used = blast.non_null(self.conn, link.table, link.columns[0])
            details.append(f"linked from {link.table}.{', '.join(link.columns)} "
                           f"({used} value(s))")
        step = Step("-", f"drop table {name}", name, destructive=True, details=details, items=[
            Item(Phase.DROP, None, op),
            Item(Phase.REGISTER, None, code=execute_code(registry.delete_sql(name))),
        ])
        self.drops.append(step)

    def rename_table(self, new: str, old: str) -> None:
        names: dict[str, str] = {}
        pk = self.insp.get_pk_constraint(old).get("name")
        if pk:
            names[pk] = f"pk_{new}"
        self.add(Step("~", f"rename table {old} -> {new} (keeps data)", new, items=[
            Item(Phase.RENAME_TABLES, None, code=f"op.rename_table({old!r}, {new!r})"),
            Item(Phase.REGISTER, None, code=execute_code(
                registry.rename_sql(old, new, self.entity_of.get(new, "")))),
            Item(Phase.RENAME_TABLES, None, code=pg_rename_code(new, old, names)),
        ]))

    def autoincrement(self) -> None:
        """SQLite tables made before ids were AUTOINCREMENT (Campo up to 8.12) are rebuilt
        so the ids of deleted rows are not handed out again."""
        if self.conn.dialect.name != "sqlite":
            return
        for name, table in self.md.tables.items():
            if not table.dialect_options["sqlite"].get("autoincrement"):
                continue
            db_name = self.renames.get(name, name)
            if db_name not in self.db_tables or db_name not in self.managed:
                continue
            sql = self.conn.execute(sa.text(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n"),
                {"n": db_name}).scalar()
            if sql is None or "AUTOINCREMENT" in str(sql).upper():
                continue
            self.add(Step("~", f"rebuild table {name} with AUTOINCREMENT ids (ids of deleted "
                               "rows are not reused; keeps data)", name,
                          items=[Item(Phase.REQUIRE, None, code=autoincrement_code(
                              name, self.entity_of.get(name, "")))]))

    # ------------------------------------------------------------------ columns

    def modify(self, table: str, table_ops: Sequence[Any], db_table: str) -> None:
        """Steps for the operations on one existing table (``db_table``: its name now)."""
        table_ops = self._drop_redundant_fks(list(table_ops))
        adds = {o.column.name: o for o in table_ops if isinstance(o, ops.AddColumnOp)}
        drops = {o.column_name: o for o in table_ops if isinstance(o, ops.DropColumnOp)}
        col_renames: dict[str, str] = {}
        for name in adds:
            f = self.field_of(table, name)
            if f is not None and f.renamed_from in drops:
                col_renames[name] = f.renamed_from
        db_cols = self.db_columns(db_table)
        for new, old in col_renames.items():
            col = self.md.tables[table].c[new]
            existing = db_cols[old]
            op = ops.AlterColumnOp(
                table, old, modify_name=new, existing_type=existing["type"].as_generic(),
                existing_nullable=existing["nullable"],
                modify_type=col.type,
                modify_nullable=col.nullable if col.nullable != existing["nullable"] else None)
            self.alter_column(table, op, db_table, db_col=old)
        back = {v: k for k, v in col_renames.items()}
        for o in table_ops:
            if isinstance(o, ops.AddColumnOp) and o.column.name not in col_renames:
                self.add_column(table, o, db_table)
            elif isinstance(o, ops.DropColumnOp) and o.column_name not in back:
                self.drop_column(table, o, db_table)
            elif isinstance(o, ops.AlterColumnOp):
                if o.existing_type is not None:
                    o.existing_type = o.existing_type.as_generic()
                self.alter_column(table, o, db_table, db_col=o.column_name)
            elif isinstance(o, (ops.CreateIndexOp, ops.DropIndexOp)):
                self.index(table, o, db_table, Phase.ALTER, col_renames=col_renames)
            elif isinstance(o, (ops.AddConstraintOp, ops.DropConstraintOp)):
                self.constraint(table, o, db_table, col_renames)
            elif not isinstance(o, (ops.AddColumnOp, ops.DropColumnOp)):
                self.add(Step("~", str(o.to_diff_tuple()), table,
                              items=[Item(Phase.ALTER, table, o)]))

    def _drop_redundant_fks(self, table_ops: list[Any]) -> list[Any]:
        """A renamed table's links follow it: drop the drop+create pair the compare shows."""
        if not self.renames:
            return table_ops
        creates = [o for o in table_ops if isinstance(o, ops.CreateForeignKeyOp)]
        out = list(table_ops)
        for o in table_ops:
            rev = getattr(o, "_reverse", None)
            if not (isinstance(o, ops.DropConstraintOp) and isinstance(rev, ops.CreateForeignKeyOp)
                    and rev.referent_table in self.renamed_to):
                continue
            for c in creates:
                if (c.referent_table == self.renamed_to[rev.referent_table]
                        and list(c.local_cols) == list(rev.local_cols)
                        and list(c.remote_cols) == list(rev.remote_cols)
                        and (c.kw.get("ondelete") or "").upper()
                        == (rev.kw.get("ondelete") or "").upper() and c in out):
                    out.remove(o)
                    out.remove(c)
                    break
        return out

    def add_column(self, table: str, op: ops.AddColumnOp, db_table: str) -> None:
        col = op.column
        f = self.field_of(table, col.name)
        text = f"add column {table}.{col.name} {self.type_str(col.type)}"
        text += "" if col.nullable else " NOT NULL"
        step = Step("+", text, table)
        if f is not None and f.literal_default is not None:
            step.text += f" (existing rows get {f.literal_default!r})"
            step.items.append(Item(Phase.ALTER, table, ops.AddColumnOp(
                table, sa.Column(col.name, col.type, nullable=True))))
            code, imports = fill_code(table, col.name, f)
            step.items.append(Item(Phase.FILL, None, code=code, imports=frozenset(imports)))
            if not col.nullable:
                step.items.append(Item(Phase.REQUIRE, table, ops.AlterColumnOp(
                    table, col.name, modify_nullable=False, existing_type=col.type,
                    existing_nullable=True)))
        else:
            step.items.append(Item(Phase.ALTER, table, op))
            n = blast.rows(self.conn, db_table) if not col.nullable else 0
            if n:
                step.blocked = (f"{table} has {n} row(s) and '{col.name}' is required with no "
                                "default: give the field a default, or add it as optional")
        self.add(step)

    def drop_column(self, table: str, op: ops.DropColumnOp, db_table: str) -> None:
        c = op.column_name
        details = [f"blast radius: {blast.rows(self.conn, db_table)} row(s) in {table}, "
                   f"{blast.non_null(self.conn, db_table, c)} non-null value(s) in {c}"]
        for fk in self.insp.get_foreign_keys(db_table):
            if c in fk["constrained_columns"]:
                details.append(f"{c} is a link to {fk['referred_table']}")
        self.add(Step("-", f"drop column {table}.{c}", table, destructive=True, details=details,
                      items=[Item(Phase.ALTER, table, op)]))

    def alter_column(self, table: str, op: ops.AlterColumnOp, db_table: str,
                     db_col: str) -> None:
        final = op.modify_name or op.column_name
        step = Step("~", "", table)
        parts: list[str] = []
        rows = blast.rows(self.conn, db_table)
        if op.modify_type is not None:
            self._type_change(step, parts, op, table, db_table, db_col, rows)
        if op.modify_nullable is False:
            f = self.field_of(table, final)
            empty = rows - blast.non_null(self.conn, db_table, db_col) if rows else 0
            if empty and f is not None and f.literal_default is not None:
                parts.append(f"make required; {empty} empty row(s) get {f.literal_default!r}")
                op.modify_nullable = None
                code, imports = fill_code(table, final, f)
                step.items.append(Item(Phase.FILL, None, code=code, imports=frozenset(imports)))
                step.items.append(Item(Phase.REQUIRE, table, ops.AlterColumnOp(
                    table, final, modify_nullable=False,
                    existing_type=op.modify_type or op.existing_type, existing_nullable=True)))
            else:
                parts.append("make required (NOT NULL)")
                if empty:
                    step.blocked = (f"{empty} row(s) of {table} have no value in '{db_col}': "
                                    "give the field a default, or fill them first")
        elif op.modify_nullable is True:
            parts.append("make optional (NULL allowed)")
        if op.modify_name:
            step.text = f"rename column {table}.{op.column_name} -> {op.modify_name}"
            step.text += (", " + ", ".join(parts) if parts else "") + " (keeps data)" * (
                not step.destructive)
        else:
            step.text = f"alter column {table}.{op.column_name}: " + ", ".join(parts)
        if _has_changes(op):
            phase = Phase.RENAME_COLUMNS if op.modify_name else Phase.ALTER
            step.items.append(Item(phase, table, op))
        if step.items:
            self.add(step)

    def _type_change(self, step: Step, parts: list[str], op: ops.AlterColumnOp, table: str,
                     db_table: str, db_col: str, rows: int) -> None:
        old, new = op.existing_type, op.modify_type
        change = classify(old, new)
        if change == "same" or self.type_str(old) == self.type_str(new):
            op.modify_type = None
            return
        desc = f"{self.type_str(old)} -> {self.type_str(new)}"
        if change == "widen":
            parts.append(f"widen {desc}")
        else:
            parts.append(f"narrow {desc}")
            step.destructive = True
            step.details.append(f"blast radius: {rows} row(s) in {table}, "
                                f"{blast.non_null(self.conn, db_table, db_col)} non-null "
                                f"value(s) in {db_col}")
            length = max_length(new)
            if length is not None and shape_of(old).family in ("string", "text"):
                cut = blast.longer_than(self.conn, db_table, db_col, length)
                step.details.append(f"{cut} value(s) longer than {length} characters are cut")
                step.items.append(Item(Phase.PREPARE, None, code=truncate_code(
                    table, db_col, length)))
            if shape_of(old).family != shape_of(new).family:
                pg = _compile(new, PGDialect())  # type: ignore[no-untyped-call]
                op.kw["postgresql_using"] = f'"{db_col}"::{pg}'
        bound = max_abs(new)
        if bound is not None and shape_of(old).family in ("int", "decimal", "float"):
            over = blast.out_of_range(self.conn, db_table, db_col, bound)
            if over:
                step.blocked = (f"{over} value(s) of {db_col} do not fit "
                                f"{self.type_str(new)} (magnitude must stay below {bound})")

    # ------------------------------------------------------------------ indexes, constraints

    def index(self, table: str, op: Any, db_table: str, phase: Phase, top: bool = False,
              col_renames: dict[str, str] | None = None) -> None:
        name = op.index_name
        if isinstance(op, ops.DropIndexOp):
            self.add(Step("-", f"drop index {name} on {table}", table,
                          items=[Item(phase, None if top else table, op)]))
            return
        cols = [getattr(c, "name", str(c)) for c in op.columns]
        unique = bool(op.kw.get("unique") or getattr(op, "unique", False))
        step = Step("+", f"add {'unique ' if unique else ''}index {name} on {table} "
                         f"({', '.join(cols)})", table,
                    items=[Item(phase, None if top else table, op)])
        if unique:
            self._check_unique(step, db_table, cols, col_renames or {})
        self.add(step)

    def _check_unique(self, step: Step, db_table: str, cols: list[str],
                      col_renames: dict[str, str]) -> None:
        db_cols = [col_renames.get(c, c) for c in cols]
        if db_table in self.db_tables and set(db_cols) <= set(self.db_columns(db_table)):
            dup = blast.duplicates(self.conn, db_table, db_cols)
            if dup:
                step.blocked = (f"{dup} value(s) of ({', '.join(db_cols)}) appear more than "
                                f"once in {db_table}")

    def constraint(self, table: str, op: Any, db_table: str, col_renames: dict[str, str]) -> None:
        if isinstance(op, ops.DropConstraintOp):
            kind = {"foreignkey": "link", "unique": "unique constraint"}.get(
                op.constraint_type or "", f"{op.constraint_type} constraint")
            self.add(Step("-", f"drop {kind} {op.constraint_name} on {table}", table,
                          items=[Item(Phase.ALTER, table, op)]))
            return
        step = Step("+", "", table, items=[Item(Phase.ALTER, table, op)])
        if isinstance(op, ops.CreateForeignKeyOp):
            local = list(op.local_cols)
            ondelete = (op.kw.get("ondelete") or "NO ACTION").upper()
            step.text = (f"add link {table}.{', '.join(local)} -> {op.referent_table} "
                         f"(on delete {ondelete})")
            db_col = col_renames.get(local[0], local[0])
            target = self.renames.get(op.referent_table, op.referent_table)
            if len(local) == 1 and db_col in self.db_columns(db_table):
                if target in self.db_tables:
                    bad = blast.orphans(self.conn, db_table, db_col, target, op.remote_cols[0])
                else:
                    bad = blast.non_null(self.conn, db_table, db_col)
                if bad:
                    step.blocked = (f"{bad} value(s) of {table}.{local[0]} point at no row of "
                                    f"{op.referent_table}")
        elif isinstance(op, ops.CreateUniqueConstraintOp):
            cols = list(op.columns)
            step.text = f"add unique constraint {op.constraint_name} on {table} ({', '.join(cols)})"
            self._check_unique(step, db_table, cols, col_renames)
        else:
            step.text = f"add constraint {getattr(op, 'constraint_name', '')} on {table}"
        self.add(step)


def _compile(t: Any, dialect: Any) -> str:
    return str(sa.types.to_instance(t).compile(dialect=dialect))


def _has_changes(op: ops.AlterColumnOp) -> bool:
    return (op.modify_type is not None or op.modify_nullable is not None
            or op.modify_name is not None or op.modify_server_default is not False
            or op.modify_comment is not False)


def _drop_order(tables: list[str], conn: Connection) -> list[str]:
    """Dropped tables ordered so a table goes after every dropped table that links to it."""
    insp = sa.inspect(conn)
    deps: dict[str, set[str]] = {t: set() for t in tables}
    for t in tables:
        for fk in insp.get_foreign_keys(t):
            target = fk["referred_table"]
            if target in deps and target != t:
                deps[target].add(t)      # target must wait for t
    out: list[str] = []
    pending = sorted(tables)
    while pending:
        ready = [t for t in pending if deps[t] <= set(out)] or pending[:1]
        for t in ready:
            out.append(t)
            pending.remove(t)
    return out
