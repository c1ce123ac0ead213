"""Build the Flask app serving a model: generated CRUD, meta, health, OpenAPI and docs.

Build time (``create_app``) compiles everything per entity: tables, codecs, statements,
dumpers, input schemas and OpenAPI docs. Request time only runs the compiled pieces with a
connection from the engine's pool (one per request).

Example::

    from metamodel import load
    from engine.db import build_metadata, create_engine_for
    from engine.api import create_app
    from engine.settings import Settings

    model = load(".")
    engine = create_engine_for("sqlite:///campo.db")
    build_metadata(model).create_all(engine)
    app = create_app(model, engine, Settings())
    app.test_client().get("/api/showcase/asset?sort=-code&limit=10").json
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import flask
from flask import Flask
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy.engine import Engine

from engine.db import build_metadata
from engine.settings import Settings
from engine.units.wsgi import UnitsMiddleware
from engine.urls import BUILTIN_SEGMENTS
from metamodel import Model

from . import record_events
from .access import (
    Authorize,
    CurrentIdentity,
    CurrentRoles,
    CurrentUser,
    RecordChange,
    RecordDenial,
    RowFilter,
    admin_roles,
    all_rows,
    allow_all,
    no_audit,
    no_denial,
    no_identity,
    no_user,
)
from .body import JSONProvider
from .bounds import IdConverter
from .context import ApiContext
from .docs import Api
from .errors import register_error_handlers
from .health import Health, campo_version, health_blueprint
from .meta import meta_blueprint
from .naming import ensure_tables
from .resource import build_resources
from .trail import AuditView
from .views import delete_referrers, module_blueprints

log = logging.getLogger(__name__)

#: ``on_start(app)`` runs at the end of :func:`create_app`; it may return a stop function.
StartHook = Callable[[Flask], Callable[[], None] | None]
#: ``on_init(app, api)`` runs right after the smorest ``Api`` exists, before any generated
#: blueprint is registered (authentication installs its guard and blueprints here).
InitHook = Callable[[Flask, Api], None]
#: First URL segments under /api that modules may not use (one registry: engine.urls).
RESERVED_SEGMENTS = BUILTIN_SEGMENTS
STATIC = Path(__file__).parent / "static" / "swagger-ui"


def _docs_static() -> flask.Blueprint:
    return flask.Blueprint("swagger_ui", __name__, static_folder=str(STATIC),
                           static_url_path="/static", url_prefix="/api/docs")


def create_app(model: Model, engine: Engine, settings: Settings | None = None, *,
               authorize: Authorize = allow_all, current_user: CurrentUser = no_user,
               row_filter: RowFilter = all_rows, record_change: RecordChange = no_audit,
               current_roles: CurrentRoles = admin_roles,
               record_denial: RecordDenial = no_denial,
               current_identity: CurrentIdentity = no_identity,
               on_init: Iterable[InitHook] = (),
               extra_blueprints: Iterable[flask.Blueprint] = (),
               on_start: Iterable[StartHook] = ()) -> Flask:
    """The WSGI app for ``model`` on ``engine``.

    :param authorize: ``(entity, action) -> bool`` called by every generated view.
    :param current_user: ``() -> str | None`` recorded in created_by/updated_by.
    :param row_filter: ``(entity, table) -> clause | None``: the caller's row-level scope,
        added to every read and to the link checks of writes.
    :param record_change: ``(conn, *, action, entity, record_id, before, after)`` audits
        each write in its own transaction.
    :param current_roles: ``() -> frozenset[str]``: the caller's effective roles (workflow
        transitions, ``user.roles`` in expressions); the default acts as admin.
    :param record_denial: ``(entity, action, message, record_id=None)`` audits a 403 the
        API decides itself (read-only fields, writes outside the row scope).
    :param current_identity: ``() -> {"id", "username", "roles", "sites"} | None``: the
        caller as ``user`` in expressions (defaults to current_user/current_roles, no sites).
    :param on_init: hooks called with ``(app, api)`` before the generated blueprints.
    :param extra_blueprints: more routes (flask-smorest Blueprints are also documented).
    :param on_start: hooks called with the app once it is built; a hook may return a
        function that :func:`shutdown` calls.
    """
    settings = settings or Settings()
    clashes = sorted(set(model.modules) & RESERVED_SEGMENTS)
    if clashes:
        raise ValueError(f"module name(s) {', '.join(clashes)} collide with built-in URLs "
                         f"/api/<name>; rename the module(s)")
    app = Flask("engine.api")
    app.config.update(
        API_TITLE="Campo", API_VERSION=campo_version(), OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api", OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs", OPENAPI_SWAGGER_UI_URL="/api/docs/static/",
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None, "deepLinking": True},
        MAX_CONTENT_LENGTH=settings.max_body_bytes,  # larger bodies: 413 (10 MiB default)
    )
    app.json = JSONProvider(app)  # finite numbers only, in and out (engine.jsonio)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.converters["id"] = IdConverter  # <id:record_id>: bounded record ids
    api = Api(app, spec_kwargs={"info": {"description": "Generated from the Campo model: "
                                         "CRUD per entity, /api/meta, /api/health."}})
    register_error_handlers(app)
    app.after_request(_no_type_without_body)
    for init in on_init:
        init(app, api)
    metadata = build_metadata(model)
    ctx = ApiContext(model, engine, settings, build_resources(model, metadata), authorize,
                     current_user, delete_referrers(model, metadata), row_filter,
                     record_change, current_roles, record_denial, current_identity)
    if any(e.workflow is not None or e.series is not None for e in model.entities.values()):
        ensure_tables(engine)  # campo_series, campo_transition (engine.api.naming)
    for blp in module_blueprints(ctx):
        api.register_blueprint(blp)
    api.register_blueprint(meta_blueprint(ctx))
    api.register_blueprint(health_blueprint(Health.from_settings(engine, settings)))
    app.register_blueprint(_docs_static())
    for extra in extra_blueprints:
        if isinstance(extra, ApiBlueprint):
            api.register_blueprint(extra)
        else:
            app.register_blueprint(extra)
    # stopped last: the record events of the last writes go out before the process ends
    stoppers: list[Callable[[], None]] = [functools.partial(_flush_record_events, engine)]
    app.extensions["campo"] = {"context": ctx, "api": api, "stoppers": stoppers}
    app.extensions["campo_audit_view"] = AuditView(ctx)  # GET /api/audit per caller
    for hook in on_start:
        stop = hook(app)
        if stop is not None:
            stoppers.append(stop)
    app.wsgi_app = UnitsMiddleware(app.wsgi_app, model)  # type: ignore[method-assign]
    log.info("API ready: %d entities in %d modules", len(ctx.resources), len(model.modules))
    return app


def _no_type_without_body(resp: flask.Response) -> flask.Response:
    """A 204 or 304 has no body, so no ``Content-Type`` (Flask would say text/html)."""
    if resp.status_code in (204, 304):
        resp.headers.pop("Content-Type", None)
    return resp


def _flush_record_events(engine: Engine) -> None:
    if not record_events.flush(engine):
        log.warning("record events: the last ones could not be sent before stopping")


def shutdown(app: Flask) -> None:
    """Run the stop functions returned by ``on_start`` hooks, last started first."""
    stoppers: list[Callable[[], None]] = app.extensions["campo"]["stoppers"]
    while stoppers:
        stop = stoppers.pop()
        try:
            stop()
        except Exception:  # one failing stop must not keep the others from running
            log.exception("stop hook %r failed", stop)


def api_context(app: Flask) -> Any:
    """The :class:`~engine.api.context.ApiContext` of an app built by :func:`create_app`."""
    return app.extensions["campo"]["context"]
