"""Requests/s of the generated REST endpoints vs hand-written Flask ones, both authenticated.

One waitress server (a subprocess, 4 threads) serves two apps side by side on the same table:

- the generated ``/api/bench/reading_log`` (list, get, create) wired as ``campo serve``
  wires it: ``engine.auth`` (JWT guard, sessions, per-user rate limit, audit rows), RBAC hooks;
- a hand-written Flask app at ``/hand/reading_log`` doing what a careful person would write:
  decode the same JWT with PyJWT (HS256, issuer, expiry), read the session row (joined to its
  user) once per request, then Core ``select`` / ``insert ... RETURNING`` and ``json.dumps``.

Both sides get the same access token (from ``/api/auth/login``). Client threads in this
process keep connections alive (http.client) and alternate between the two in short rounds
so drift affects both alike. It runs on SQLite and then on PostgreSQL (a throw-away schema in
``CAMPO_TEST_DATABASE_URL``, default the test database on 127.0.0.1; skipped with a note if
PostgreSQL is unreachable).

Run: ``python bench/rest.py`` (no arguments, < 2 minutes). Prints, per database
(``_sqlite``/``_postgresql`` suffix), ``RESULT rest_auth_<op>_ratio_<db>`` (generated /
hand-written requests/s, the median of the rounds; goal >= 0.9) and
``RESULT rest_auth_<op>_cpu_ratio_<db>``: hand-written over generated server CPU time per
request (from /proc), which other load on a shared machine barely moves.
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
import uuid
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
ROUND_SECONDS = 0.7
ROUNDS = 9
SECRET = "bench-secret-" + "s" * 40
PASSWORD = "bench password 1"
PG_URL = os.environ.get("CAMPO_TEST_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# --------------------------------------------------------------------------- server side


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def hand_app(engine: Any, table: Any) -> Any:
    """The hand-written baseline: Flask + PyJWT + SQLAlchemy Core, no framework."""
    import flask
    import jwt
    import sqlalchemy as sa

    from engine.auth.tables import session_table as st
    from engine.auth.tables import user_table as ut

    app = flask.Flask("hand")
    select_all = sa.select(table)
    session_q = (sa.select(st.c.revoked_at, st.c.expires_at, ut.c.disabled, ut.c.username)
                 .join(ut, ut.c.id == st.c.user_id).where(st.c.id == sa.bindparam("sid")))

    def reply(body: Any, status: int = 200) -> flask.Response:
        return flask.Response(json.dumps(body, default=_json_default), status=status,
                              mimetype="application/json")

    def authenticated(conn: Any) -> str | None:
        """The user name of a valid bearer token with a live session, else None."""
        header = flask.request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        try:
            claims = jwt.decode(header[7:], SECRET, algorithms=["HS256"], issuer="campo")
        except jwt.PyJWTError:
            return None
        if claims.get("type") != "access":
            return None
        row = conn.execute(session_q, {"sid": claims.get("sid")}).first()
        if (row is None or row.revoked_at is not None or row.disabled
                or row.expires_at <= dt.datetime.now(dt.UTC)):
            return None
        return str(row.username)

    @app.get("/hand/reading_log")
    def hand_list() -> flask.Response:
        limit = min(int(flask.request.args.get("limit", 50)), 1000)
        with engine.connect() as conn:
            if authenticated(conn) is None:
                return reply({"message": "unauthorized"}, 401)
            rows = conn.execute(select_all.order_by(table.c.id).limit(limit)).mappings()
            items = [dict(r) for r in rows]
        return reply({"items": items})

    @app.get("/hand/reading_log/<int:record_id>")
    def hand_get(record_id: int) -> flask.Response:
        with engine.connect() as conn:
            if authenticated(conn) is None:
                return reply({"message": "unauthorized"}, 401)
            row = conn.execute(select_all.where(table.c.id == record_id)).mappings().first()
        if row is None:
            return reply({"message": "not found"}, 404)
        return reply(dict(row))

    @app.post("/hand/reading_log")
    def hand_create() -> flask.Response:
        data = flask.request.get_json()
        now = dt.datetime.now(dt.UTC)
        if data.get("taken_at"):
            data["taken_at"] = dt.datetime.fromisoformat(data["taken_at"])
        if data.get("day"):
            data["day"] = dt.date.fromisoformat(data["day"])
        with engine.begin() as conn:
            user = authenticated(conn)
            if user is None:
                return reply({"message": "unauthorized"}, 401)
            values = {**data, "created_at": now, "updated_at": now, "version": 1,
                      "created_by": user, "updated_by": user}
            row = conn.execute(table.insert().returning(*table.c), values).mappings().one()
        return reply(dict(row), 201)

    return app


def serve(root: str, db_url: str, port_file: str) -> None:
    """Subprocess entry: build both apps as ``campo serve`` would and serve until killed."""
    from waitress.server import create_server
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from engine.api import create_app
    from engine.auth import api_hooks, auth_init_hook, ensure_platform_tables
    from engine.auth.users import create_user
    from engine.db import build_metadata, create_engine_for
    from engine.settings import Settings
    from metamodel import load

    model = load(root)
    engine = create_engine_for(db_url)
    metadata = build_metadata(model)
    settings = Settings(project=Path(root), data_dir=Path(root) / "data", jwt_secret=SECRET,
                        max_page_size=1000, api_rate_limit="1000000 per minute")
    ensure_platform_tables(engine)
    from argon2 import PasswordHasher

    with engine.begin() as conn:
        create_user(conn, model, username="bench", now=dt.datetime.now(dt.UTC),
                    password_hash=PasswordHasher().hash(PASSWORD), roles=["admin"],
                    sites=["*"])
    app = create_app(model, engine, settings, **api_hooks(),
                     on_init=[auth_init_hook(engine, settings, model)])
    both = DispatcherMiddleware(app, {"/hand": hand_app_at_root(
        hand_app(engine, metadata.tables["bench_reading_log"]))})
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" noise
    server = create_server(both, host="127.0.0.1", port=0, threads=4)
    Path(port_file).write_text(str(server.effective_port))  # type: ignore[union-attr]
    server.run()


def hand_app_at_root(app: Any) -> Any:
    """Mount the hand-written app (whose routes start with /hand) under /hand."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        environ["PATH_INFO"] = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        environ["SCRIPT_NAME"] = ""
        return app(environ, start_response)

    return wsgi


# --------------------------------------------------------------------------- client side


def body(i: int) -> dict[str, Any]:
    """A reading to create."""
    return {"tag": f"pad7.w{i % 40}.pip", "site": 1 + i % 3, "kind": "pressure",
            "value": 812.5 + i % 100, "amount": f"{i % 1000}.125", "count": i % 500,
            "good": i % 7 != 0, "day": "2024-05-01",
            "taken_at": f"2024-05-01T{i % 24:02d}:{i % 60:02d}:00+00:00",
            "note": "routine reading"}


def load_phase(port: int, method: str, path_of: Any, body_of: Any, seconds: float,
               token: str) -> int:
    """Requests completed by THREADS keep-alive clients in ``seconds``."""
    deadline = time.perf_counter() + seconds
    counts = [0] * THREADS
    errors: list[str] = []

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        rnd = random.Random(n)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        try:
            while time.perf_counter() < deadline:
                data = json.dumps(body_of(rnd)) if body_of else None
                conn.request(method, path_of(rnd), body=data, headers=headers)
                resp = conn.getresponse()
                text = resp.read()
                if resp.status >= 300:
                    errors.append(f"{method} {resp.status} {text[:200]!r}")
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


def pg_schema_url() -> tuple[str, Any] | None:
    """A fresh schema on the PostgreSQL server and a function that drops it; None if down."""
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(PG_URL)
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:  # no server: the SQLite half still runs
        print(f"# PostgreSQL at {PG_URL} unreachable ({type(exc).__name__}); skipped",
              flush=True)
        return None

    def drop() -> None:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()

    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", drop


def main() -> None:
    """For each database: start the server, fill the table, measure, print RESULT lines."""
    tmp = Path(tempfile.mkdtemp(prefix="campo-bench-rest-"))
    try:
        (tmp / "modules").mkdir()
        (tmp / "modules" / "bench.yaml").write_text(MODEL)
        bench_one(tmp, "sqlite", f"sqlite:///{tmp / 'bench.db'}")
        pg = pg_schema_url()
        if pg is not None:
            try:
                bench_one(tmp, "postgresql", pg[0])
            finally:
                pg[1]()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_one(tmp: Path, db: str, db_url: str) -> None:
    """Serve ``db_url`` from a subprocess and measure it."""
    from engine.db import build_metadata, create_engine_for
    from metamodel import load

    engine = create_engine_for(db_url)
    build_metadata(load(tmp)).create_all(engine)
    engine.dispose()
    port_file = tmp / f"port-{db}"
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
        run(port, server.pid, db)
    finally:
        server.terminate()
        server.wait(timeout=10)


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) the server process has used; 0 without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def login(port: int) -> str:
    """An access token of the bench user."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/auth/login", body=json.dumps(
        {"username": "bench", "password": PASSWORD}),
        headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    assert resp.status == 200, data
    return str(data["access_token"])


def run(port: int, server_pid: int, db: str) -> None:
    """Fill the table and measure each operation."""
    token = login(port)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for name in ("north", "south", "east"):
        conn.request("POST", "/api/bench/site", body=json.dumps({"name": name}),
                     headers=headers)
        resp = conn.getresponse()
        assert resp.read() and resp.status == 201, resp.status
    for start in range(0, ROWS, 500):
        conn.request("POST", "/api/bench/reading_log/bulk",
                     body=json.dumps([body(i) for i in range(start, start + 500)]),
                     headers=headers)
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
    print(f"# {db}: {THREADS} client threads, waitress 4 threads, {ROWS} rows, both sides "
          f"authenticated, {ROUNDS} alternating rounds of {ROUND_SECONDS}s", flush=True)
    for op, (method, path, make_body) in cases.items():
        load_phase(port, method, path(gen), make_body, 0.5, token)  # warm up both
        load_phase(port, method, path(hand), make_body, 0.5, token)
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
                                        make_body, ROUND_SECONDS, token)
                cpu[side] += server_cpu(server_pid) - before
                totals[side] += done[side]
            ratios.append(done["generated"] / done["hand"])
        rps = {k: v / (ROUNDS * ROUND_SECONDS) for k, v in totals.items()}
        us = {k: cpu[k] / totals[k] * 1e6 for k in cpu}
        print(f"{op:7s} generated {rps['generated']:6.0f} req/s {us['generated']:6.0f} us "
              f"CPU/req | hand-written {rps['hand']:6.0f} req/s {us['hand']:6.0f} us CPU/req"
              " | per-round ratios " + " ".join(f"{r:.2f}" for r in ratios), flush=True)
        print(f"RESULT rest_auth_{op}_ratio_{db} {statistics.median(ratios):.3f}", flush=True)
        if cpu["generated"] > 0:
            # server CPU per request: barely moved by other load on the machine
            print(f"RESULT rest_auth_{op}_cpu_ratio_{db} {us['hand'] / us['generated']:.3f}",
                  flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
