"""The tag language: the shipped sim pad, a fixture using every kind, overrides and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from metamodel import DefinitionError
from metamodel.tags import ModbusAddress, MqttAddress, OpcUaAddress, load_tags

REPO = Path(__file__).resolve().parents[3]
ALL_KINDS = REPO / "tests" / "fixtures" / "tags" / "valid" / "all_kinds"

#: (zero-based offset, registers, type) of every holding register in SIM_MAP.md
SIM_MAP = {
    "pip": (0, 2, "float32"), "thp": (2, 2, "float32"), "chp": (4, 2, "float32"),
    "motor_current": (6, 1, "uint16"), "frequency": (7, 1, "uint16"),
    "liquid_rate": (8, 2, "float32"), "motor_temperature": (10, 1, "int16"),
    "run_hours": (11, 2, "uint32"), "trip_cause": (13, 1, "uint16"),
    "frequency_setpoint": (20, 1, "uint16"), "fault_injection": (30, 1, "uint16"),
}


def test_sim_pad_matches_the_register_map() -> None:
    model = load_tags(REPO)
    for n in (1, 2, 3, 4):
        for name, (offset, count, dtype) in SIM_MAP.items():
            tag = model.tags[f"sim_pad.w{n}.{name}"]
            assert tag.address == ModbusAddress("holding_register", n, offset, count), name
            assert tag.data_type == dtype
            assert (tag.byte_order, tag.word_order) == ("big", "big")
        assert model.tags[f"sim_pad.w{n}.running"].address == ModbusAddress("coil", n, 0, 1)
        run = model.tags[f"sim_pad.w{n}.run_command"]
        assert run.address == ModbusAddress("coil", n, 1, 1) and run.writable
    current = model.tags["sim_pad.w1.motor_current"].scaling
    assert current is not None and current.to_eng(10000) == pytest.approx(1000)
    freq = model.tags["sim_pad.w1.frequency"].scaling
    assert freq is not None and freq.to_eng(5000) == pytest.approx(50)
    sp = model.tags["sim_pad.w2.frequency_setpoint"]
    assert (sp.write_min, sp.write_max) == (40, 60) and "operator" in sp.write_roles
    assert sp.scaling is not None and sp.scaling.to_raw(45.5) == pytest.approx(4550)
    temp = model.tags["sim_pad.w3.motor_temperature"].scaling
    assert temp is not None and temp.to_eng(-125) == pytest.approx(-12.5)
    assert model.tags["sim_pad.w1.motor_current"].deadband == pytest.approx(1.0)  # 0.1% of 1000
    dev = model.devices["sim_pad.plc"]
    assert (dev.spec.host, dev.spec.port) == ("127.0.0.1", 5020)  # type: ignore[union-attr]


def test_sim_pad_opcua_face() -> None:
    model = load_tags(REPO)
    tag = model.tags["sim_pad.ua.w3.pip"]
    assert tag.address == OpcUaAddress("W3.IntakePressure", "s", None, "urn:campo:simulator")
    assert model.devices["sim_pad.ua"].type == "opcua"
    assert {t.path.rsplit(".", 1)[1] for t in model.tags_for("wells.well", "W2")} >= {
        "pip", "running", "frequency_setpoint"}
    assert {t.instance for t in model.tags_for("wells.well", "W2")} == {
        "sim_pad.w2", "sim_pad.ua.w2"}


def test_host_and_port_overrides() -> None:
    model = load_tags(REPO, params={"sim_pad.modbus_port": "5021"},
                      environ={"CAMPO_SIM_MODBUS_HOST": "10.0.0.9",
                               "CAMPO_SIM_OPCUA_ENABLED": "false"})
    dev = model.devices["sim_pad.plc"].spec
    assert (dev.host, dev.port) == ("10.0.0.9", 5021)  # type: ignore[union-attr]
    assert model.devices["sim_pad.ua"].enabled is False
    assert model.parameters["sim_pad"]["modbus_port"] == 5021


def test_bad_override_is_a_located_problem() -> None:
    with pytest.raises(DefinitionError) as info:
        load_tags(REPO, environ={"CAMPO_SIM_MODBUS_PORT": "fifty"})
    text = info.value.format()
    assert "tags/sites/sim_pad.yaml:" in text
    assert ("parameter 'modbus_port' (int): 'fifty' is not an integer "
            "(from $CAMPO_SIM_MODBUS_PORT)") in text


def test_every_kind_of_device_and_address() -> None:
    model = load_tags(ALL_KINDS)
    t = model.tags
    assert t["station.fc2.flow"].address == ModbusAddress("input_register", 2, 101, 2)
    assert (t["station.fc2.flow"].byte_order, t["station.fc2.flow"].word_order) == (
        "little", "little")
    assert t["station.fc1.flow"].deadband == pytest.approx(5.0)  # 1% of range 0..500
    assert t["station.fc1.status.alarm"].address == ModbusAddress("input_register", 1, 0, 1, 3)
    assert t["station.fc1.tag_name"].length == 8 and t["station.fc1.tag_name"].address.count == 4
    assert t["station.fc1.tag_name"].description == "meter FT-101 on station"
    assert t["station.fc2.tag_name"].description == "meter M1 on station"
    assert t["station.fc1.level"].write_roles == {"supervisor"}
    assert t["station.fc1.level"].scaling.clamp  # type: ignore[union-attr]
    assert t["station.fc2.status"].period == 0.5 and t["station.fc2.total"].period == 60
    assert t["station.fc1.status"].period == 5
    assert t["station.sep.level"].address == MqttAddress(
        topic="station/sep1", path="data.levels[0]")
    assert t["station.edge.flow"].address.metric == "Meter/Flow"  # type: ignore[union-attr]
    assert t["station.tank.level"].address == OpcUaAddress("Tank1.Level", "s", 2)
    assert model.devices["station.line1"].timeout == pytest.approx(0.2)
    assert model.devices["station.line1"].spec.baudrate == 19200  # type: ignore[union-attr]
    assert [x.path for x in model.select("station.*.door")] == [
        "station.fc1.door", "station.fc2.door"]
    assert len(model.select("station.fc1.**")) == 10
    assert [x.path for x in model.tags_for("showcase.asset", "FT-101")][:2] == [
        "station.fc1.counter", "station.fc1.door"]
    assert list(model.tags) == sorted(model.tags)


def test_unknown_write_role_with_known_roles() -> None:
    with pytest.raises(DefinitionError) as info:
        load_tags(ALL_KINDS, roles={"admin", "operator", "viewer", "supervsior"})
    assert "unknown role 'supervisor'" in info.value.format()
    assert "did you mean 'supervsior'?" in info.value.format()


def test_hundred_wells_are_hundred_lines(project) -> None:  # type: ignore[no-untyped-def]
    lines = "\n".join(f"  w{n}: {{template: esp_well, device: plc, unit_id: {n % 247 + 1}, "
                      f"base: {(n // 247) * 40}, params: {{well: W{n}}}}}" for n in range(100))
    root = project({
        "tags/scan_classes.yaml": (REPO / "tags/scan_classes.yaml").read_text(),
        "tags/templates/esp_well.yaml": (REPO / "tags/templates/esp_well.yaml").read_text(),
        "tags/sites/big.yaml": "site: big\ndevices:\n  plc: {type: modbus_tcp, host: x}\n"
                               "instances:\n" + lines + "\n",
    })
    model = load_tags(root)
    assert len(model.instances) == 100
    assert len(model.tags) == 100 * 13
    assert model.tags["big.w57.pip"].address.unit_id == 58  # type: ignore[union-attr]


def test_template_problem_is_reported_once_for_many_instances(project) -> None:  # type: ignore[no-untyped-def]
    root = project({
        "tags/scan_classes.yaml": "scan_classes: {fast: {period: 1s}}\n",
        "tags/templates/t.yaml": "template: t\nscan_class: fast\ntags:\n"
                                 "  a: {address: coil:00001, type: int16}\n",
        "tags/sites/s.yaml": "site: s\ndevices:\n  d: {type: modbus_tcp, host: x}\ninstances:\n"
                             + "".join(f"  i{n}: {{template: t, device: d, unit_id: {n}}}\n"
                                       for n in range(1, 6)),
    })
    with pytest.raises(DefinitionError) as info:
        load_tags(root)
    assert len(info.value.problems) == 1
    assert str(info.value.problems[0].location) == "tags/templates/t.yaml:4:34"


def test_no_tags_folder_is_an_empty_model(tmp_path: Path) -> None:
    model = load_tags(tmp_path)
    assert model.tags == {} and model.devices == {}


def test_dumps_folders_are_not_tag_files(project) -> None:  # type: ignore[no-untyped-def]
    root = project({
        "tags/scan_classes.yaml": "scan_classes: {fast: {period: 1s}}\n",
        "tags/templates/t.dumps/one.yaml": "registers: {}\n",
    })
    assert load_tags(root).scan_classes["fast"].period == 1.0


def test_site_default_scan_class(project) -> None:  # type: ignore[no-untyped-def]
    root = project({
        "tags/scan_classes.yaml": "scan_classes: {fast: {period: 1s}, slow: {period: 9s}}\n",
        "tags/sites/s.yaml": "site: s\nscan_class: slow\ndevices:\n  d: {type: modbus_tcp, "
                             "host: x}\ntags:\n  a: {device: d, address: hr:40001, type: int16}\n"
                             "  b: {device: d, address: hr:40002, type: int16, "
                             "scan_class: fast}\n",
    })
    model = load_tags(root)
    assert (model.tags["s.a"].period, model.tags["s.b"].period) == (9.0, 1.0)
