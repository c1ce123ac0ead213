"""Write the next platform revision from the difference between the code and the revisions.

A developer tool (not used at run time)::

    python -m engine.db.platform_revision -m "alarm journal"

imports every module of ``engine`` (so every table declared on
:data:`engine.db.platform.metadata` is known), migrates a scratch SQLite database to the
newest platform revision, compares it with the metadata (Alembic autogenerate) and writes
``engine/db/platform_versions/<NNNN>_<slug>.py``: ``op`` calls in batch mode, and after each
created or changed table the calls of its :func:`~engine.db.platform.on_create` hooks. Read
and test the file before committing it: autogenerate does not see renames (write
``op.alter_column(..., new_column_name=...)`` by hand) and a new required column needs a
server default when the table has rows.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext
from alembic.operations import ops

from . import platform
from .render import _render_item

TEMPLATE = '''"""{message}

Written by python -m engine.db.platform_revision; review before committing.
"""
# ruff: noqa: E501

import sqlalchemy as sa
from alembic import op
{imports}
revision = "{revision}"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    raise NotImplementedError("migrations go forward only")
'''


def import_engine() -> None:
    """Import every module of ``engine`` so every platform table is declared."""
    import engine

    for info in pkgutil.walk_packages(engine.__path__, "engine."):
        importlib.import_module(info.name)


def diff_ops(location: Path = platform.VERSIONS,
             metadata: sa.MetaData = platform.metadata) -> ops.UpgradeOps:
    """What the newest revision lacks to match ``metadata`` (the platform tables)."""
    scratch = sa.create_engine("sqlite://")
    with scratch.begin() as conn:
        platform.upgrade_on(conn, location)
        ctx = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, type_, _parents: type_ != "table"
            or name != platform.VERSION_TABLE,
        })
        script = produce_migrations(ctx, metadata)
    scratch.dispose()
    assert script.upgrade_ops is not None
    return script.upgrade_ops


def _hook_call(fn: Any, args: str) -> tuple[str, str]:
    return f"import {fn.__module__}", f"{fn.__module__}.{fn.__qualname__}({args})"


def render_body(upgrade_ops: ops.UpgradeOps, metadata: sa.MetaData = platform.metadata
                ) -> tuple[str, set[str]]:
    """The body of ``upgrade()`` and the imports it needs."""
    pg = MigrationContext.configure(dialect_name="postgresql")  # neutral server defaults
    lines: list[str] = []
    imports: set[str] = set()
    for op in upgrade_ops.ops:
        name = getattr(op, "table_name", None)
        table = metadata.tables.get(str(name))
        if isinstance(op, ops.CreateTableOp):
            op.info = {}
        text = render_python_code(ops.UpgradeOps([op]), render_as_batch=True,
                                  render_item=_render_item, migration_context=pg)
        body = [ln for ln in text.split("\n") if ln.strip() and "### " not in ln]
        options = platform.options_of(table) if table is not None else None
        if isinstance(op, ops.CreateTableOp) and options is not None:
            imp, call = _hook_call(options, "op.get_bind()")
            imports.add(imp)
            if not body[-2].rstrip().endswith((",", "(")):  # Alembic's last argument
                body[-2] += ","
            body[-1] = f"    **{call},\n    )"
        lines += body
        if table is not None and isinstance(op, (ops.CreateTableOp, ops.ModifyTableOps)):
            for hook in platform.hooks_of(table):
                imp, call = _hook_call(hook, f"op.get_bind(), {table.name!r}")
                imports.add(imp)
                lines.append(f"    {call}")
    return "\n".join(lines), imports


def next_revision(location: Path = platform.VERSIONS) -> tuple[str, int]:
    """The current head and the number of the next revision file."""
    heads = platform.heads(location)
    if len(heads) != 1:
        raise SystemExit(f"{location} has {len(heads)} heads ({', '.join(heads)}); give the "
                         "newer revision the other as down_revision first")
    numbers = [int(m.group(1)) for p in location.glob("*.py")
               if (m := re.match(r"(\d{4})_", p.name))]
    return heads[0], max(numbers, default=0) + 1


def write_revision(message: str, location: Path = platform.VERSIONS,
                   metadata: sa.MetaData = platform.metadata) -> Path | None:
    """Write the next revision into ``location``; None when nothing changed."""
    upgrade_ops = diff_ops(location, metadata)
    if upgrade_ops.is_empty():
        return None
    body, imports = render_body(upgrade_ops, metadata)
    head, number = next_revision(location)
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "change"
    path = location / f"{number:04d}_{slug}.py"
    path.write_text(TEMPLATE.format(
        message=message, imports="".join(f"\n{i}" for i in sorted(imports)) + "\n",
        revision=f"p{number:04d}", down=head, body=body), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m engine.db.platform_revision -m MESSAGE``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-m", "--message", required=True, help="what the revision does")
    parser.add_argument("--versions", type=Path, default=platform.VERSIONS,
                        help="folder of the platform revisions (default: the engine's)")
    args = parser.parse_args(argv)
    import_engine()
    path = write_revision(args.message, args.versions)
    print(f"wrote {path}" if path else "No changes: the platform revisions match the code.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
