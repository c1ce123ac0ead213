"""Plan and apply migrations: the functions ``campo plan``, ``campo migrate`` and the server use.

A migration run holds one connection and one transaction from start to end (PostgreSQL: an
advisory lock; SQLite: ``BEGIN IMMEDIATE`` with foreign-key enforcement off while tables are
copied, then ``PRAGMA foreign_key_check``), so two processes starting together apply the
model once and a failure leaves the database as it was. In that transaction it

0. applies the platform revisions the database does not have (``campo_*`` tables,
   :mod:`engine.db.platform`);
1. applies revisions of ``migrations/`` the database does not have yet (from git);
2. plans the rest (:func:`plan`), refusing blocked steps, and destructive ones unless
   ``allow_data_loss``;
3. writes the plan as a revision into ``migrations/versions/`` and applies it with Alembic
   (or, when the folder is read-only, runs the same code without writing a file);
4. registers the generated tables in ``campo_tables``.

Example::

    from pathlib import Path
    from metamodel import load
    from engine.db import create_engine_for
    from engine.db.migrate import plan, migrate

    engine = create_engine_for("sqlite:///data/campo.db")
    model = load(".")
    print(plan(engine, model).format())
    migrate(engine, model, Path("."), allow_data_loss=False)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.engine import Connection, Engine

from metamodel import Model

from . import platform, registry, revisions
from .errors import DestructiveChange, MigrationBlocked, MigrationError, PlanError, RevisionError
from .locking import exclusive_transaction
from .planner import compute_plan
from .render import render_items
from .steps import Plan, Step

log = logging.getLogger(__name__)

__all__ = ["DestructiveChange", "MigrationBlocked", "MigrationError", "MigrationResult", "Plan",
           "PlanError", "RevisionError", "Step", "apply_on_start", "migrate", "plan"]

@dataclass
class MigrationResult:
    """What a migration run did."""

    plan: Plan
    #: the revision file written, if any
    revision: Path | None = None
    #: one line per applied revision from git and per applied step
    applied: list[str] = field(default_factory=list)
    #: one line per applied platform revision (``campo_*`` tables)
    platform: list[str] = field(default_factory=list)


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def plan(engine: Engine, model: Model, project_dir: Path | None = None) -> Plan:
    """What the database needs to match ``model`` (read-only); notes unapplied revisions."""
    with engine.connect() as conn:
        p = compute_plan(conn, model, _url(engine))
        p.platform_pending = [f"{s.revision} ({s.doc})" for s in platform.pending(conn)]
        if project_dir is not None:
            p.pending = [s.revision for s in revisions.pending(
                conn, revisions.migrations_dir(project_dir))]
    return p


def _apply_directly(conn: Connection, p: Plan) -> None:
    """Run the plan's upgrade code (the body a revision would have) without writing a file."""
    body, imports = render_items(p.items())
    source = "\n".join(["import sqlalchemy as sa", "from alembic import op", *sorted(imports),
                        "def upgrade():", "    " + body.replace("\n", "\n    ")])
    namespace: dict[str, object] = {}
    exec(compile(source, "<campo plan>", "exec"), namespace)  # noqa: S102 - our rendered plan
    ctx = MigrationContext.configure(conn, opts={"render_as_batch": True})
    with Operations.context(ctx):
        namespace["upgrade"]()  # type: ignore[operator]


def migrate(engine: Engine, model: Model, project_dir: Path, *, allow_data_loss: bool = False,
            message: str | None = None) -> MigrationResult:
    """Bring the database to ``model``: pending revisions, then a new revision for the rest."""
    folder = revisions.migrations_dir(project_dir)
    can_write = revisions.writable(folder)
    written: Path | None = None
    try:
        with exclusive_transaction(engine) as conn:
            result = _migrate(conn, model, folder, can_write, allow_data_loss, message,
                              _url(engine))
            written = result.revision
    except BaseException:
        if written is not None and written.exists():
            written.unlink()
            log.info("removed revision %s: the migration did not complete", written.name)
        raise
    if result.applied:
        log.info("migrated %s: %d change(s)%s", _url(engine), len(result.applied),
                 f", revision {result.revision.name}" if result.revision else "")
    return result


def _migrate(conn: Connection, model: Model, folder: Path, can_write: bool,
             allow_data_loss: bool, message: str | None, url: str) -> MigrationResult:
    platform_done = platform.upgrade_on(conn)
    applied: list[str] = []
    todo = revisions.pending(conn, folder)
    if todo:
        bad = [s for s in todo if revisions.is_destructive(s)]
        if bad and not allow_data_loss:
            raise DestructiveChange(
                "revision(s) " + ", ".join(f"{s.revision} ({s.doc})" for s in bad)
                + " in migrations/ lose data; apply them with --allow-data-loss")
        revisions.upgrade(conn, folder)
        applied += [f"revision {s.revision}: {s.doc}" for s in todo]
    p = compute_plan(conn, model, url)
    if p.blocked:
        raise MigrationBlocked(p.format())
    if p.destructive and not allow_data_loss:
        raise DestructiveChange(p.format())
    result = MigrationResult(p, applied=applied, platform=platform_done)
    if not p.empty:
        if can_write:
            result.revision = revisions.write_revision(folder, p, message)
            try:
                revisions.upgrade(conn, folder)
            except BaseException:
                result.revision.unlink()
                log.info("removed revision %s: it did not apply", result.revision.name)
                raise
        else:
            log.warning("applying %d change(s) without a revision file: %s is not writable",
                        len(p.steps), folder)
            _apply_directly(conn, p)
        applied += [s.lines()[0] for s in p.steps]
        left = compute_plan(conn, model, url)
        if not left.empty:
            log.warning("the database still differs from the model after migrating:\n%s",
                        left.format())
    registry.adopt(conn, {e.table: e.qualname for e in model.entities.values()})
    return result


def apply_on_start(engine: Engine, model: Model, project_dir: Path) -> list[str]:
    """Apply pending and non-destructive changes at server start; list what was applied.

    Raises :class:`DestructiveChange` when a step would lose data (run
    ``campo migrate --allow-data-loss`` after reading the plan) and :class:`MigrationBlocked`
    when the rows do not allow a step.
    """
    return migrate(engine, model, project_dir, allow_data_loss=False,
                   message=None).applied
