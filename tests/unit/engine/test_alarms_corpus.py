"""Golden corpus of alarm rules: each broken project under tests/fixtures/alarms/invalid/<case>/
fails with exactly the text of <case>.expected, whether the metamodel (shapes, tags,
setpoints, delays) or the engine (expressions) finds the problem; warnings are golden too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.alarms.compile import compile_alarms
from metamodel import DefinitionError
from metamodel.tags import load_tags

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "alarms"
CASES = sorted(p.name for p in (FIXTURES / "invalid").iterdir() if p.is_dir())
ROLES = frozenset({"admin", "supervisor", "operator", "viewer", "scada"})
REPO = Path(__file__).resolve().parents[3]


def check(root: Path) -> None:
    compile_alarms(load_tags(root, roles=ROLES))


def test_corpus_covers_the_checks_the_issue_names() -> None:
    for case in ("unknown_tag", "unknown_tag_in_expression", "analog_without_deadband",
                 "inverted_setpoints", "overlapping_setpoints", "delay_shorter_than_scan"):
        assert case in CASES
    for case in CASES:
        assert (FIXTURES / "invalid" / f"{case}.expected").is_file(), case


@pytest.mark.parametrize("case", CASES)
def test_invalid_case_reports_expected_problems(case: str) -> None:
    with pytest.raises(DefinitionError) as info:
        check(FIXTURES / "invalid" / case)
    expected = (FIXTURES / "invalid" / f"{case}.expected").read_text(encoding="utf-8")
    assert info.value.format() + "\n" == expected
    for p in info.value.problems:
        assert p.location.file.startswith("tags/") and p.location.line >= 1, p


def test_priority_mix_is_a_warning_not_an_error() -> None:
    root = FIXTURES / "warnings" / "priority_mix"
    model = load_tags(root, roles=ROLES)
    compiled = compile_alarms(model)
    assert len(compiled.alarms) == 3
    text = "\n".join(p.format() for p in compiled.warnings) + "\n"
    assert text == (FIXTURES / "warnings" / "priority_mix.expected").read_text(encoding="utf-8")


def test_sample_pad_alarms_compile_without_warnings() -> None:
    model = load_tags(REPO, roles=ROLES)
    compiled = compile_alarms(model)
    assert model.warnings == ()
    w1 = {p for p in compiled.alarms if p.startswith("sim_pad.w1.")}
    assert {"sim_pad.w1.pip_low.lo", "sim_pad.w1.pip_low.lolo", "sim_pad.w1.esp_stopped",
            "sim_pad.w1.comms_lost", "sim_pad.w1.thp_high.hi",
            "sim_pad.w1.motor_current.hi"} <= w1
    current = compiled.alarms["sim_pad.w1.motor_current.hi"]
    assert current.limit is not None and current.limit({}) == pytest.approx(72.0)
    stopped = compiled.alarms["sim_pad.w1.esp_stopped"]
    assert stopped.when is not None
    assert stopped.when({"sim_pad.w1.run_command": True, "sim_pad.w1.running": False})
    assert not stopped.when({"sim_pad.w1.run_command": False, "sim_pad.w1.running": False})
    assert stopped.rule.latch and stopped.rule.on_delay == 2.0
    assert compiled.by_tag["sim_pad.w1.running"] == [stopped]
    lo = compiled.alarms["sim_pad.w1.pip_low.lo"]
    assert lo.rule.message.es.startswith("PIP baja en W1: {value}")
    assert lo.suppress is not None and lo.suppress({"sim_pad.w1.run_command": False})


def test_site_rules_name_tags_below_the_site(project) -> None:  # type: ignore[no-untyped-def]
    root = project({
        "tags/scan_classes.yaml": "scan_classes:\n  fast: {period: 1s}\n",
        "tags/templates/p.yaml": "template: p\nscan_class: fast\ntags:\n"
                                 "  pip: {address: hr:40001, type: float32, range: [0, 10]}\n",
        "tags/sites/s.yaml": "site: s\ndevices:\n  plc: {type: modbus_tcp, host: h}\n"
                             "instances:\n  a.w1: {template: p, device: plc, unit_id: 1}\n"
                             "  w2: {template: p, device: plc, unit_id: 2}\n"
                             "alarms:\n  header:\n    when: a.w1.pip + w2.pip > 15\n"
                             "    priority: low\n    asset: HEADER\n",
    })
    compiled = compile_alarms(load_tags(root))
    header = compiled.alarms["s.header"]
    assert header.inputs == ("s.a.w1.pip", "s.w2.pip")
    assert header.when is not None
    assert header.when({"s.a.w1.pip": 9.0, "s.w2.pip": 7.0}) is True
    assert header.when({"s.a.w1.pip": 9.0, "s.w2.pip": 5.0}) is False
    assert header.rule.asset == "HEADER" and header.rule.instance is None


def test_campo_serve_refuses_a_bad_alarm_rule_before_starting(tmp_path: Path) -> None:
    from engine.errors import UserError
    from engine.settings import Settings
    from engine.wiring.serve import check_before_start

    shutil.copytree(FIXTURES / "invalid" / "unknown_tag_in_expression" / "tags",
                    tmp_path / "tags")
    settings = Settings(project=tmp_path, data_dir=tmp_path, jwt_secret="s" * 40)
    with pytest.raises(UserError) as info:
        check_before_start(settings, None)
    assert "tags/templates/pump.yaml:13:15: alarms.stopped.when: unknown name 'runing'" in \
        str(info.value)
