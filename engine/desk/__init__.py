"""The desk: the web app in ``ui/`` and the API endpoints it needs beyond the generated ones.

Listed in :data:`engine.wiring.plugins.SERVE_PLUGINS`; ``campo serve`` calls
:func:`serve_plugin`, then ``init_app(app, api)`` registers the static shell at ``/``
(public: it holds code, never data) and the ``/api/desk/*`` endpoints (authenticated like
the rest of the API).
"""

from __future__ import annotations

from .plugin import DeskPlugin, serve_plugin

__all__ = ["DeskPlugin", "serve_plugin"]
