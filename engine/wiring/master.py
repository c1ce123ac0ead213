"""The lean gunicorn master of ``campo serve`` (the process ``campo serve`` becomes).

``campo serve`` loads and checks everything in a first process (YAML, tags, JWT secret,
schema changes), then replaces itself (``exec``) with this module, which imports only
gunicorn, the logging set-up and the shared rate-limit counters (the workers read the
settings). So the master that stays alive for
months holds none of the web stack (Flask, SQLAlchemy, the model): each worker imports and
builds the app itself after the fork (also what psycopg's wait function under gevent
needs: no preload). The same PID keeps serving, so signals reach gunicorn as before.

With ``workers > 1`` (PostgreSQL) the master also starts the runtime processes the workers
share through the MQTT bus: ``campo scada`` (when ``tags/`` has devices and
``CAMPO_SCADA`` is on) and ``campo simulate`` (when ``CAMPO_SIMULATE`` is on), and stops
them when it stops.

Invoked as ``python -m engine.wiring.master '<json spec>'`` (see :func:`spec_for`).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import subprocess
import sys
from typing import Any

log = logging.getLogger(__name__)


def spec_for(overrides: dict[str, Any], *, host: str, port: int, threads: int, workers: int,
             children: list[list[str]], worker_overrides: dict[str, Any],
             verbose: bool = False, unit_factors: list[list[Any]] | None = None) -> str:
    """The master's argument: where to listen, gunicorn sizing, child commands, the
    settings overrides the workers apply over ``CAMPO_*`` and the unit conversions the
    project needs (:func:`engine.units.known_factors`: the workers need not load pint)."""
    return json.dumps({"settings": {**overrides, **worker_overrides}, "host": host,
                       "port": port, "threads": threads, "workers": workers,
                       "children": children, "verbose": verbose,
                       "unit_factors": unit_factors or []}, default=str)


#: the master reads its spec from this variable: a command line is world-readable (``ps``)
#: and the spec may hold a database or broker URL with a password
SPEC_VARIABLE = "CAMPO_MASTER_SPEC"
#: settings the runtime children read from the environment, not from their command line
CHILD_VARIABLES = {"mqtt_url": "CAMPO_MQTT_URL", "database_url": "CAMPO_DATABASE_URL"}


def exec_master(spec: str) -> None:
    """Replace this process with the lean master (does not return)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "engine.wiring.master"],
              {**os.environ, SPEC_VARIABLE: spec})


def _raise_fd_limit() -> None:
    """Every open WebSocket is a file descriptor: lift the soft limit to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY
                                                        else 65536, hard))
        except (ValueError, OSError):
            pass


def _fewer_malloc_arenas() -> None:
    """glibc gives threads their own malloc arenas (up to 8 per core); with 16 request
    threads freed memory is scattered over them and the resident size creeps up. Two
    arenas keep it flat (measured by ``bench/serve.py``: rss_growth_mb_per_10k)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def _give_back_memory() -> None:
    """Return to the system what loading the model and building the app freed: the YAML
    parse, the checks and the OpenAPI build leave most of glibc's heap free but resident
    (measured by ``bench/serve.py``: serve_rss_mb)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to give back
        pass


def main(argv: list[str]) -> int:
    """Run gunicorn (and the runtime children) until SIGINT/SIGTERM."""
    from engine.counters import SharedCounters
    from engine.logs import configure_logging

    from .server import run

    spec = json.loads(argv[0] if argv else os.environ.pop(SPEC_VARIABLE))
    for key, variable in CHILD_VARIABLES.items():  # children inherit them, never on argv
        if spec["settings"].get(key):
            os.environ[variable] = str(spec["settings"][key])
    configure_logging(verbose=bool(spec.get("verbose")))
    _raise_fd_limit()
    counters = SharedCounters()  # made before the fork: every worker counts in the same table
    children: list[subprocess.Popen[bytes]] = []
    for cmd in spec["children"]:
        children.append(subprocess.Popen([sys.executable, "-m", "engine.cli", *cmd]))

    def factory() -> Any:
        _fewer_malloc_arenas()
        from engine import units
        from engine.db import platform
        from engine.rules import load_model
        from engine.settings import Settings

        from .serve import build_app

        platform.assume_current()  # `campo serve` migrated them a moment ago
        units.seed_factors(spec.get("unit_factors", []))  # computed by `campo serve`
        worker_settings = Settings(**spec["settings"])
        model = load_model(worker_settings)
        app = build_app(worker_settings, model, worker_settings.resolved_database_url(),
                        counters=counters)
        apps.append(app)
        _give_back_memory()
        return app

    apps: list[Any] = []

    def ready(host: str, port: int) -> None:
        print(f"serving on http://{host}:{port}  (docs: http://{host}:{port}/api/docs)",
              flush=True)

    def on_exit() -> None:
        from engine.api import shutdown

        for app in apps:
            shutdown(app)
            app.extensions["campo_engine"].dispose()

    try:
        run(factory, spec["host"], spec["port"], spec["threads"], on_ready=ready,
            on_exit=on_exit, workers=spec["workers"])
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
