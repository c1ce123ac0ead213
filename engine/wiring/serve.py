"""``campo serve``: migrate, then serve the API, live tags and the SCADA runtime.

Wiring: this module joins the web side (:mod:`engine.api`, :mod:`engine.auth`) and the
runtimes listed in :data:`engine.wiring.plugins.SERVE_PLUGINS` (the simulated pad,
:mod:`engine.wiring.edge`), which never import each other.

Phases: in the gunicorn master, load and validate everything a mistake could break (YAML,
tags, JWT secret, database schema: a destructive change stops the start with the plan);
then, in the single ``gthread`` worker, build the app, start the plugins and serve.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from flask import Flask

from engine.errors import UserError
from engine.options import add_database_option, add_project_option, load_model, settings_from
from engine.settings import Settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command."""
    p = subparsers.add_parser(
        "serve", help="apply safe schema changes and serve the API, live tags and SCADA",
        description="Load the model, apply non-destructive schema changes, start the SCADA "
                    "runtime (and the simulated pad unless CAMPO_SIMULATE=false) and serve the "
                    "REST API (OpenAPI at /api/openapi.json, docs at /api/docs) and the "
                    "WebSocket /api/ws with gunicorn (one worker, threads).")
    add_project_option(p)
    add_database_option(p)
    p.add_argument("--host", default=None,
                   help="address to listen on (default 127.0.0.1; env CAMPO_HOST)")
    p.add_argument("--port", type=int, default=None,
                   help="port (default 8080; 0 picks a free port; env CAMPO_PORT)")
    p.add_argument("--threads", type=int, default=16,
                   help="worker threads (default 16; each open WebSocket holds one)")
    p.set_defaults(handler=serve_command)


def check_before_start(settings: Settings, model: Any) -> None:
    """Fail fast (UserError) on what would otherwise break inside the worker."""
    from engine.auth import AuthConfigError, resolve_jwt_secret
    from metamodel import DefinitionError

    from .edge import load_site_tags

    try:
        resolve_jwt_secret(settings)
    except AuthConfigError as err:
        raise UserError(str(err)) from None
    try:
        tags = load_site_tags(settings.project, model)
        if tags is not None and tags.alarms:  # alarm expressions and notify/: fail here
            from engine.alarms.compile import compile_alarms
            from metamodel.notify import load_notify

            compile_alarms(tags)
            load_notify(settings.project)
    except DefinitionError as err:
        raise UserError(err.report()) from None
    if settings.bus not in ("inproc", "mqtt"):
        raise UserError(f"CAMPO_BUS must be 'inproc' or 'mqtt', not {settings.bus!r}")
    if settings.bus == "mqtt" and not settings.mqtt_url:
        raise UserError("CAMPO_BUS=mqtt needs CAMPO_MQTT_URL")


def build_app(settings: Settings, model: Any, url: str) -> Flask:
    """The full app: generated API + auth + plugins (called inside the worker)."""
    from engine.api import create_app
    from engine.auth.hooks import api_hooks, auth_init_hook
    from engine.db import create_engine_for

    from .alarms import workflow_notifier
    from .plugins import SERVE_PLUGINS
    from .startup import load_plugins

    engine = create_engine_for(url)
    plugins = load_plugins(SERVE_PLUGINS, model, engine, settings)
    on_init: list[Any] = [auth_init_hook(engine, settings, model)]
    on_init += [p.init_app for p in plugins if p.init_app is not None]
    hooks = api_hooks()  # workflow transitions may notify (notify/ hooks)
    hooks["record_change"] = workflow_notifier(settings, engine, hooks["record_change"])
    app = create_app(model, engine, settings, **hooks, on_init=on_init,
                     extra_blueprints=[b for p in plugins for b in p.blueprints],
                     on_start=[p.start_hook for p in plugins])
    app.extensions["campo_engine"] = engine
    return app


def serve_command(args: argparse.Namespace) -> int:
    """Handler of ``campo serve``."""
    from engine.api import shutdown
    from engine.auth import ensure_platform_tables
    from engine.db import create_engine_for

    from .server import run
    from .startup import prepare_database

    settings = settings_from(args)
    model = load_model(settings)
    check_before_start(settings, model)  # JWT secret, tags: before touching the database
    url = settings.resolved_database_url()
    engine = create_engine_for(url)
    try:
        applied = prepare_database(engine, model, settings.project)
        ensure_platform_tables(engine)
    except UserError:
        raise
    except Exception as exc:  # an unreachable or refusing database: a message, not a trace
        raise UserError(f"database {engine.url.render_as_string(hide_password=True)}: "
                            f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()  # the worker opens its own connections
    for line in applied:
        print(f"applied: {line}", flush=True)
    apps: list[Flask] = []

    def factory() -> Flask:
        app = build_app(settings, model, url)
        apps.append(app)
        return app

    def ready(host: str, port: int) -> None:
        print(f"serving on http://{host}:{port}  (docs: http://{host}:{port}/api/docs)",
              flush=True)

    def on_exit() -> None:
        for app in apps:
            shutdown(app)
            app.extensions["campo_engine"].dispose()

    run(factory, settings.host, settings.port, args.threads, on_ready=ready, on_exit=on_exit)
    return 0
