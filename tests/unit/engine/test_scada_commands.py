"""``campo tags plan|expand|check``: output, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cli import main

REPO = Path(__file__).resolve().parents[3]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_of_the_sim_pad(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "tags", "plan", "sim_pad", "--project", str(REPO))
    assert code == 0, err
    assert "device sim_pad.plc (modbus_tcp 127.0.0.1:5020, concurrency 1, round trip 5.0 ms " \
           "assumed)" in out
    assert "  fast (1 s): 8 request(s) for 36 tag(s)" in out
    assert "    fc3 unit 1 hr:40001 +14" in out
    assert "w1.pip, w1.thp, w1.chp" in out
    assert "    fc1 unit 4 coil:00001 +1" in out
    assert "device sim_pad.ua (opcua): 40 tag(s)" in out


def test_plan_overrides_and_unknown_site(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tags", "plan", "--project", str(REPO),
                       "--set", "sim_pad.modbus_port=1502", "--round-trip", "50")
    assert code == 0 and "127.0.0.1:1502" in out and "round trip 50.0 ms" in out
    code, _, err = run(capsys, "tags", "plan", "nowhere", "--project", str(REPO))
    assert code == 1 and "unknown site 'nowhere'" in err
    code, _, err = run(capsys, "tags", "plan", "--project", str(REPO), "--set", "oops")
    assert code == 2 and "write NAME=VALUE" in err


def test_plan_fails_when_a_scan_class_does_not_fit(project, capsys) -> None:  # type: ignore[no-untyped-def]
    root = project({
        "tags/scan_classes.yaml": "scan_classes: {fast: {period: 100ms}, slow: {period: 10s}}\n",
        "tags/sites/s.yaml": """
site: s
devices:
  line: {type: modbus_rtu, port: /dev/ttyUSB0, baudrate: 9600}
tags:
""" + "".join(f"  t{i}: {{device: line, address: hr:4{i * 10 + 1:04d}, type: float32, "
              f"scan_class: fast, unit_id: {i % 8 + 1}}}\n" for i in range(16)),
    })
    code, out, err = run(capsys, "tags", "plan", "--project", str(root))
    assert code == 1
    assert "modbus_rtu /dev/ttyUSB0 9600 8N1" in out
    assert "  fast (0.1 s): 16 request(s) for 16 tag(s)" in out
    assert "error: device s.line: scan class 'fast' needs about" in err
    assert "more than 80% of its 0.1 s period" in err
    code, _, _ = run(capsys, "tags", "plan", "--project", str(root), "--margin", "0.2")
    assert code == 1


def test_expand_is_sorted_and_stable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tags", "expand", "--project", str(REPO))
    assert code == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("sim_pad.")]
    assert len(lines) == 92 and lines == sorted(lines)
    assert "sim_pad.w1.motor_current  sim_pad.plc  hr:40007 (unit 1)  uint16  fast  " \
           "deadband=1.0 order=\"big/big\" scale={\"factor\": 0.1, \"offset\": 0.0} unit=\"A\"" \
           in out
    assert "wells.well[name=W3]  sim_pad.ua.w3 sim_pad.w3" in out
    code2, out2, _ = run(capsys, "tags", "expand", "--project", str(REPO))
    assert out2 == out
    code, out, _ = run(capsys, "tags", "expand", "sim_pad", "--json", "--project", str(REPO))
    data = json.loads(out)
    assert data["bindings"]["wells.well[name=W1]"] == ["sim_pad.ua.w1", "sim_pad.w1"]
    sp = next(t for t in data["tags"] if t["path"] == "sim_pad.w2.frequency_setpoint")
    assert sp["limits"] == [40.0, 60.0] and sp["writable"] == ["admin", "operator", "supervisor"]


def test_definition_errors_are_reported_not_raised(project, capsys) -> None:  # type: ignore[no-untyped-def]
    root = project({"tags/sites/s.yaml": "site: s\ndevices:\n  d: {type: modbus_tpc}\n"})
    code, _, err = run(capsys, "tags", "expand", "--project", str(root))
    assert code == 1
    assert "tags/sites/s.yaml:3:13: devices.d.type: unknown device type 'modbus_tpc'" in err
    assert "1 problem(s) found" in err


def test_check_passes_on_the_shipped_dumps(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tags", "check", "--project", str(REPO))
    assert code == 0
    assert "ok   tags/templates/esp_well.dumps/w1_running.yaml: 13 tag(s)" in out
    assert "ok   tags/templates/esp_well.dumps/w2_tripped.yaml: 13 tag(s)" in out


def test_check_fails_on_a_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "p"
    shutil.copytree(REPO / "tags", root / "tags")
    dump = root / "tags/templates/esp_well.dumps/w2_tripped.yaml"
    dump.write_text(dump.read_text().replace("pip: 1000.0", "pip: 1001.0")
                    .replace("run_command: false", "run_command: true"))
    (root / "tags/templates/esp_well.dumps/bad.yaml").write_text(
        "registers:\n  hr:40001: [70000]\nexpect:\n  pipp: 1\n  thp: 2\n")
    code, out, err = run(capsys, "tags", "check", "esp_well", "--project", str(root))
    assert code == 1
    assert "FAIL tags/templates/esp_well.dumps/w2_tripped.yaml: 2 mismatch(es)" in out
    assert "tags/templates/esp_well.dumps/w2_tripped.yaml:11:8: pip: expected 1001.0, " \
           "decoded 1000.0" in err
    assert "run_command: expected True, decoded False" in err
    assert "bad.yaml:4:9: pipp: the template has no such tag" in err
    assert "did you mean 'pip'?" in err
    assert "thp: the dump has no value at hr:40003" in err
    assert "bad.yaml:2:14: registers.hr:40001[0]: 70000 is not a register 0..65535" in err
    code, _, err = run(capsys, "tags", "check", "esp_wel", "--project", str(root))
    assert code == 1 and "did you mean 'esp_well'?" in err


def test_schema_accepts_the_shipped_templates(capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema
    import yaml

    code, out, _ = run(capsys, "tags", "schema")
    assert code == 0
    schema = json.loads(out)
    validator = jsonschema.Draft202012Validator(schema)
    files = [REPO / "tags/scan_classes.yaml", *sorted((REPO / "tags/templates").glob("*.yaml"))]
    for f in files:
        assert list(validator.iter_errors(yaml.safe_load(f.read_text()))) == [], f
    bad = {"template": "t", "tags": {"a": {"address": "hr:40001", "type": "flaot32"}}}
    assert list(validator.iter_errors(bad))
