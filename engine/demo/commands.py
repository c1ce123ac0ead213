"""``campo demo load [--data DIR]``: fill the database with the project's demo data sets
(``demo/*.yaml``) through the REST API's own write path, with a progress bar; idempotent."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.options import add_database_option, add_project_option, settings_from
from engine.rules import load_model


def _load(args: argparse.Namespace) -> int:
    from engine.auth import ensure_platform_tables
    from engine.db import create_engine_for
    from engine.wiring.startup import prepare_database

    from .loader import load_demo

    settings = settings_from(args)
    model = load_model(settings)
    for name in ("engine.api", "engine.auth", "engine.audit"):  # one line per request
        logging.getLogger(name).setLevel(logging.WARNING)
    folder = args.data or settings.project / "demo"
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (demo data sets are demo/*.yaml)")
    engine = create_engine_for(settings.resolved_database_url())
    try:
        for line in prepare_database(engine, model, settings.project):
            print(f"applied: {line}", flush=True)
        ensure_platform_tables(engine)
        counts = load_demo(model, engine, settings, folder, out=sys.stderr)
    finally:
        engine.dispose()
    print(f"demo data: {counts['created']} records created, {counts['existing']} already "
          f"there, {counts['actions']} workflow actions run", flush=True)
    return 0


def register(subparsers: Any) -> None:
    """Add ``campo demo``."""
    demo = subparsers.add_parser("demo", help="demo data sets (demo/*.yaml)")
    sub = demo.add_subparsers(dest="demo_command", required=True)
    p = sub.add_parser("load", help="create the demo records through the API (idempotent)")
    add_project_option(p)
    add_database_option(p)
    p.add_argument("--data", type=Path, default=None,
                   help="folder of data sets (default: the project's demo/)")
    p.set_defaults(handler=_load)
