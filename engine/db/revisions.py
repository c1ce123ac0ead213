"""A project's ``migrations/`` folder: Alembic scripts written and applied by Campo.

The folder is an ordinary Alembic script directory kept in git: ``env.py`` and
``script.py.mako`` (written the first time from Campo's templates), and ``versions/`` with
one file per applied plan. Revisions import only ``alembic`` and ``sqlalchemy``; each records
the plan it came from in its docstring and ``campo_destructive`` (True when it loses data,
so another database applies it only with ``--allow-data-loss``).

Alembic runs with the connection Campo already holds (passed through
``Config.attributes["connection"]``), inside Campo's transaction.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError, rev_id
from sqlalchemy.engine import Connection

from .errors import RevisionError
from .render import render_items
from .steps import Plan

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("script.py.mako")
FILE_TEMPLATE = ("%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d%%(second).2d"
                 "_%%(rev)s_%%(slug)s")

ENV_PY = '''\
"""Alembic environment of a Campo project, written by `campo migrate` (keep it in git).

`campo migrate` and `campo serve` run the revisions with their own connection
(``config.attributes["connection"]``) inside their transaction. Plain Alembic also works:
``alembic -c alembic.ini upgrade head`` with ``sqlalchemy.url`` set in the ini file.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context

config = context.config


def run(connection: sa.engine.Connection) -> None:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run(config.attributes["connection"])
else:
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run(conn)
        conn.commit()
'''


def migrations_dir(project_dir: Path) -> Path:
    """The project's migrations folder."""
    return Path(project_dir) / "migrations"


def _write_whole(path: Path, text: str) -> None:
    """Write ``path`` so that a reader sees the old file or the new one, never a part
    (two processes starting at once may both write it)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o644)  # a project file, readable as write_text made it (mkstemp: 0600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_folder(folder: Path) -> None:
    """Create ``env.py``, ``script.py.mako`` and ``versions/`` where they are missing."""
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    env = folder / "env.py"
    if not env.exists():
        _write_whole(env, ENV_PY)
        log.info("wrote %s", env)
    mako = folder / "script.py.mako"
    if not mako.exists():
        _write_whole(mako, TEMPLATE.read_text(encoding="utf-8"))


def writable(folder: Path) -> bool:
    """Whether revisions can be written into ``folder`` (creating it if needed)."""
    try:
        ensure_folder(folder)
        # a probe of its own: two starts at once must not remove each other's
        fd, probe = tempfile.mkstemp(dir=folder / "versions", prefix=".campo-write-test-")
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError as exc:
        log.warning("migrations folder %s is not writable: %s", folder, exc)
        return False


def config_for(folder: Path, connection: Connection | None = None) -> Config:
    """An Alembic Config for ``folder`` that runs on ``connection``."""
    cfg = Config(cmd_opts=argparse.Namespace(quiet=True))
    cfg.set_main_option("script_location", str(folder))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", FILE_TEMPLATE)
    cfg.attributes["connection"] = connection
    return cfg


def _scripts(folder: Path) -> ScriptDirectory | None:
    if not (folder / "env.py").exists():
        return None
    return ScriptDirectory.from_config(config_for(folder))


def pending(conn: Connection, folder: Path) -> list[Script]:
    """Revisions of ``folder`` not applied to the database, oldest first."""
    scripts = _scripts(folder)
    if scripts is None:
        return []
    current = MigrationContext.configure(conn).get_current_heads()
    applied: set[str] = set()
    try:
        for head in current:
            applied.update(s.revision for s in scripts.iterate_revisions(head, "base"))
        every = list(scripts.walk_revisions())
    except CommandError as exc:
        raise RevisionError(
            f"the database is at revision {', '.join(current)}, which {folder} does not have "
            f"({exc}); use the migrations folder this database was migrated with") from None
    return [s for s in reversed(every) if s.revision not in applied]


def is_destructive(script: Script) -> bool:
    """Whether a revision says it loses data."""
    return bool(getattr(script.module, "campo_destructive", False))


def write_revision(folder: Path, plan: Plan, message: str | None) -> Path:
    """Write the plan as a new revision file on top of the current head; return its path."""
    ensure_folder(folder)
    scripts = ScriptDirectory.from_config(config_for(folder))
    heads = scripts.get_heads()
    if len(heads) > 1:
        raise RevisionError(f"{folder} has {len(heads)} heads ({', '.join(heads)}); merge them "
                            "first: alembic merge -m merge heads")
    body, imports = render_items(plan.items())
    text = plan.format().replace('"""', "'''").replace("\\", "/")
    script = scripts.generate_revision(
        rev_id(), message or plan.summary(), head="head",
        upgrades=body.replace("\n", "\n    "), imports="\n".join(sorted(imports)),
        plan=text, destructive=bool(plan.destructive))
    assert script is not None
    path = Path(script.path)
    log.info("wrote revision %s (%s)", script.revision, path.name)
    return path


def upgrade(conn: Connection, folder: Path) -> None:
    """Apply every pending revision of ``folder`` on ``conn`` (in its transaction)."""
    command.upgrade(config_for(folder, conn), "heads")
