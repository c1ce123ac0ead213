"""The ``campo`` command line. Only this module configures logging handlers.

Subcommands live next to what they drive: each module in :data:`COMMAND_MODULES` has a
``register(subparsers)`` function that adds its commands. Every command reads the project
(``modules/``, ``tags/``, ``screens/``) from the current folder unless ``--project`` names
another, and reports a user's mistake as a message and exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from metamodel import DefinitionError, Model

from .settings import Settings

log = logging.getLogger(__name__)

#: Modules that add subcommands (``register(subparsers)``), in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "engine.db.commands",
    "engine.serve",
    "engine.edge",
    "engine.scada.commands",
    "engine.auth.commands",
    "engine.rules.commands",
)

#: What ``campo serve`` runs next to the API, as ``"module:function"``. The function is
#: called with ``(model, engine, settings)`` and returns None or an object with optional
#: ``blueprints`` (Flask blueprints to add), ``start()`` and ``stop()``. The SCADA runtime
#: plugs in here, so ``engine.api`` and ``engine.scada`` never import each other.
SERVE_PLUGINS: tuple[str, ...] = (
    "engine.scada.simulator:serve_plugin",
    "engine.edge:serve_plugin",
)

Handler = Callable[[argparse.Namespace], int]


class UserError(Exception):
    """A mistake of the person running the command: printed, exit code 1 (or ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from ``CAMPO_*`` variables, overridden by the flags given on the command line."""
    overrides = {k: v for k, v in {
        "project": getattr(args, "project", None),
        "database_url": getattr(args, "database_url", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "mqtt_url": getattr(args, "mqtt_url", None),
        "overlays": getattr(args, "overlay", None) or None,
    }.items() if v is not None}
    return Settings(**overrides)


def load_model(settings: Settings) -> Model:
    """Load the project's YAML (plus overlays), compile its expressions, or raise
    :class:`UserError` with every problem."""
    from .rules import load_project

    try:
        return load_project(settings.project, settings.overlays)
    except DefinitionError as err:
        raise UserError(err.report()) from None


def add_project_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=Path, default=None,
                   help="folder with modules/, tags/ and screens/ (default: current folder)")
    p.add_argument("--overlay", type=Path, action="append", default=None, metavar="DIR",
                   help="site overlay folder with modules/**/*.yaml applied on top of the "
                        "project; repeatable, later ones win (env CAMPO_OVERLAYS, "
                        "comma-separated)")


def add_database_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", default=None,
                   help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
                        "(default: SQLite file in the data folder; env CAMPO_DATABASE_URL)")


def _validate(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.path is not None:
        settings = settings.model_copy(update={"project": args.path})
    if not settings.project.is_dir():
        raise UserError(f"{settings.project}: no such folder")
    if not (settings.project / "modules").is_dir():
        raise UserError(f"{settings.project}: no modules/ folder here; give the project folder "
                        "(the one that contains modules/)")
    model = load_model(settings)
    print(f"ok: {len(model.modules)} modules, {len(model.entities)} entities, "
          f"{len(model.roles)} roles")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from metamodel.schema import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0


class JsonFormatter(logging.Formatter):
    """One JSON object per line on stderr (ARCHITECTURE: JSON logs)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": self.formatTime(record), "level": record.levelname,
               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


#: chatty libraries: their INFO lines are per request or per notification
QUIET_LOGGERS = ("asyncua", "pymodbus", "urllib3", "werkzeug")


def configure_logging(verbose: bool = False) -> None:
    """JSON lines to stderr; libraries' per-message INFO logging kept out unless verbose."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="campo", description="Campo ERP + SCADA engine")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("validate", help="check the YAML definitions and report every problem")
    p.add_argument("path", nargs="?", type=Path, default=None, help="project folder")
    add_project_option(p)
    p.set_defaults(handler=_validate)
    p = sub.add_parser("schema", help="print the JSON Schema of the YAML language")
    p.set_defaults(handler=_schema)
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``campo`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    handler: Handler = args.handler
    try:
        return handler(args)
    except UserError as err:
        print(str(err), file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    # run the importable engine.cli, not this __main__ copy: the UserError other modules
    # raise (``from engine.cli import UserError``) is that module's class
    from engine.cli import main as _main

    sys.exit(_main())
