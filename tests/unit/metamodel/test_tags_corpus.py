"""Golden corpus: each broken tags project under tests/fixtures/tags/invalid/<case>/ fails
with exactly the text of <case>.expected (messages are part of the contract)."""

from __future__ import annotations

from pathlib import Path

import pytest

from metamodel import DefinitionError
from metamodel.tags import load_tags

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tags"
CASES = sorted(p.name for p in (FIXTURES / "invalid").iterdir() if p.is_dir())


def test_corpus_is_not_empty() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        assert (FIXTURES / "invalid" / f"{case}.expected").is_file(), case


@pytest.mark.parametrize("case", CASES)
def test_invalid_case_reports_expected_problems(case: str) -> None:
    with pytest.raises(DefinitionError) as info:
        load_tags(FIXTURES / "invalid" / case)
    expected = (FIXTURES / "invalid" / f"{case}.expected").read_text(encoding="utf-8")
    assert info.value.format() + "\n" == expected


def test_every_problem_is_located_in_a_file() -> None:
    for case in CASES:
        with pytest.raises(DefinitionError) as info:
            load_tags(FIXTURES / "invalid" / case)
        for p in info.value.problems:
            assert p.location.file.startswith("tags/"), (case, p)
            assert p.location.line >= 1 and p.location.column >= 1, (case, p)
