"""The complete module files shown in docs/modeling.md are valid (expressions included)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.rules import load_project

DOC = Path(__file__).resolve().parents[3] / "docs" / "modeling.md"
BLOCKS = [b for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
          if b.startswith("module:") and "{ ... }" not in b]


def test_the_guide_shows_complete_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_is_valid(project, index: int) -> None:  # type: ignore[no-untyped-def]
    roles = next(b for b in BLOCKS if b.startswith("module: core"))
    files = {"modules/core/roles.yaml": roles}
    if BLOCKS[index] != roles:
        files["modules/example.yaml"] = BLOCKS[index]
    model = load_project(project(files))
    assert model.modules
