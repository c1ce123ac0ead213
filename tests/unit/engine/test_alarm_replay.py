"""Replay over stored history and the ISA-18.2 KPIs, and the ``campo alarms`` commands."""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys
from pathlib import Path

from engine.alarms.compile import compile_alarms
from engine.alarms.kpi import Annunciation, kpis
from engine.alarms.replay import CsvReader, replay
from metamodel.tags import load_tags

REPO = Path(__file__).resolve().parents[3]
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def test_kpis_against_a_hand_count() -> None:
    events = [Annunciation("a", at(i), "high") for i in range(12)]          # a flood at 0-11 s
    events += [Annunciation("b", at(3600 + 20 * i), "low") for i in range(3)]  # chattering
    events += [Annunciation("c", at(7000), "low")]
    k = kpis(events, T0, at(3 * 3600), operators=2,
             states=[{"state": "ack_active", "raised_at": (T0 - dt.timedelta(days=2))},
                     {"state": "shelved"}, {"state": "out_of_service"}])
    assert k["alarms"] == 16
    assert k["per_operator_per_10min"] == round(16 / 18 / 2, 3)
    assert k["per_operator_per_hour"] == round(16 / 3 / 2, 3)
    assert k["flood_periods"] == 1 and k["flood_percent"] == round(100 / 18, 2)
    assert k["top10"][0] == {"alarm": "a", "count": 12}
    assert k["chattering"] == ["a", "b"]
    assert (k["stale"], k["shelved"], k["out_of_service"]) == (1, 1, 1)
    assert k["priority_percent"]["high"] == 75.0
    assert k["targets"]["per_operator_per_10min"]["acceptable"] == 1


def _history(path: Path) -> None:
    rows = [(T0, "sim_pad.w1.run_command", "true"), (T0, "sim_pad.w1.running", "true"),
            (at(1800), "sim_pad.w1.running", "false")]
    rows += [(at(i), "sim_pad.w1.pip", 800 - i / 6) for i in range(0, 3600, 10)]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", "tag", "value", "quality"])
        for ts, tag, value in sorted(rows, key=lambda r: r[0]):
            w.writerow([ts.isoformat(), tag, value, "good"])


def test_replay_raises_what_the_rules_would_have(tmp_path: Path) -> None:
    hist = tmp_path / "h.csv"
    _history(hist)
    compiled = compile_alarms(load_tags(REPO))
    seen: list[float] = []
    result = replay(compiled, CsvReader(hist), T0, at(3600), progress=seen.append)
    raised = [(a.alarm, (a.ts - T0).total_seconds()) for a in result.annunciations]
    # pip falls 10 psi/min: lo (250) at 3300 s, lolo (150) after; stopped at 1800 s (+2 s)
    assert ("sim_pad.w1.esp_stopped", 1802.0) in raised or \
        any(a == "sim_pad.w1.esp_stopped" and 1800 <= t <= 1804 for a, t in raised)
    assert any(a == "sim_pad.w1.pip_low.lo" for a, _ in raised)
    assert result.kpis["alarms"] == len(raised) and seen[-1] == 1.0
    assert result.speedup > 1


def test_campo_alarms_check_and_replay_commands(tmp_path: Path) -> None:
    hist = tmp_path / "h.csv"
    _history(hist)
    proposed = tmp_path / "proposed" / "tags" / "templates"
    proposed.mkdir(parents=True)
    text = (REPO / "tags" / "templates" / "esp_well.yaml").read_text()
    (proposed / "esp_well.yaml").write_text(text.replace("lo: {limit: 250, priority: low}",
                                                         "lo: {limit: 200, priority: low}"))
    check = subprocess.run([sys.executable, "-m", "engine.cli", "alarms", "check",
                            "--project", str(REPO)], capture_output=True, text=True,
                           timeout=120)
    assert check.returncode == 0, check.stderr
    assert "sim_pad: 40 alarms" in check.stdout and "ok: 40 alarms" in check.stdout
    out = subprocess.run([sys.executable, "-m", "engine.cli", "alarms", "replay",
                          "--project", str(REPO), "--from", T0.isoformat(),
                          "--to", at(3600).isoformat(), "--input", str(hist),
                          "--overlay", str(tmp_path / "proposed")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "== current" in out.stdout and "== proposed" in out.stdout
    assert "per operator per 10 min" in out.stdout and "100.0%" in out.stderr
