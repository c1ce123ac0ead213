"""``campo serve`` plugin of the desk: static shell plus ``/api/desk/*``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy.engine import Engine

from engine.settings import Settings
from metamodel import Model

from .static import PUBLIC_PATHS, PUBLIC_PREFIX, StaticFiles, default_ui_dir, static_blueprint

log = logging.getLogger(__name__)


def check_timezone(name: str) -> None:
    """UserError unless ``name`` is a time zone this machine knows (``CAMPO_TIMEZONE``)."""
    import zoneinfo

    from engine.errors import UserError

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise UserError(f"CAMPO_TIMEZONE={name!r} is not a known time zone; use an IANA "
                        "name such as 'America/Argentina/Buenos_Aires' or 'UTC'") from None


class DeskPlugin:
    """A serve plugin (:func:`engine.wiring.startup.load_plugins`): ``init_app`` only."""

    def __init__(self, model: Model, engine: Engine, settings: Settings) -> None:
        self.model = model
        self.engine = engine
        self.settings = settings
        root = settings.ui_dir or default_ui_dir()
        self.files = StaticFiles(root)
        self.blueprints: list[Any] = []

    def init_app(self, app: Flask, api: Any) -> None:
        """Register the shell (public) and the desk API (authenticated)."""
        from engine.auth.state import EXTENSION_KEY

        from .routes import build_blueprint
        from .tables import ensure_desk_tables

        ensure_desk_tables(self.engine)
        app.register_blueprint(static_blueprint(self.files))
        api.register_blueprint(build_blueprint(self))
        state = app.extensions.get(EXTENSION_KEY)
        if state is not None:  # the shell holds code, never data: reachable without a token
            state.public_paths = state.public_paths | set(PUBLIC_PATHS)
            state.public_prefixes = (*state.public_prefixes, PUBLIC_PREFIX)
        app.extensions["campo_desk"] = self



def serve_plugin(model: Model, engine: Engine, settings: Settings) -> DeskPlugin:
    """``campo serve`` plugin (see :data:`engine.wiring.plugins.SERVE_PLUGINS`); a mistake in the
    layout files or the time zone is a UserError listing every problem."""
    from engine.errors import UserError
    from metamodel import DefinitionError
    from metamodel.layout import load_layouts

    try:
        load_layouts(settings.project, model)
    except DefinitionError as err:
        raise UserError(err.report()) from None
    check_timezone(settings.timezone)
    if not (settings.ui_dir or default_ui_dir()).joinpath("index.html").is_file():
        log.warning("desk: no index.html in %s; the shell at / will answer 404",
                    settings.ui_dir or default_ui_dir())
    return DeskPlugin(model, engine, settings)
