"""What ``campo serve`` runs next to the API: one explicit list of plugin factories.

A factory is called with ``(model, engine, settings)`` and returns None or an object with
optional ``blueprints`` (Flask blueprints to add), ``init_app(app, api)``, ``start()`` and
``stop()`` (see :class:`engine.wiring.startup.Plugin`). The SCADA runtime plugs in here, so
``engine.api`` and ``engine.scada`` never import each other. Imported by
:func:`engine.wiring.serve.build_app` only when serving: the simulator pulls in asyncua.
"""

from __future__ import annotations

from engine.desk import serve_plugin as desk_plugin
from engine.scada.simulator import serve_plugin as simulator_plugin

from . import edge
from .startup import PluginFactory

#: in start order: the simulated pad first, so the runtime finds it listening
SERVE_PLUGINS: tuple[PluginFactory, ...] = (
    simulator_plugin,
    edge.serve_plugin,
    desk_plugin,          # the web app at / and /api/desk (engine.desk)
)
