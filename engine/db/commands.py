"""``campo plan`` and ``campo migrate``: show and apply what the database needs.

``campo plan`` prints the plan against the live database and changes nothing. ``campo
migrate`` writes the plan as an Alembic revision into ``migrations/versions/`` and applies
it; a plan with destructive steps (marked ``!``) is refused with exit code 1 unless
``--allow-data-loss`` is given, and a blocked one (marked ``x``) is always refused.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..errors import UserError
from ..options import add_database_option, add_project_option, settings_from
from ..rules import load_model
from .migrate import (
    DestructiveChange,
    MigrationBlocked,
    MigrationError,
    migrate,
    plan,
)
from .tables import create_engine_for

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``plan`` and ``migrate`` to the ``campo`` command line."""
    p = subparsers.add_parser(
        "plan", help="show what the database needs to match the model (changes nothing)")
    add_project_option(p)
    add_database_option(p)
    p.set_defaults(handler=_plan)
    p = subparsers.add_parser(
        "migrate", help="write the plan as a revision into migrations/ and apply it")
    add_project_option(p)
    add_database_option(p)
    p.add_argument("--allow-data-loss", action="store_true",
                   help="apply destructive steps (drops, narrowing type changes)")
    p.add_argument("-m", "--message", default=None,
                   help="revision message (default: a summary of the plan)")
    p.set_defaults(handler=_migrate)


@contextmanager
def _engine(args: argparse.Namespace) -> Iterator[tuple[Engine, Any]]:
    if not getattr(args, "verbose", False):
        logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = settings_from(args)
    model = load_model(settings)
    url = settings.resolved_database_url()
    engine = create_engine_for(url)
    try:
        yield engine, (model, settings)
    except sa.exc.DBAPIError as err:
        raise UserError(f"database error on {engine.url.render_as_string()}: "
                        f"{str(err.orig).strip()} (nothing was changed)") from None
    except MigrationError as err:
        raise UserError(f"error: {err}") from None
    finally:
        engine.dispose()


def _plan(args: argparse.Namespace) -> int:
    with _engine(args) as (engine, (model, settings)):
        print(plan(engine, model, settings.project).format())
    return 0


def _migrate(args: argparse.Namespace) -> int:
    with _engine(args) as (engine, (model, settings)):
        try:
            result = migrate(engine, model, settings.project,
                             allow_data_loss=args.allow_data_loss, message=args.message)
        except DestructiveChange as err:
            print(err.plan_text)
            raise UserError("refused: the plan loses data (steps marked '!'); read the blast "
                            "radius, then re-run with --allow-data-loss") from None
        except MigrationBlocked as err:
            print(str(err))
            raise UserError("refused: the rows in the database do not allow the steps "
                            "marked 'x'") from None
    for line in result.platform:
        print(f"applied platform revision {line}")
    for line in result.applied:
        if line.startswith("revision "):
            print(f"applied {line}")
    if result.plan.empty:
        print(f"No changes: the database matches the model ({result.plan.url}).")
        return 0
    print(result.plan.format())
    where = result.revision.as_posix() if result.revision else "no revision file (read-only)"
    print(f"applied {len(result.plan.steps)} change(s): {where}")
    return 0
