"""The spool estimate for ``offline_days``: ``campo tags plan`` and the start-up warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from engine.historian.planning import BYTES_PER_SAMPLE, change_rate, spool_estimate
from engine.settings import Settings
from engine.wiring.history import spool_warning
from metamodel.tags import load_tags

REPO = Path(__file__).resolve().parents[3]
SITE = """\
site: big
history: {offline_days: 30}
devices:
  plc: {type: modbus_tcp, host: 127.0.0.1}
tags:
  a: {device: plc, address: "hr:40001", type: float32, scan_class: fast}
  b: {device: plc, address: "hr:40003", type: float32, scan_class: fast, deadband: 0.5}
  c: {device: plc, address: "co:00001", type: bool, scan_class: fast}
  d: {device: plc, address: "hr:40005", type: float32, scan_class: slow}
"""


def _project(project) -> Path:  # type: ignore[no-untyped-def]
    return project({"tags/scan_classes.yaml":
                    "scan_classes: {fast: {period: 100ms}, slow: {period: 10s}}\n",
                    "tags/sites/big.yaml": SITE})


def test_rate_from_scan_classes_and_deadbands(project) -> None:  # type: ignore[no-untyped-def]
    model = load_tags(_project(project))
    rates = {t.path: change_rate(t) for t in model.tags.values()}
    assert rates == pytest.approx({"big.a": 10.0, "big.b": 2.0, "big.c": 0.1, "big.d": 0.1})
    (est,) = spool_estimate(model)
    assert est.offline_days == 30 and est.tags == 4
    assert est.bytes == int(12.2 * 30 * 86400 * BYTES_PER_SAMPLE)


def test_plan_prints_the_spool_and_warns(project, monkeypatch,  # type: ignore[no-untyped-def]
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(project)
    monkeypatch.setenv("CAMPO_HISTORY_SPOOL_MAX_BYTES", str(100 << 20))
    assert main(["tags", "plan", "--project", str(root)]) == 0
    out, err = capsys.readouterr()
    assert ("history: site big: 4 tag(s), about 12.2 change(s)/s; 30 day(s) offline need "
            "about 727.3 MB of spool (bound 104.9 MB)") in out
    assert "warning: site big: 30 day(s) offline need about 727.3 MB of spool, more than " \
           "the bound of 104.9 MB (CAMPO_HISTORY_SPOOL_MAX_BYTES)" in err
    warnings = spool_warning(Settings(project=root, history_spool_max_bytes=100 << 20),
                             load_tags(root))
    assert len(warnings) == 1 and "site big must survive 30 day(s) offline" in warnings[0]


def test_sim_pad_fits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tags", "plan", "sim_pad", "--project", str(REPO)]) == 0
    out, err = capsys.readouterr()
    assert "history: site sim_pad: 92 tag(s)" in out and "7 day(s) offline need about" in out
    assert "warning" not in err
    assert spool_warning(Settings(project=REPO), load_tags(REPO)) == []
