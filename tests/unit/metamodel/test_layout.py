"""The desk's layout language (``screens/layouts``): checked against the model, every
mistake located as ``file:line:col: key.path: message`` with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.rules import load_project
from metamodel import DefinitionError
from metamodel.layout import load_layouts

MODULE = """
module: plant
entities:
  pump:
    fields:
      code: {type: string, max_length: 10}
      rate: {type: float}
      lines: {type: table, of: line}
  line:
    child: true
    fields:
      note: {type: string, max_length: 10}
"""


def _project(tmp_path: Path, layout: str) -> Path:
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "plant.yaml").write_text(MODULE, encoding="utf-8")
    (tmp_path / "screens" / "layouts").mkdir(parents=True)
    (tmp_path / "screens" / "layouts" / "plant.yaml").write_text(layout, encoding="utf-8")
    return tmp_path


def test_a_valid_layout_loads(tmp_path: Path) -> None:
    root = _project(tmp_path, "forms:\n  plant.pump:\n    sections:\n"
                              "      - {columns: 1, fields: [code, lines]}\n"
                              "lists:\n  plant.pump: {columns: [code, rate], sort: -rate}\n")
    layouts = load_layouts(root, load_project(root))
    assert layouts.forms["plant.pump"].sections[0].fields == ["code", "lines"]
    assert layouts.lists["plant.pump"].sort == "-rate"


def test_every_mistake_is_located(tmp_path: Path) -> None:
    root = _project(tmp_path, "forms:\n  plant.pmp:\n    sections: [{fields: [code]}]\n"
                              "  plant.pump:\n    sections:\n"
                              "      - {fields: [code, raet]}\n"
                              "lists:\n  plant.pump: {columns: [lines]}\n")
    with pytest.raises(DefinitionError) as err:
        load_layouts(root, load_project(root))
    text = err.value.format()
    assert "screens/layouts/plant.yaml:2:3: forms.plant.pmp: unknown entity 'plant.pmp'" in text
    assert "did you mean 'plant.pump'?" in text
    assert ("screens/layouts/plant.yaml:6:25: forms.plant.pump.sections.0.fields.1: "
            "unknown field 'raet' of plant.pump") in text
    assert "did you mean 'rate'?" in text
    assert ("screens/layouts/plant.yaml:8:26: lists.plant.pump.columns.0: unknown field "
            "'lines' of plant.pump\n  hint: expected one of code, rate") in text


def test_a_shape_mistake_is_located(tmp_path: Path) -> None:
    root = _project(tmp_path, "forms:\n  plant.pump:\n    sections:\n"
                              "      - {fields: [code], columns: 9}\n")
    with pytest.raises(DefinitionError) as err:
        load_layouts(root, load_project(root))
    assert err.value.format() == ("screens/layouts/plant.yaml:4:35: forms.plant.pump.sections.0."
                                  "columns: Input should be less than or equal to 4")
