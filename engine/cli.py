"""The ``campo`` command line. Only this module configures logging handlers.

Subcommands live next to what they drive: :data:`COMMANDS` lists their ``register(subparsers)``
functions. Every command reads the project (``modules/``, ``tags/``, ``screens/``) from the
current folder unless ``--project`` names another, and reports a user's mistake as a message
and exit code, never a traceback: commands raise :class:`engine.errors.UserError` (a leaf
module), this module prints it. Nothing below the CLI imports it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .alarms import commands as alarm_commands
from .auth import commands as auth_commands
from .db import commands as db_commands
from .demo import commands as demo_commands
from .errors import UserError
from .logs import configure_logging
from .options import add_project_option, settings_from
from .rules import commands as rules_commands
from .scada import commands as scada_commands
from .scada import simulate_command
from .wiring import edge, history_commands, serve

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]
Register = Callable[[Any], None]

#: The functions that add subcommands (``register(subparsers)``), in help order.
COMMANDS: tuple[Register, ...] = (
    db_commands.register,
    serve.register,
    edge.register,
    history_commands.register,
    scada_commands.register,
    simulate_command.register,
    auth_commands.register,
    rules_commands.register,
    alarm_commands.register,
    demo_commands.register,
)


def _validate(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.path is not None:
        settings = settings.model_copy(update={"project": args.path})
    if not settings.project.is_dir():
        raise UserError(f"{settings.project}: no such folder")
    if not (settings.project / "modules").is_dir():
        raise UserError(f"{settings.project}: no modules/ folder here; give the project folder "
                        "(the one that contains modules/)")
    # site parameters may read env: names; alarm expressions are checked in the same run
    cp, alarms = alarm_commands.check_project(settings, os.environ)
    model, tags = cp.model, cp.tags
    counts = [f"{len(model.modules)} modules", f"{len(model.entities)} entities",
              f"{len(model.roles)} roles"]
    if tags is not None:
        counts += [_count(len(tags.sites), "site"), _count(len(tags.tags), "tag")]
    layouts = cp.project.layouts
    if layouts.forms or layouts.lists:
        counts.append(_count(len(layouts.forms) + len(layouts.lists), "layout"))
    if alarms is not None and alarms.alarms:
        counts.append(_count(len(alarms.alarms), "alarm"))
    if cp.project.notify is not None:
        counts.append(_count(len(cp.project.notify.channels), "notification channel"))
    print("ok: " + ", ".join(counts))
    for w in alarms.warnings if alarms is not None else ():
        print(w.format())
    return 0


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _schema(args: argparse.Namespace) -> int:
    from metamodel.schema import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="campo", description="Campo ERP + SCADA engine")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("validate", help="check the YAML definitions (modules, tags, alarm "
                       "rules, layouts, notify/) and report every problem")
    p.add_argument("path", nargs="?", type=Path, default=None, help="project folder")
    add_project_option(p)
    p.set_defaults(handler=_validate)
    p = sub.add_parser("schema", help="print the JSON Schema of the YAML language")
    p.set_defaults(handler=_schema)
    for register in COMMANDS:
        register(sub)
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
    sys.exit(main())
