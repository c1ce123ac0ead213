"""Pieces of ``campo serve``: schema preparation and the plugins run beside the API.

The command itself lives in :mod:`engine.wiring.serve`; the plugin list in
:mod:`engine.wiring.plugins`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

from engine.errors import UserError
from engine.settings import Settings
from metamodel import Model

log = logging.getLogger(__name__)

#: ``(model, engine, settings) -> plugin object | None``
PluginFactory = Callable[[Model, Engine, Settings], Any]


def prepare_database(engine: Engine, model: Model, project_dir: Path) -> list[str]:
    """Bring the database up to the model, refusing destructive changes (UserError)."""
    # imported here: Alembic (with Mako and Pygments) costs a web worker ~10 MB, and the
    # workers of `campo serve` never migrate (the command did before starting them)
    from engine.db.migrate import MigrationError, apply_on_start

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
    """A runtime started beside the API (see :data:`engine.wiring.plugins.SERVE_PLUGINS`)."""

    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self.blueprints = list(getattr(obj, "blueprints", ()) or ())
        self._start: Callable[[], None] | None = getattr(obj, "start", None)
        self._stop: Callable[[], None] | None = getattr(obj, "stop", None)
        #: ``init_app(app, api)``: an ``on_init`` hook (e.g. routes that need the Api object)
        self.init_app: Callable[[Flask, Any], None] | None = getattr(obj, "init_app", None)

    def start_hook(self, _app: Flask) -> Callable[[], None] | None:
        """``on_start`` hook for :func:`engine.api.create_app`."""
        if self._start is not None:
            log.info("starting %s", self.name)
            self._start()
        return self._stop


def load_plugins(factories: Sequence[PluginFactory], model: Model, engine: Engine,
                 settings: Settings) -> list[Plugin]:
    """Call each factory; skip those that return None."""
    plugins = []
    for factory in factories:
        obj = factory(model, engine, settings)
        if obj is not None:
            plugins.append(Plugin(f"{factory.__module__}:{factory.__qualname__}", obj))
    return plugins
