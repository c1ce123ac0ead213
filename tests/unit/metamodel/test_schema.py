"""The JSON Schema exported for editors (``campo schema``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from engine.cli import main
from metamodel.schema import json_schema

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "defs"
REPO = Path(__file__).resolve().parents[3]
VALID_FILES = sorted([*(REPO / "modules").rglob("*.yaml"), *(REPO / "sites").rglob("*.yaml"),
                      *(FIXTURES / "valid").rglob("*.yaml"), *(FIXTURES / "valid").rglob("*.yml")])


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_schema_is_draft7_for_the_yaml_language_server() -> None:
    schema = json_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "$defs" not in json.dumps(schema)  # draft-07 uses definitions
    module_file = schema["definitions"]["ModuleFile"]
    assert module_file["required"] == ["module"]
    assert module_file["additionalProperties"] is False
    assert schema["else"] == {"$ref": "#/definitions/ModuleFile"}
    assert schema["then"] == {"$ref": "#/definitions/OverlayFile"}


def _as_editor_sees(value: Any) -> Any:
    """Dates as the strings an editor's YAML 1.2 parser sees."""
    if isinstance(value, dict):
        return {k: _as_editor_sees(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_editor_sees(v) for v in value]
    return value.isoformat() if isinstance(value, dt.date) else value


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda p: p.name)
def test_valid_files_pass_the_schema(validator: jsonschema.Draft7Validator, path: Path) -> None:
    data = _as_editor_sees(yaml.safe_load(path.read_text()))
    assert [e.message for e in validator.iter_errors(data)] == []


@pytest.mark.parametrize("text", [
    "module: a\nentities: {x: {fields: {n: {type: string, requird: true}}}}",
    "module: a\nentities: {x: {fields: {n: {type: strng}}}}",
    "module: a\nentities: {x: {fields: {n: {type: link, on_delete: sett_null, to: y}}}}",
    "module: Bad\n",
    "entities: {}\n",
    "module: a\nentities: {x: {fields: {n: {type: int}}, permissions: {viewer: [write]}}}",
    "module: a\nentities: {x: {fields: {n: {type: int, stored: 'no'}}}}",
    "module: a\nentities: {x: {fields: {s: {type: enum, values: [a]}}, workflow: {field: s, "
    "transitions: [{action: go, form: [a], to: a}]}}}",
    "module: a\nentities: {x: {fields: {n: {type: int}}, validations: [{rul: 'x'}]}}",
    "module: a\nentities: {x: {fields: {n: {type: string}}, naming: {field: n, serie: 'A'}}}",
    "overlay: true\nmodule: a\nentities: {x: {workflow: {field: s}}}",
    "overlay: true\nmodule: a\nentities: {x: {fields: {n: {hiden: true}}}}",
    "overlay: true\nentities: {}",
])
def test_typos_fail_the_schema(validator: jsonschema.Draft7Validator, text: str) -> None:
    assert list(validator.iter_errors(yaml.safe_load(text)))


def _properties(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for name, d in schema["definitions"].items():
        out += [(name, k, v) for k, v in d.get("properties", {}).items()]
    return out


def test_every_key_is_described_for_editors() -> None:
    schema = json_schema()
    undocumented = [f"{m}.{k}" for m, k, v in _properties(schema) if not v.get("description")]
    assert undocumented == []
    assert all(d.get("description") for d in schema["definitions"].values())
    examples = {f"{m}.{k}" for m, k, v in _properties(schema) if v.get("examples")}
    assert {"ModuleFile.module", "LinkField.to", "EnumField.values", "EntitySpec.title",
            "EntitySpec.permissions", "RoleSpec.inherits"} <= examples
    pattern = schema["definitions"]["ModuleFile"]["patternProperties"]
    assert pattern == {"^x-": pattern["^x-"]}


def test_campo_schema_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()
