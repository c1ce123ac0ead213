"""``campo serve``: migrate, then serve the API, live tags and the SCADA runtime.

Wiring: this module joins the web side (:mod:`engine.api`, :mod:`engine.auth`) and the
runtimes listed in :data:`engine.wiring.plugins.SERVE_PLUGINS` (the simulated pad,
:mod:`engine.wiring.edge`), which never import each other.

Phases: first load and validate everything a mistake could break (YAML, tags, JWT secret,
database schema: a destructive change stops the start with the plan); then replace this
process with the lean gunicorn master (:mod:`engine.wiring.master`), whose ``gthread``
workers each build the app, start the plugins and serve. On PostgreSQL there are
``--workers`` of them (default: the number of cores) and the runtime runs in its own
``campo scada`` process, joined by the MQTT bus; SQLite keeps one web process (see
:func:`plan_workers`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from flask import Flask

from engine.errors import UserError
from engine.options import add_database_option, add_project_option, settings_from
from engine.rules import load_model
from engine.settings import Settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command."""
    p = subparsers.add_parser(
        "serve", help="apply safe schema changes and serve the API, live tags and SCADA",
        description="Load the model, apply non-destructive schema changes, start the SCADA "
                    "runtime (and the simulated pad unless CAMPO_SIMULATE=false) and serve the "
                    "REST API (OpenAPI at /api/openapi.json, docs at /api/docs) and the "
                    "WebSocket /api/ws with gunicorn (threads; on PostgreSQL one web process "
                    "per core and the SCADA runtime in its own process).")
    add_project_option(p)
    add_database_option(p)
    p.add_argument("--host", default=None,
                   help="address to listen on (default 127.0.0.1; env CAMPO_HOST)")
    p.add_argument("--port", type=int, default=None,
                   help="port (default 8080; 0 picks a free port; env CAMPO_PORT)")
    p.add_argument("--threads", type=int, default=16,
                   help="threads per web process (default 16; WebSockets hold none)")
    p.add_argument("--workers", type=int, default=None,
                   help="web processes (PostgreSQL; default: the number of cores). SQLite "
                        "always serves from one")
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
        if tags is not None:
            from engine.historian.erp import load_rules

            load_rules(settings.project, model, tags)  # ERP rollups: checked before start
        if tags is not None and tags.alarms:  # alarm expressions: fail here
            from engine.alarms.compile import compile_alarms

            compile_alarms(tags)
        # notify/ (alarm routes, workflow hooks) against the modules and tags
        from metamodel.notify import load_notify
        from metamodel.project import load_project_notify

        if model is not None:
            load_project_notify(settings.project, model, tags)
        else:
            load_notify(settings.project)
    except DefinitionError as err:
        raise UserError(err.report()) from None
    if settings.bus not in ("inproc", "mqtt"):
        raise UserError(f"CAMPO_BUS must be 'inproc' or 'mqtt', not {settings.bus!r}")
    if settings.bus == "mqtt" and not settings.mqtt_url:
        raise UserError("CAMPO_BUS=mqtt needs CAMPO_MQTT_URL")
    from engine.counters import Rate

    for name in ("api_rate_limit", "login_rate_limit"):
        try:
            Rate.parse(getattr(settings, name))
        except ValueError as err:
            raise UserError(f"CAMPO_{name.upper()}: {err}") from None


def plan_workers(settings: Settings, url: str, asked: int | None,
                 runtime: bool) -> tuple[int, str]:
    """How many web processes to run, and why (printed at start)."""
    if url.startswith("sqlite"):
        why = ("SQLite: one web process (sqlite3 serialises writers and must not run under "
               "gevent; the SCADA runtime shares the process and its in-process bus)")
        if asked is not None and asked > 1:
            print(f"--workers {asked} ignored: {why}", file=sys.stderr, flush=True)
        return 1, why
    cores = os.cpu_count() or 1
    n = max(1, asked if asked is not None else cores)
    if n > 1 and runtime and not settings.mqtt_url:
        if asked is not None:
            raise UserError(f"--workers {n} runs the SCADA runtime in its own process, "
                            "joined to the web processes by MQTT: set CAMPO_MQTT_URL (or "
                            "CAMPO_SCADA=false)")
        return 1, ("one web process: the SCADA runtime shares it (set CAMPO_MQTT_URL to run "
                   f"one per core, {cores}, with the runtime in its own process)")
    if n == 1:
        return 1, "one web process (--workers 1)"
    return n, (f"{n} web processes" + (" and the SCADA runtime in its own process "
                                        "(campo scada), joined by MQTT" if runtime else ""))


def build_app(settings: Settings, model: Any, url: str, counters: Any = None) -> Flask:
    """The full app: generated API + auth + plugins (called inside the worker)."""
    from engine.api import create_app
    from engine.auth.hooks import api_hooks, auth_init_hook
    from engine.db import create_engine_for

    from .alarms import workflow_notifier
    from .plugins import SERVE_PLUGINS
    from .startup import load_plugins

    engine = create_engine_for(url)
    plugins = load_plugins(SERVE_PLUGINS, model, engine, settings)
    on_init: list[Any] = [auth_init_hook(engine, settings, model, counters=counters)]
    on_init += [p.init_app for p in plugins if p.init_app is not None]
    hooks = api_hooks()  # workflow transitions may notify (notify/ hooks)
    hooks["record_change"] = workflow_notifier(settings, engine, hooks["record_change"])
    app = create_app(model, engine, settings, **hooks, on_init=on_init,
                     extra_blueprints=[b for p in plugins for b in p.blueprints],
                     on_start=[p.start_hook for p in plugins])
    app.extensions["campo_engine"] = engine
    return app


def unit_factors(model: Any) -> list[list[Any]]:
    """The unit conversions the web processes will ask for: those the model's checks made
    (export units) and those of the unit systems' plans (:mod:`engine.units.wsgi`), made
    here once so the workers convert without loading pint."""
    from engine.units import SYSTEMS, known_factors
    from engine.units.wsgi import unit_plan

    for system in SYSTEMS:
        unit_plan(model, system)
    return known_factors()


def serve_command(args: argparse.Namespace) -> int:
    """Handler of ``campo serve``."""
    from engine.auth import ensure_platform_tables
    from engine.db import create_engine_for

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
    from .edge import load_site_tags
    from .master import exec_master, spec_for

    tags = load_site_tags(settings.project, model)
    runtime = bool(tags is not None and tags.devices and settings.scada)
    workers, why = plan_workers(settings, url, getattr(args, "workers", None), runtime)
    print(f"web processes: {why}", flush=True)
    overrides = {k: v for k, v in {
        "project": settings.project, "database_url": getattr(args, "database_url", None),
        "host": settings.host, "port": settings.port, "mqtt_url": settings.mqtt_url or None,
        "overlays": getattr(args, "overlay", None) or None}.items() if v is not None}
    children: list[list[str]] = []
    worker_over: dict[str, Any] = {}
    if workers > 1:
        project = ["--project", str(settings.project)]
        if runtime:
            children.append(["scada", *project])  # the broker URL by environment (master)
        if settings.simulate and tags is not None:
            children.append(["simulate"])
        worker_over = {"scada": False, "simulate": False,
                       "bus": "mqtt" if runtime else settings.bus}
    exec_master(spec_for(overrides, host=settings.host, port=settings.port,
                         threads=args.threads, workers=workers, children=children,
                         worker_overrides=worker_over, verbose=getattr(args, "verbose", False),
                         unit_factors=unit_factors(model)))
    return 0  # pragma: no cover - exec_master does not return
