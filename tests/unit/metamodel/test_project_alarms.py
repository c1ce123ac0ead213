"""Alarm rules and notify/ in the one project: ``load_project`` checks what the metamodel can
(watched tags, action roles, routes -> sites/areas/transitions, hooks -> entities and their
workflow actions) and ``campo validate`` adds the alarm expressions, every problem in one run.
The golden reports are tests/fixtures/project/invalid/{alarm_rules,notify_routes}.expected."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.cli import main
from metamodel import DefinitionError
from metamodel.project import load_project

INVALID = Path(__file__).resolve().parents[2] / "fixtures" / "project" / "invalid"


def _copy(case: str, tmp_path: Path) -> Path:
    shutil.copytree(INVALID / case, tmp_path / case)
    return tmp_path / case


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_load_project_checks_notify_against_modules_and_tags(tmp_path: Path) -> None:
    root = _copy("notify_routes", tmp_path)
    with pytest.raises(DefinitionError) as info:
        load_project(root)
    assert [p.path for p in info.value.problems] == [
        "routes.wells.areas[0]", "routes.wells.sites[1]", "routes.wells.channels[1]",
        "routes.wells.actions[1]", "routes.wells.roster", "routes.wells.to[1]",
        "hooks.approved.action", "hooks.noted.entity", "hooks.missing.entity"]
    notify = root / "notify" / "notify.yaml"
    _edit(notify, "[wels]", "[wells]")
    _edit(notify, "[pad, pad2]", "[pad]")
    _edit(notify, "[ops, opz]", "[ops]")
    _edit(notify, "[raise, rais]", "[raise, clear]")
    _edit(notify, "    roster: day\n", "")
    _edit(notify, "[jefe@pad.example, supervisor]", "[jefe@pad.example]")
    _edit(notify, "action: aprove", "action: approve")
    _edit(notify, "entity: plant.note\n    action: save",
          "entity: plant.asset\n    action: approve")
    _edit(notify, "plant.asets", "plant.asset")
    project = load_project(root)
    assert project.notify is not None
    assert project.notify.routes["wells"].actions == ["raise", "clear"]
    assert set(project.notify.hooks) == {"approved", "noted", "missing"}


def test_a_route_area_is_not_reported_when_the_tags_are_broken(tmp_path: Path) -> None:
    """An alarm left out for its own problem must not make its area 'unknown' as well."""
    root = _copy("notify_routes", tmp_path)
    _edit(root / "tags" / "templates" / "pump.yaml", "tag: pip", "tag: pipp")
    with pytest.raises(DefinitionError) as info:
        load_project(root)
    paths = [p.path for p in info.value.problems]
    assert "alarms.pip_low.tag" in paths
    assert "routes.wells.areas[0]" not in paths


def test_a_rule_with_a_role_problem_still_has_its_expression_checked(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Every problem in one run: the rule 'stopped' has an unknown role and an unknown name
    in its 'when'; both are reported."""
    assert main(["validate", str(INVALID / "alarm_rules")]) == 1
    err = capsys.readouterr().err
    assert "alarms.stopped.when: unknown name 'runing'" in err
    assert "alarms.stopped.roles.acknowledge[1]: unknown role 'enginer'" in err


def test_site_alarm_roles_are_checked_by_the_metamodel(tmp_path: Path) -> None:
    root = _copy("alarm_rules", tmp_path)
    with pytest.raises(DefinitionError) as info:
        load_project(root)
    paths = [p.path for p in info.value.problems]
    assert "alarm_settings.roles.shelve[1]" in paths
    assert "alarm_settings.roles.out_of_service[0]" in paths
    # expressions are the engine's: not in the metamodel's report
    assert "alarms.header_low.when" not in paths


def test_validate_counts_alarms_and_channels_once_fixed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy("alarm_rules", tmp_path)
    pump = root / "tags" / "templates" / "pump.yaml"
    _edit(root / "modules" / "plant.yaml", "integr", "int")
    _edit(root / "tags" / "sites" / "pad.yaml", "[supervisor, enginer]", "[supervisor, engineer]")
    _edit(root / "tags" / "sites" / "pad.yaml", "[admn]", "[admin]")
    _edit(root / "tags" / "sites" / "pad.yaml", "w2.pip", "w1.pip")
    _edit(pump, "pipp", "pip")
    _edit(pump, "[operator, enginer]", "[operator, engineer]")
    _edit(pump, "not runing", "not running")
    assert main(["validate", str(root)]) == 1
    err = capsys.readouterr().err
    assert err == ("tags/templates/pump.yaml:20:31: alarms.pip_fast.suppress_when: unknown name "
                   "'fals'\n  hint: did you mean 'false'?\n1 problem in 1 file\n")
    _edit(pump, "== fals", "== false")
    (root / "notify").mkdir()
    (root / "notify" / "n.yaml").write_text(
        "channels:\n  ops: {type: webhook, url: 'http://127.0.0.1:9/h'}\n"
        "routes:\n  all: {channels: [ops], sites: [pad]}\n", encoding="utf-8")
    assert main(["validate", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 1 modules, ")
    assert "1 site, 2 tags, 4 alarms, 1 notification channel" in out


def test_alarms_check_reports_roles_tags_and_expressions_together(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``campo alarms check`` checks roles against the project's modules and reports the
    tag language's problems with the expressions' in one run."""
    root = _copy("alarm_rules", tmp_path)
    _edit(root / "modules" / "plant.yaml", "integr", "int")
    assert main(["alarms", "check", "--project", str(root)]) == 1
    err = capsys.readouterr().err
    for path in ("alarm_settings.roles.shelve[1]", "alarms.header_low.when",
                 "alarms.pip_low.tag", "alarms.stopped.when",
                 "alarms.stopped.roles.acknowledge[1]", "alarms.pip_fast.suppress_when"):
        assert f": {path}: " in err, path
    assert err.endswith("7 problems in 2 files\n")
    # 'engineer' is a role of the project's module, not a built-in one: accepted
    assert "unknown role 'engineer'" not in err


def test_serve_checks_notify_against_the_modules_before_starting(tmp_path: Path) -> None:
    from engine.errors import UserError
    from engine.rules import load_project as load_modules
    from engine.settings import Settings
    from engine.wiring.serve import check_before_start

    root = _copy("notify_routes", tmp_path)
    settings = Settings(project=root, data_dir=tmp_path, jwt_secret="s" * 40)
    with pytest.raises(UserError) as info:
        check_before_start(settings, load_modules(root))
    text = str(info.value)
    assert "notify/notify.yaml:22:13: hooks.missing.entity: hook names unknown entity " \
           "'plant.asets'" in text
    assert "routes.wells.sites[1]: route names unknown site 'pad2'" in text
