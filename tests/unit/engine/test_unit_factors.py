"""``campo serve`` computes the project's unit conversions once and hands them to its web
processes (:func:`engine.units.known_factors` / :func:`engine.units.seed_factors`): a worker
loads the model and converts in both unit systems without importing pint (~5 MB each), and
still converts a pair nobody computed, loading pint then."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

LAUNCHER = """
import json
from engine.rules import load_model
from engine.settings import Settings
from engine.wiring.serve import unit_factors
print(json.dumps(unit_factors(load_model(Settings(project=%r)))))
"""
WORKER = """
import json, sys
from engine import units
units.seed_factors(json.loads(sys.stdin.read()))
from engine.rules import load_model
from engine.settings import Settings
from engine.units.wsgi import unit_plan
model = load_model(Settings(project=%r))
plans = {s: unit_plan(model, s) for s in units.SYSTEMS}
converted = str(units.convert(units.Decimal("1000"), "bbl/d", "m3/d"))
before = "pint" in sys.modules
try:
    units.check_conversion("bbl", "kPa")
    refused = None
except units.UnitError as err:
    refused = str(err)
fresh = units.convert(1.0, "mm", "in")
print(json.dumps({"pint_before": before, "pint_after": "pint" in sys.modules,
                  "converted": converted, "refused": refused, "fresh": fresh,
                  "fields": sum(len(f) for f in plans["field"].values())}))
"""


def _run(code: str, stdin: str = "") -> str:
    done = subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True,
                          text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_workers_convert_with_the_launchers_factors_without_pint() -> None:
    factors = json.loads(_run(LAUNCHER % str(REPO)))
    pairs = {(src, dst) for src, dst, _v in factors}
    assert ("bbl/d", "m3/d") in pairs or ("m3/d", "bbl/d") in pairs
    seed = [row for row in factors if (row[0], row[1]) != ("bbl", "kPa")]
    seed.append(["bbl", "kPa", "cannot convert 'bbl' to 'kPa': not the same dimension"])
    out = json.loads(_run(WORKER % str(REPO), json.dumps(seed)))
    assert out["pint_before"] is False  # model checks, both unit plans, a conversion
    assert out["fields"] > 10
    assert out["converted"].startswith("158.98729")
    assert out["refused"] == "cannot convert 'bbl' to 'kPa': not the same dimension"
    assert out["pint_after"] is True and abs(out["fresh"] - 1 / 25.4) < 1e-12
