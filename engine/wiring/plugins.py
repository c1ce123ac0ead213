"""What ``campo serve`` runs next to the API: one explicit list of plugin factories.

A factory is called with ``(model, engine, settings)`` and returns None or an object with
optional ``blueprints`` (Flask blueprints to add), ``init_app(app, api)``, ``start()`` and
``stop()`` (see :class:`engine.wiring.startup.Plugin`). The SCADA runtime plugs in here, so
``engine.api`` and ``engine.scada`` never import each other. Imported by
:func:`engine.wiring.serve.build_app` only when serving; the simulator (its Modbus and
OPC-UA servers) only when it runs.
"""

from __future__ import annotations

from typing import Any

from engine.desk import serve_plugin as desk_plugin
from engine.settings import Settings

from . import edge
from .startup import PluginFactory


def simulator_plugin(model: Any, engine: Any, settings: Settings) -> Any:
    """:func:`engine.scada.simulator.serve_plugin`, imported only when the pad is simulated
    (``CAMPO_SIMULATE``): a site with real devices never loads the servers' code."""
    if not settings.simulate:
        return None
    from engine.scada.simulator import serve_plugin

    return serve_plugin(model, engine, settings)

#: in start order: the simulated pad first, so the runtime finds it listening
SERVE_PLUGINS: tuple[PluginFactory, ...] = (
    simulator_plugin,
    edge.serve_plugin,
    desk_plugin,          # the web app at / and /api/desk (engine.desk)
)
