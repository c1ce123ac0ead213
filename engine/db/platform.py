"""Platform tables (``campo_*``): one registry, one ``MetaData``, migrated by Alembic.

The engine's own tables (users, sessions, API keys, role and site assignments, audit,
naming series, workflow transitions, and later history and alarms) are declared by the
package that uses them on :data:`metadata` and versioned by the revisions of
``engine/db/platform_versions/`` (shipped with the engine, one linear history on the Alembic
branch ``campo_platform``, recorded in the version table ``campo_platform_version``, apart
from the project's ``migrations/`` and its ``alembic_version``). ``campo migrate`` and
``campo serve`` apply them in the same exclusive transaction as the model's tables
(:func:`upgrade_on`); commands that need only the platform tables call :func:`upgrade`.

Dialect-specific DDL is attached to a table with :func:`on_create`: hooks run by the
revision right after it creates the table (audit immutability triggers; TimescaleDB
hypertables or native daily partitions for the historian), and an ``options`` hook that
chooses ``CREATE TABLE`` options at that moment (``postgresql_partition_by``...). Helpers
for such hooks live in :mod:`engine.db.platform_ddl`. How a package adds a table:
``engine/db/README.md``.

Example::

    import sqlalchemy as sa
    from engine.db import platform
    from engine.db.platform_ddl import immutable_rows

    journal = platform.on_create(sa.Table(
        "campo_alarm_journal", platform.metadata,
        sa.Column("id", platform.ID_TYPE, primary_key=True), ...,
        sqlite_autoincrement=True), immutable_rows)
    # then: python -m engine.db.platform_revision -m "alarm journal"
    platform.upgrade(engine)     # at start-up (campo migrate / serve do it themselves)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .errors import RevisionError
from .locking import exclusive_transaction
from .tables import ID_TYPE, NAMING_CONVENTION, UTCDateTime

if TYPE_CHECKING:  # alembic (~11 MB with mako and pygments) is loaded only to migrate
    from alembic.script import Script, ScriptDirectory

log = logging.getLogger(__name__)

__all__ = ["BRANCH", "ID_TYPE", "VERSIONS", "VERSION_TABLE", "UTCDateTime", "after_create",
           "current", "heads", "metadata", "on_create", "pending", "upgrade", "upgrade_on"]

#: Every platform table, on one MetaData with the naming convention of the model's tables.
metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
#: The revisions of the platform tables (shipped with the engine).
VERSIONS = Path(__file__).with_name("platform_versions")
#: Alembic version table of the platform branch (the project's revisions use alembic_version).
VERSION_TABLE = "campo_platform_version"
#: Alembic branch label of the platform revisions.
BRANCH = "campo_platform"

#: ``hook(connection, table_name)``: DDL run after the table is created; must be idempotent.
DDLHook = Callable[[Connection, str], None]
#: ``options(connection) -> {dialect option: value}`` merged into ``CREATE TABLE``.
OptionsHook = Callable[[Connection], dict[str, Any]]
HOOKS_KEY = "campo_after_create"
OPTIONS_KEY = "campo_create_options"


def on_create(table: sa.Table, *hooks: DDLHook, options: OptionsHook | None = None
              ) -> sa.Table:
    """Declare DDL run right after ``table`` is created (and options chosen at that moment).

    Hooks must be module-level functions (revisions call them by their import path) and
    idempotent (a revision that rebuilds the table on SQLite runs them again).
    """
    for fn in (*hooks, *((options,) if options else ())):
        if "<locals>" in fn.__qualname__ or fn.__name__ == "<lambda>":
            raise ValueError(f"platform hook {fn.__qualname__} of {table.name} must be a "
                             "module-level function (revisions import it by name)")
    table.info[HOOKS_KEY] = (*table.info.get(HOOKS_KEY, ()), *hooks)
    if options is not None:
        table.info[OPTIONS_KEY] = options
    return table


def hooks_of(table: sa.Table) -> tuple[DDLHook, ...]:
    """The after-create hooks declared for ``table``."""
    return tuple(table.info.get(HOOKS_KEY, ()))


def options_of(table: sa.Table) -> OptionsHook | None:
    """The create-options hook declared for ``table``, if any."""
    return table.info.get(OPTIONS_KEY)


def after_create(conn: Connection, table: str, *hooks: DDLHook) -> None:
    """Run ``hooks`` for ``table`` (what a revision calls after ``op.create_table``)."""
    for hook in hooks:
        log.debug("platform table %s: running %s", table, hook.__qualname__)
        hook(conn, table)


# --------------------------------------------------------------------------- revisions


@lru_cache(maxsize=8)
def _scripts(location: str, _stamp: int) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(location, version_locations=[location])


def scripts(location: Path = VERSIONS) -> ScriptDirectory:
    """The platform revisions found in ``location`` (read again when a file is added)."""
    return _scripts(str(location), location.stat().st_mtime_ns)


def heads(location: Path = VERSIONS) -> tuple[str, ...]:
    """The newest platform revision(s) (one, unless two branches were merged wrongly)."""
    return tuple(scripts(location).get_heads())


def current(conn: Connection) -> tuple[str, ...]:
    """The platform revision(s) the database is at (empty: never migrated)."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return ()
    from alembic.migration import MigrationContext

    return tuple(MigrationContext.configure(
        conn, opts={"version_table": VERSION_TABLE}).get_current_heads())


def pending(conn: Connection, location: Path = VERSIONS) -> list[Script]:
    """Platform revisions not applied to the database, oldest first."""
    from alembic.util import CommandError

    script = scripts(location)
    at = current(conn)
    applied: set[str] = set()
    try:
        for head in at:
            applied.update(s.revision for s in script.iterate_revisions(head, "base"))
        every = list(script.walk_revisions())
    except CommandError as exc:
        raise RevisionError(
            f"the database's platform tables are at revision {', '.join(at)}, which this "
            f"version of Campo does not know ({exc}); run the Campo version that migrated "
            "it, or a newer one") from None
    return [s for s in reversed(every) if s.revision not in applied]


def upgrade_on(conn: Connection, location: Path = VERSIONS) -> list[str]:
    """Apply the pending platform revisions on ``conn``, in its transaction; list them."""
    todo = pending(conn, location)
    if not todo:
        return []
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext

    script = scripts(location)
    cfg = Config()
    cfg.set_main_option("script_location", str(location))

    def fn(rev: Any, _context: Any) -> Any:
        return script._upgrade_revs("heads", rev)

    with EnvironmentContext(cfg, script, fn=fn, destination_rev="heads") as env:
        env.configure(connection=conn, version_table=VERSION_TABLE, render_as_batch=True,
                      target_metadata=metadata)
        with env.begin_transaction():
            env.run_migrations()
    done = [f"{s.revision}: {s.doc}" for s in todo]
    log.info("platform tables: applied %s", "; ".join(done))
    return done


_assume_current = False


def assume_current() -> None:
    """This process starts right after its launcher brought the platform tables up to date
    (``campo serve``'s web workers): :func:`upgrade` skips the check, and alembic is never
    loaded here."""
    global _assume_current
    _assume_current = True


def upgrade(engine: Engine, location: Path = VERSIONS) -> list[str]:
    """Bring the platform tables to the newest revision (exclusive, one transaction)."""
    if _assume_current:
        return []
    with engine.connect() as conn:        # the common case: nothing to do, no lock taken
        if current(conn) == heads(location):
            return []
    with exclusive_transaction(engine) as conn:
        return upgrade_on(conn, location)
