"""The wiring: the one package that joins the web side and the runtimes.

``engine.api``/``engine.auth``/``engine.live`` (web) and ``engine.scada`` (runtime) never
import each other; the modules here are the only ones that import both, the way an app
factory composes blueprints. See README.md in this folder.
"""

from __future__ import annotations
