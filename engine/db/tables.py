"""Compile a :class:`metamodel.Model` into SQLAlchemy Core tables on one ``MetaData``.

Every entity becomes table ``<module>_<entity>`` with the system columns ``id``,
``created_at``, ``created_by``, ``updated_at``, ``updated_by`` and ``version`` (optimistic
locking). A child entity's table also has ``parent_id`` (foreign key to the parent, ON DELETE
CASCADE) and ``idx`` (row order). Constraint and index names come from a naming convention
so Alembic can compare and drop them by name.

Example::

    from metamodel import load
    md = build_metadata(load("."))
    md.tables["showcase_asset"].c.depth_m.type    # NUMERIC(10, 2)
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from metamodel import Model
from metamodel.checks import implicit_index_covered
from metamodel.model import Entity

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

#: The key Campo stores in ``Table.info`` / ``Column.info`` to find its model objects.
INFO_KEY = "campo"


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timezone-aware instant stored in UTC; naive values are taken as UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


@dataclass(frozen=True)
class SqlType:
    """A field's column type, as an object (tables) and as source (revisions)."""

    type: sa.types.TypeEngine[Any]
    #: the same type in a revision, which imports only ``sqlalchemy as sa``
    source: str


_ID_SOURCE = "sa.BigInteger().with_variant(sa.Integer(), 'sqlite')"

#: field kind -> its SQL type; the one place both the tables and the migrations written for
#: them read, so the two never disagree (a unit test compiles both on both dialects)
SQL_TYPES: dict[str, Callable[[Any], SqlType]] = {
    "string": lambda f: SqlType(sa.String(f.max_length), f"sa.String({f.max_length})"),
    "text": lambda f: SqlType(sa.Text(), "sa.Text()"),
    "int": lambda f: SqlType(sa.BigInteger(), "sa.BigInteger()"),
    "decimal": lambda f: SqlType(sa.Numeric(f.precision, f.scale),
                                 f"sa.Numeric({f.precision}, {f.scale})"),
    "float": lambda f: SqlType(sa.Float(), "sa.Float()"),
    "bool": lambda f: SqlType(sa.Boolean(), "sa.Boolean()"),
    "date": lambda f: SqlType(sa.Date(), "sa.Date()"),
    "datetime": lambda f: SqlType(UTCDateTime(), "sa.DateTime(timezone=True)"),
    "enum": lambda f: SqlType(sa.String(max(32, f.max_code_length())),
                              f"sa.String({max(32, f.max_code_length())})"),
    "json": lambda f: SqlType(sa.JSON(), "sa.JSON()"),
    "attachment": lambda f: SqlType(sa.JSON(), "sa.JSON()"),  # the file's metadata
    "link": lambda f: SqlType(ID_TYPE, _ID_SOURCE),
}


def sql_type(f: Any) -> SqlType:
    """The SQL type of a stored field."""
    make = SQL_TYPES.get(f.type)
    if make is None:
        raise ValueError(f"field type {f.type!r} has no column")
    return make(f)


def column_type(f: Any) -> sa.types.TypeEngine[Any]:
    """The SQL type of a field."""
    return sql_type(f).type


def _system_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(150), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(150), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    ]


def build_table(model: Model, ent: Entity, metadata: sa.MetaData) -> sa.Table:
    """One entity's table, added to ``metadata``."""
    cols: list[Any] = _system_columns()
    if ent.parent is not None:
        parent = model.entity(ent.parent[0])
        cols.append(sa.Column("parent_id", ID_TYPE,
                              sa.ForeignKey(f"{parent.table}.id", ondelete="CASCADE"),
                              nullable=False, index=True))
        cols.append(sa.Column("idx", sa.Integer(), nullable=False, server_default="0"))
    for name, f in ent.stored_fields().items():
        args: list[Any] = []
        if f.type == "link":
            target = model.entity(ent.targets[name])
            ondelete = {"restrict": "RESTRICT", "cascade": "CASCADE", "set_null": "SET NULL"}
            args.append(sa.ForeignKey(f"{target.table}.id", ondelete=ondelete[f.on_delete]))
        # links are indexed unless 'index: false' (restrict/cascade checks and reverse
        # lookups read them; PostgreSQL does not index foreign keys by itself)
        index = f.index and not f.unique and not implicit_index_covered(ent, name, f)
        cols.append(sa.Column(name, column_type(f), *args, nullable=not f.required,
                              unique=f.unique or None, index=index or None,
                              info={INFO_KEY: f}))
    for group in ent.spec.unique_together:
        cols.append(sa.UniqueConstraint(*group))
    # AUTOINCREMENT on SQLite: ids of deleted rows are never handed out again (audit rows
    # of two records must not share an id); PostgreSQL's identity sequences never reuse them
    table = sa.Table(ent.table, metadata, *cols, info={INFO_KEY: ent},
                     sqlite_autoincrement=True)
    for group in ent.spec.indexes:
        sa.Index(None, *(table.c[c] for c in group))
    return table


def build_metadata(model: Model) -> sa.MetaData:
    """All generated tables of ``model`` on a fresh ``MetaData`` with the naming convention."""
    md = sa.MetaData(naming_convention=NAMING_CONVENTION)
    for ent in model.entities.values():
        if ent.parent is None:
            build_table(model, ent, md)
    for ent in model.entities.values():
        if ent.parent is not None:
            build_table(model, ent, md)
    return md


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine; SQLite gets foreign keys on, WAL and a busy timeout, and a new
    database file is created readable by its owner only (0600, like the JWT secret; SQLite
    gives the -wal and -shm files the database file's mode)."""
    if url.startswith("sqlite"):
        _create_private(sa.engine.make_url(url).database)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = sa.create_engine(url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            dbapi_conn.create_function(UNICODE_LOWER, 1, unicode_lower, deterministic=True)

        return engine
    # No pre-ping per checkout (a SELECT 1 before every request): connections are recycled
    # after an hour, one idle for longer than IDLE_PING_SECONDS is checked when taken, and a
    # connection that dies mid-use invalidates the pool so the next checkout reconnects.
    kwargs.setdefault("pool_recycle", 3600)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = sa.create_engine(url, **kwargs)
    _ping_when_idle(engine)
    from .atcommit import watch

    watch(engine)  # audit rows and notices ride on the COMMIT (engine.db.atcommit)
    return engine


#: a pooled connection unused for longer than this is pinged before it is handed out
IDLE_PING_SECONDS = 30.0


#: a SQLite function lowering every script's letters (SQLite's ``lower()`` and ``LIKE``
#: fold ASCII only), registered on each connection by :func:`create_engine_for`
UNICODE_LOWER = "campo_lower"


def unicode_lower(value: Any) -> Any:
    """``value.lower()`` for text (as PostgreSQL's ``lower()``/``ILIKE`` fold it)."""
    return value.lower() if isinstance(value, str) else value


def _ping_when_idle(engine: Engine) -> None:
    """Check a connection that sat idle (a restart or a firewall may have cut it); a dead
    one raises ``DisconnectionError`` and the pool retries with a fresh connection."""

    @sa.event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["campo_idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("campo_idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            cur = dbapi_conn.cursor()
            cur.execute("SELECT 1")
            cur.close()
            dbapi_conn.rollback()
        except Exception as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc


def _create_private(database: str | None) -> None:
    """Create an empty SQLite file with mode 0600 unless it exists (or is not a file)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError, NotADirectoryError):
        pass  # kept as it is / SQLite reports the missing folder itself
