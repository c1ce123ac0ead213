"""The WSGI server of ``campo serve``: gunicorn with ``gthread`` workers.

Threads, never gevent, for the embedded SQLite default: ``sqlite3`` never yields to gevent
(ARCHITECTURE.md); gthread measured better than gevent on PostgreSQL too (docs/decisions.md).
One worker on SQLite (the SCADA runtime and the simulator share its process and in-process
bus); ``--workers N`` on PostgreSQL. The app is built inside each worker (no preload, so
psycopg picks its wait function after any patching). gunicorn gives the WebSocket endpoint
the raw socket it hands to the event loop (:mod:`engine.live.websocket`).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

if TYPE_CHECKING:  # the lean master never imports Flask
    from flask import Flask

log = logging.getLogger(__name__)


class EdgeServer(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured in code, building the app in its worker."""

    def __init__(self, factory: Callable[[], Flask], options: dict[str, Any],
                 on_ready: Callable[[str, int], None] | None = None) -> None:
        self.factory = factory
        self.options = options
        self.on_ready = on_ready
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if self.on_ready is not None:
            ready = self.on_ready
            # made before the workers fork: the first worker with its app built says so
            said = multiprocessing.Value("b", 0)

            def post_worker_init(worker: Any) -> None:
                # "serving on" means a request is answered now, not once a worker has
                # imported and built the app (seconds on a loaded edge box)
                with said.get_lock():
                    if said.value:
                        return
                    said.value = 1
                host, port = worker.sockets[0].getsockname()[:2]
                ready(host, port)

            self.cfg.set("post_worker_init", post_worker_init)

    def load(self) -> Flask:
        return self.factory()


def write_json_error(sock: Any, status: int, reason: str, message: str) -> None:
    """gunicorn's own error answers (414 URI too long, 400 bad request line, 431...) in the
    API's JSON error shape instead of gunicorn's HTML page."""
    body = json.dumps({"code": status, "status": reason, "message": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    gunicorn_util.write_nonblock(sock, head.encode("latin1") + body)


class JsonErrorWorker(ThreadWorker):  # type: ignore[misc]
    """The gthread worker, answering the errors gunicorn decides itself in JSON."""

    def init_process(self) -> None:
        gunicorn_util.write_error = write_json_error  # this worker process only
        super().init_process()


def run(factory: Callable[[], Flask], host: str, port: int, threads: int = 8,
        on_ready: Callable[[str, int], None] | None = None,
        on_exit: Callable[[], None] | None = None, workers: int = 1) -> None:
    """Serve until SIGINT/SIGTERM. ``factory`` runs in each worker and builds the app."""
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "engine.wiring.server.JsonErrorWorker",  # gthread, JSON errors
        "threads": threads,
        # WebSockets do not hold threads (engine.live.hub runs them on an event loop)
        "timeout": 60,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "preload_app": False,
        "proc_name": "campo",
        "control_socket_disable": True,
    }
    def worker_exit(_server: Any, _worker: Any) -> None:
        try:
            if on_exit is not None:
                on_exit()
        finally:
            # Our runtimes are stopped and engines disposed: leave now instead of letting
            # interpreter shutdown wait on library threads (a stuck one would hold the
            # worker until gunicorn's SIGKILL).
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    options["worker_exit"] = worker_exit
    EdgeServer(factory, options, on_ready).run()
