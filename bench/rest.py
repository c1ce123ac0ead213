"""Requests/s of the generated REST endpoints vs hand-written Flask + SQLAlchemy Core ones.

One waitress server (a subprocess, threads) serves both on the same SQLite table: the
generated ``/api/bench/reading_log`` (list, get, create) and a hand-written blueprint at
``/hand/reading_log`` doing what a careful person would write by hand (Core ``select`` /
``insert ... RETURNING``, ``json.dumps`` with a date/decimal default, no validation). Client
threads in this process keep connections alive (http.client) and alternate between the two
in short rounds so drift affects both alike.

Run: ``python bench/rest.py`` (no arguments, < 2 minutes). Prints ``RESULT rest_<op>_ratio``
(generated / hand-written, the median of the rounds; goal >= 0.9), the raw requests/s and
``RESULT rest_<op>_cpu_ratio``: hand-written over generated server CPU time per request (from
/proc), which other load on a shared machine barely moves.
"""

from __future__ import annotations

import datetime as dt
import decimal
import http.client
import json
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

MODEL = """
module: bench
entities:
  site:
    fields:
      name: {type: string, max_length: 40, required: true}
  reading_log:
    label: {es: Registro, en: Reading log}
    fields:
      tag: {type: string, max_length: 40, required: true}
      site: {type: link, to: site}
      kind: {type: enum, values: [pressure, temperature, flow], default: pressure}
      value: {type: float}
      amount: {type: decimal, precision: 12, scale: 3}
      count: {type: int, min: 0}
      good: {type: bool, default: true}
      day: {type: date}
      taken_at: {type: datetime, required: true}
      note: {type: string, max_length: 200}
"""
ROWS = 2000
THREADS = 4
ROUND_SECONDS = 1.5
ROUNDS = 5


# --------------------------------------------------------------------------- server side


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def hand_blueprint(engine: Any, table: Any) -> Any:
    """The hand-written baseline: Flask + SQLAlchemy Core, no framework."""
    import flask
    import sqlalchemy as sa

    bp = flask.Blueprint("hand", __name__)
    select_all = sa.select(table)

    def reply(body: Any, status: int = 200) -> flask.Response:
        return flask.Response(json.dumps(body, default=_json_default), status=status,
                              mimetype="application/json")

    @bp.get("/hand/reading_log")
    def hand_list() -> flask.Response:
        limit = min(int(flask.request.args.get("limit", 50)), 1000)
        with engine.connect() as conn:
            rows = conn.execute(select_all.order_by(table.c.id).limit(limit)).mappings()
            items = [dict(r) for r in rows]
        return reply({"items": items})

    @bp.get("/hand/reading_log/<int:record_id>")
    def hand_get(record_id: int) -> flask.Response:
        with engine.connect() as conn:
            row = conn.execute(select_all.where(table.c.id == record_id)).mappings().first()
        if row is None:
            return reply({"message": "not found"}, 404)
        return reply(dict(row))

    @bp.post("/hand/reading_log")
    def hand_create() -> flask.Response:
        data = flask.request.get_json()
        now = dt.datetime.now(dt.UTC)
        if data.get("taken_at"):
            data["taken_at"] = dt.datetime.fromisoformat(data["taken_at"])
        if data.get("day"):
            data["day"] = dt.date.fromisoformat(data["day"])
        values = {**data, "created_at": now, "updated_at": now, "version": 1}
        with engine.begin() as conn:
            row = conn.execute(table.insert().returning(*table.c), values).mappings().one()
        return reply(dict(row), 201)

    return bp


def serve(root: str, db_url: str, port_file: str) -> None:
    """Subprocess entry: build the app with both blueprints and serve until killed."""
    from waitress.server import create_server

    from engine.api import create_app
    from engine.db import build_metadata, create_engine_for
    from engine.settings import Settings
    from metamodel import load

    model = load(root)
    engine = create_engine_for(db_url)
    metadata = build_metadata(model)
    app = create_app(model, engine, Settings(max_page_size=1000),
                     extra_blueprints=[hand_blueprint(engine,
                                                      metadata.tables["bench_reading_log"])])
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" noise
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    Path(port_file).write_text(str(server.effective_port))  # type: ignore[union-attr]
    server.run()


# --------------------------------------------------------------------------- client side


def body(i: int) -> dict[str, Any]:
    """A reading to create."""
    return {"tag": f"pad7.w{i % 40}.pip", "site": 1 + i % 3, "kind": "pressure",
            "value": 812.5 + i % 100, "amount": f"{i % 1000}.125", "count": i % 500,
            "good": i % 7 != 0, "day": "2024-05-01",
            "taken_at": f"2024-05-01T{i % 24:02d}:{i % 60:02d}:00+00:00",
            "note": "routine reading"}


def load_phase(port: int, method: str, path_of: Any, body_of: Any, seconds: float) -> int:
    """Requests completed by THREADS keep-alive clients in ``seconds``."""
    deadline = time.perf_counter() + seconds
    counts = [0] * THREADS
    errors: list[str] = []

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        rnd = random.Random(n)
        headers = {"Content-Type": "application/json"}
        try:
            while time.perf_counter() < deadline:
                data = json.dumps(body_of(rnd)) if body_of else None
                conn.request(method, path_of(rnd), body=data, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status >= 300:
                    errors.append(f"{method} {resp.status}")
                    return
                counts[n] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"bench request failed: {errors[:3]}")
    return sum(counts)


def main() -> None:
    """Start the server, fill the table, measure, print RESULT lines."""
    tmp = Path(tempfile.mkdtemp(prefix="campo-bench-rest-"))
    (tmp / "modules").mkdir()
    (tmp / "modules" / "bench.yaml").write_text(MODEL)
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    from engine.db import build_metadata, create_engine_for
    from metamodel import load

    engine = create_engine_for(db_url)
    build_metadata(load(tmp)).create_all(engine)
    engine.dispose()
    port_file = tmp / "port"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPO_")}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(tmp), db_url,
                               str(port_file)], env=env)
    try:
        for _ in range(600):
            if port_file.exists() and port_file.read_text():
                break
            if server.poll() is not None:
                raise SystemExit("the bench server failed to start")
            time.sleep(0.05)
        port = int(port_file.read_text())
        run(port, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the server process has used; 0 without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(port: int, server_pid: int) -> None:
    """Fill the table and measure each operation."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for name in ("north", "south", "east"):
        conn.request("POST", "/api/bench/site", body=json.dumps({"name": name}),
                     headers={"Content-Type": "application/json"})
        assert conn.getresponse().read()
    for start in range(0, ROWS, 500):
        conn.request("POST", "/api/bench/reading_log/bulk",
                     body=json.dumps([body(i) for i in range(start, start + 500)]),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 201, resp.status
    conn.close()
    cases = {
        "list": ("GET", lambda prefix: lambda r: f"{prefix}?limit=50", None),
        "get": ("GET", lambda prefix: lambda r: f"{prefix}/{r.randint(1, ROWS)}", None),
        "create": ("POST", lambda prefix: lambda r: prefix, lambda r: body(r.randint(0, 10**6))),
    }
    gen, hand = "/api/bench/reading_log", "/hand/reading_log"
    print(f"# {THREADS} client threads, waitress 4 threads, SQLite, {ROWS} rows, "
          f"{ROUNDS} alternating rounds of {ROUND_SECONDS}s", flush=True)
    for op, (method, path, make_body) in cases.items():
        load_phase(port, method, path(gen), make_body, 0.5)  # warm up both
        load_phase(port, method, path(hand), make_body, 0.5)
        totals = {"generated": 0, "hand": 0}
        cpu = {"generated": 0.0, "hand": 0.0}
        ratios = []
        for i in range(ROUNDS):
            # alternate which side goes first so a slow moment does not always hit one side
            order = ("generated", "hand") if i % 2 == 0 else ("hand", "generated")
            done = {}
            for side in order:
                before = server_cpu(server_pid)
                done[side] = load_phase(port, method, path(gen if side == "generated" else hand),
                                        make_body, ROUND_SECONDS)
                cpu[side] += server_cpu(server_pid) - before
                totals[side] += done[side]
            ratios.append(done["generated"] / done["hand"])
        rps = {k: v / (ROUNDS * ROUND_SECONDS) for k, v in totals.items()}
        us = {k: cpu[k] / totals[k] * 1e6 for k in cpu}
        print(f"{op:7s} generated {rps['generated']:6.0f} req/s {us['generated']:6.0f} us "
              f"CPU/req | hand-written {rps['hand']:6.0f} req/s {us['hand']:6.0f} us CPU/req"
              " | per-round ratios " + " ".join(f"{r:.2f}" for r in ratios), flush=True)
        print(f"RESULT rest_{op}_ratio {statistics.median(ratios):.3f}", flush=True)
        if cpu["generated"] > 0:
            # server CPU per request: barely moved by other load on the machine
            print(f"RESULT rest_{op}_cpu_ratio {us['hand'] / us['generated']:.3f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
