"""What the commands share: the common options and the settings they give.

Each command module (``engine.db.commands``, ``engine.wiring.serve``, ...) adds its own
subcommand with these helpers; :mod:`engine.cli` only lists the modules and runs them. The
model itself comes from :func:`engine.rules.load_model`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from .errors import UserError
from .settings import Settings


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from ``CAMPO_*`` variables, overridden by the flags given on the command line;
    :class:`~engine.errors.UserError` naming each variable that does not parse."""
    overrides = {k: v for k, v in {
        "project": getattr(args, "project", None),
        "database_url": getattr(args, "database_url", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "mqtt_url": getattr(args, "mqtt_url", None),
        "overlays": getattr(args, "overlay", None) or None,
    }.items() if v is not None}
    try:
        return Settings(**overrides)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            name = str(e["loc"][0]) if e["loc"] else "?"
            where = f"--{name.replace('_', '-')}" if name in overrides else f"CAMPO_{name.upper()}"
            lines.append(f"{where}: {e['msg'].replace('Input should be', 'expected')}, "
                         f"got {e.get('input')!r}")
        raise UserError("\n".join(lines)) from None


def add_project_option(p: argparse.ArgumentParser) -> None:
    """``--project`` and ``--overlay``."""
    p.add_argument("--project", type=Path, default=None,
                   help="folder with modules/, tags/ and screens/ (default: current folder)")
    p.add_argument("--overlay", type=Path, action="append", default=None, metavar="DIR",
                   help="site overlay folder with modules/**/*.yaml applied on top of the "
                        "project; repeatable, later ones win (env CAMPO_OVERLAYS, "
                        "comma-separated)")


def add_database_option(p: argparse.ArgumentParser) -> None:
    """``--database-url``."""
    p.add_argument("--database-url", default=None,
                   help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
                        "(default: SQLite file in the data folder; env CAMPO_DATABASE_URL)")
