"""The desk in Chromium against a local ``campo serve``: shell size, list and form speed.

A SQLite project with a 100,000-row table and a form of 30 fields plus a 50-row child grid
is served by a real ``campo serve`` (a subprocess); Debian's Chromium (Playwright, launched
by path: ``apt-get install chromium``) signs in, then

- ``RESULT ui_shell_kb``: kilobytes transferred (gzip, as sent) to load the shell before
  sign-in: HTML, CSS, vendored libraries, every JS module (goal < 300);
- ``RESULT ui_list_ms``: from navigating to the list of the 100,000-row table until its
  first 50 rows are on screen (median of 7; goal < 500);
- ``RESULT ui_form_ms``: from navigating to a record of the 30-field entity until its form
  and the 50 rows of its child grid are on screen (median of 7; goal < 500).

Run: ``python bench/ui.py`` (no arguments, < 2 minutes).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROWS = 100_000
GRID_ROWS = 50
RUNS = 7
PASSWORD = "bench-ui-password-1"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def model_yaml() -> str:
    """A big list entity and a 30-field entity with a child table."""
    kinds = ["string", "int", "decimal", "float", "date", "bool"]
    wide = []
    for i in range(30):
        kind = kinds[i % len(kinds)]
        extra = {"string": ", max_length: 40", "decimal": ", precision: 12, scale: 2"}.get(kind, "")
        wide.append(f"      f{i:02d}: {{type: {kind}{extra}}}")
    return "\n".join([
        "module: bench",
        "entities:",
        "  reading:",
        "    title: '{tag}'",
        "    fields:",
        "      tag: {type: string, max_length: 40, required: true, index: true}",
        "      kind: {type: enum, values: [pressure, temperature, flow]}",
        "      value: {type: float}",
        "      amount: {type: decimal, precision: 12, scale: 3}",
        "      taken_on: {type: date}",
        "  sheet:",
        "    fields:",
        *wide,
        "      lines: {type: table, of: sheet_line}",
        "  sheet_line:",
        "    child: true",
        "    fields:",
        "      item: {type: string, max_length: 40}",
        "      qty: {type: decimal, precision: 10, scale: 2}",
        "      day: {type: date}",
        "      ok: {type: bool}",
        "",
    ])


def populate(root: Path, url: str) -> None:
    """Create the tables and 100,000 readings plus one sheet with 50 lines, fast (Core)."""
    import sqlalchemy as sa

    from engine.db import build_metadata, create_engine_for
    from engine.rules import load_project

    model = load_project(root)
    md = build_metadata(model)
    engine = create_engine_for(url)
    md.create_all(engine)
    now = dt.datetime.now(dt.UTC)
    sys_cols = {"created_at": now, "updated_at": now, "version": 1}
    kinds = ["pressure", "temperature", "flow"]
    reading = md.tables["bench_reading"]
    with engine.begin() as conn:
        batch = []
        for i in range(ROWS):
            batch.append({"tag": f"PZ-{i:06d}", "kind": kinds[i % 3], "value": i * 0.5,
                          "amount": i % 1000, "taken_on": dt.date(2024, 1, 1), **sys_cols})
            if len(batch) == 10_000:
                conn.execute(sa.insert(reading), batch)
                batch = []
        sheet = md.tables["bench_sheet"]
        values: dict[str, Any] = {}
        for name, f in model.entity("bench.sheet").fields.items():
            if f.type == "table":
                continue
            values[name] = {"string": "text", "int": 7, "decimal": 12.5, "float": 1.25,
                            "date": dt.date(2024, 5, 1), "bool": True}[f.type]
        sid = conn.execute(sa.insert(sheet).values(**values, **sys_cols)).inserted_primary_key[0]
        lines = md.tables["bench_sheet_line"]
        conn.execute(sa.insert(lines), [{"parent_id": sid, "idx": i, "item": f"item {i}",
                                         "qty": i, "day": dt.date(2024, 5, 1), "ok": i % 2 == 0,
                                         **sys_cols} for i in range(GRID_ROWS)])
    engine.dispose()


def serve(root: Path, url: str, log: Path) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPO_")}
    env.update(CAMPO_SIMULATE="false", CAMPO_SCADA="false", CAMPO_ADMIN_PASSWORD=PASSWORD,
               CAMPO_API_RATE_LIMIT="100000 per minute")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--project", str(root),
                             "--database-url", url, "--port", "0", "--threads", "8"],
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("serving on http://"):
            return proc, int(line.split()[2].rsplit(":", 1)[1])
    raise SystemExit(f"campo serve did not start: {log.read_text()}")


def timed(page: Any, hash_: str, ready: str) -> float:
    """Milliseconds from setting the hash until ``ready`` (a JS condition) holds."""
    page.evaluate("() => { location.hash = '#/'; }")
    page.wait_for_selector(".home")
    start = page.evaluate("() => performance.now()")
    page.evaluate(f"() => {{ location.hash = '{hash_}'; }}")
    page.wait_for_function(ready, polling="raf", timeout=30_000)
    return float(page.evaluate("() => performance.now()")) - float(start)


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="campo-bench-ui-") as tmp:
        root = Path(tmp) / "project"
        (root / "modules").mkdir(parents=True)
        (root / "modules" / "bench.yaml").write_text(model_yaml(), encoding="utf-8")
        url = f"sqlite:///{tmp}/bench.db"
        t0 = time.perf_counter()
        populate(root, url)
        print(f"populated {ROWS} rows in {time.perf_counter() - t0:.1f} s", flush=True)
        proc, port = serve(root, url, Path(tmp) / "serve.log")
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                ctx = browser.new_context(viewport={"width": 1280, "height": 900},
                                          service_workers="block")
                page = ctx.new_page()
                sizes: list[int] = []

                def count(response: Any) -> None:
                    try:
                        s = response.request.sizes()
                        sizes.append(s["responseBodySize"] + s["responseHeadersSize"])
                    except Exception:  # a response cut short: not part of the shell
                        pass

                page.on("requestfinished", lambda req: count(req.response()))
                page.goto(base + "/", wait_until="networkidle")
                page.wait_for_selector("form.login")
                page.remove_listener("requestfinished", count)
                shell_kb = sum(sizes) / 1024
                page.get_by_label("User name").fill("admin")
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_selector("nav.sidebar")
                list_ready = ("() => { const t = document.querySelector('table.records');"
                              " return t && t.getAttribute('aria-busy') === 'false' &&"
                              " t.querySelectorAll('tbody tr').length === 50; }")
                form_ready = ("() => document.querySelectorAll('table.grid tbody tr').length"
                              f" === {GRID_ROWS} && document.querySelector('[data-field=f29]')")
                lists = [timed(page, "#/l/bench/reading", list_ready) for _ in range(RUNS)]
                forms = [timed(page, "#/f/bench/sheet/1", form_ready) for _ in range(RUNS)]
                browser.close()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    print(f"list ms: {[round(x) for x in lists]}  form ms: {[round(x) for x in forms]}")
    print(f"RESULT ui_shell_kb {shell_kb:.1f}")
    print(f"RESULT ui_list_ms {statistics.median(lists):.0f}")
    print(f"RESULT ui_form_ms {statistics.median(forms):.0f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
