"""``campo serve``: migrate the database, then serve the API with waitress (threads).

Threads, not gevent: the embedded default is SQLite, whose driver never yields to gevent (see
ARCHITECTURE.md). Runtimes that live beside the API (the simulated pad, the SCADA scan
loop) are listed in :data:`engine.cli.SERVE_PLUGINS` and started here; ``engine.api`` never
imports them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

from engine.db import build_metadata, create_engine_for
from engine.settings import Settings
from metamodel import Model

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command."""
    from engine.cli import add_database_option, add_project_option

    p = subparsers.add_parser(
        "serve", help="apply safe schema changes and serve the REST API",
        description="Load the model, apply non-destructive schema changes, and serve the "
                    "REST API (OpenAPI at /api/openapi.json, docs at /api/docs) with waitress.")
    add_project_option(p)
    add_database_option(p)
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; "
                                                "env CAMPO_HOST)")
    p.add_argument("--port", type=int, default=None,
                   help="port (default 8080; 0 picks a free port; env CAMPO_PORT)")
    p.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    p.set_defaults(handler=serve_command)


def prepare_database(engine: Engine, model: Model, project_dir: Path) -> list[str]:
    """Bring the database up to the model, refusing destructive changes (UserError)."""
    from engine.cli import UserError

    try:
        from engine.db.migrate import MigrationError, apply_on_start
    except ImportError as exc:  # the migration engine is not installed in this tree
        log.warning("engine.db.migrate unavailable (%s); creating missing tables only", exc)
        build_metadata(model).create_all(engine)
        return []
    try:
        return apply_on_start(engine, model, project_dir)
    except MigrationError as exc:
        raise UserError(f"{exc}\nnot starting: the database needs changes that "
                        "'campo serve' does not make on its own (see 'campo plan' and "
                        "'campo migrate --allow-data-loss')") from None
    except sa.exc.OperationalError as exc:
        raise UserError(f"cannot reach the database {engine.url!r}: "
                        f"{str(exc.orig).strip().splitlines()[0]}") from None


class Plugin:
    """A runtime started beside the API (see :data:`engine.cli.SERVE_PLUGINS`)."""

    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self.blueprints = list(getattr(obj, "blueprints", ()) or ())
        self._start: Callable[[], None] | None = getattr(obj, "start", None)
        self._stop: Callable[[], None] | None = getattr(obj, "stop", None)

    def start_hook(self, _app: Flask) -> Callable[[], None] | None:
        """``on_start`` hook for :func:`engine.api.create_app`."""
        if self._start is not None:
            log.info("starting %s", self.name)
            self._start()
        return self._stop


def load_plugins(names: tuple[str, ...], model: Model, engine: Engine,
                 settings: Settings) -> list[Plugin]:
    """Call each ``module:function`` of ``names``; skip those that return None."""
    plugins = []
    for spec in names:
        module_name, _, func_name = spec.partition(":")
        func = getattr(importlib.import_module(module_name), func_name)
        obj = func(model, engine, settings)
        if obj is not None:
            plugins.append(Plugin(spec, obj))
    return plugins


def serve_command(args: argparse.Namespace) -> int:
    """Handler of ``campo serve``."""
    from engine import cli

    from .app import create_app, shutdown

    settings = cli.settings_from(args)
    model = cli.load_model(settings)
    engine = create_engine_for(settings.resolved_database_url())
    applied = prepare_database(engine, model, settings.project)
    for line in applied:
        print(f"applied: {line}", flush=True)
    plugins = load_plugins(getattr(cli, "SERVE_PLUGINS", ()), model, engine, settings)
    try:
        app = create_app(model, engine, settings,
                         extra_blueprints=[b for p in plugins for b in p.blueprints],
                         on_start=[p.start_hook for p in plugins])
    except ValueError as exc:  # e.g. a module named like a built-in URL
        raise cli.UserError(str(exc)) from None
    try:
        run_waitress(app, settings.host, settings.port, args.threads)
    finally:
        shutdown(app)
        engine.dispose()
    return 0


def run_waitress(app: Flask, host: str, port: int, threads: int) -> None:
    """Serve until SIGINT/SIGTERM; prints the URL once listening."""
    from waitress.server import create_server  # type: ignore[import-untyped]

    server = create_server(app, host=host, port=port, threads=threads, ident="campo")
    bound = server.effective_port
    print(f"serving on http://{host}:{bound}  (docs: http://{host}:{bound}/api/docs)",
          flush=True)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
    sys.stdout.flush()
