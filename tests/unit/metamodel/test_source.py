"""Reading YAML with locations: marks, duplicates, merge keys, tags, syntax errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from metamodel import source
from metamodel.errors import Location, Problems
from metamodel.source import read_yaml

REPO = Path(__file__).resolve().parents[3]


def read(tmp_path: Path, text: str) -> tuple[source.Document | None, list[str]]:
    path = tmp_path / "f.yaml"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    problems = Problems()
    doc = read_yaml(path, "f.yaml", problems)
    return doc, [p.format() for p in problems.items]


def test_values_and_keys_are_located(tmp_path: Path) -> None:
    doc, problems = read(tmp_path, "a:\n  b: [1, {c: x}]\n  d: 2024-05-01\n")
    assert problems == []
    assert doc is not None
    assert doc.value == {"a": {"b": [1, {"c": "x"}], "d": dt.date(2024, 5, 1)}}
    assert doc.where(("a", "b", 1, "c")) == Location("f.yaml", 2, 14)
    assert doc.where_key(("a", "b", 1, "c")) == Location("f.yaml", 2, 11)
    assert doc.where_key(("a", "d")) == Location("f.yaml", 3, 3)
    # unknown paths fall back to the nearest known ancestor
    assert doc.where(("a", "b", 7, "zz")) == Location("f.yaml", 2, 6)
    assert doc.where_key(("a", "nope")) == doc.where(("a",))


def test_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    doc, problems = read(tmp_path, "# nothing here\n")
    assert problems == [] and doc is not None
    assert doc.value == {}
    assert doc.where(()) == Location("f.yaml", 1, 1)


def test_duplicate_keys_are_reported_with_both_places(tmp_path: Path) -> None:
    doc, problems = read(tmp_path, "a: 1\nb: 2\na: 3\n")
    assert problems == ["f.yaml:3:1: a: duplicate key 'a' (first defined at f.yaml:1:1)\n"
                        "  hint: each key may appear once in a mapping; merge the two entries"]
    assert doc is not None and doc.value == {"a": 1, "b": 2}


def test_merge_keys_override_like_safe_load(tmp_path: Path) -> None:
    text = ("base: &b {x: 1, y: 2}\nother: &o {y: 9, z: 3}\n"
            "m:\n  <<: [*b, *o]\n  x: 10\nn: *b\n")
    doc, problems = read(tmp_path, text)
    assert problems == []
    assert doc is not None and doc.value == yaml.safe_load(text)
    assert doc.where_key(("m", "x")) == Location("f.yaml", 5, 3)


def test_keys_keep_the_spelling_written(tmp_path: Path) -> None:
    doc, problems = read(tmp_path, "on: 1\nyes: 2\n404: 3\nnull: 4\n")
    assert problems == []
    assert doc is not None and list(doc.value) == ["on", "yes", "404", "null"]


def test_complex_keys_and_tags_are_reported(tmp_path: Path) -> None:
    doc, problems = read(tmp_path, "? [a]\n: 1\nb: !!python/name:os.system x\n"
                                   "c: !custom {a: 1}\nd: !!binary aGk=\n")
    assert problems == [
        "f.yaml:1:3: mapping keys must be plain names, not lists or mappings",
        "f.yaml:3:4: b: unsupported YAML tag '!!python/name:os.system'\n"
        "  hint: only plain values, lists and mappings are allowed; remove the tag",
        "f.yaml:4:4: c: unsupported YAML tag '!custom'\n"
        "  hint: only plain values, lists and mappings are allowed; remove the tag",
        "f.yaml:5:4: d: unsupported YAML tag '!!binary'\n"
        "  hint: only plain values, lists and mappings are allowed; remove the tag",
    ]
    assert doc is not None and doc.value == {"b": None, "c": None, "d": None}
    assert doc.unreadable == {Location("f.yaml", 3, 4), Location("f.yaml", 4, 4),
                              Location("f.yaml", 5, 4)}


def test_unreadable_file(tmp_path: Path) -> None:
    doc, problems = read(tmp_path, b"a: \xff\xfe\n")  # type: ignore[arg-type]
    assert doc is None
    assert problems[0].startswith("f.yaml:1:1: cannot read file: 'utf-8' codec can't decode")


@pytest.mark.parametrize("fast", [True, False])
def test_syntax_errors_read_the_same_with_or_without_libyaml(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    if not fast:
        monkeypatch.setattr(source, "_FAST_LOADER", yaml.SafeLoader)
    _, problems = read(tmp_path, "a: {b: 1\nc: 2\n")
    assert problems == [
        "f.yaml:2:2: YAML syntax error: expected ',' or '}', but got ':' (while parsing a flow "
        "mapping started at line 1, column 4)\n"
        "  hint: a '{' or '[' is not closed: check for a missing '}', ']' or ','"]
    _, problems = read(tmp_path, "a:\n\t- b\n")
    assert problems == [
        "f.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any token\n"
        "  hint: indent with spaces; YAML does not allow tabs for indentation"]


def test_libyaml_and_python_composers_agree(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = REPO / "modules" / "showcase" / "showcase.yaml"
    fast = read_yaml(path, "s.yaml", Problems())
    monkeypatch.setattr(source, "_FAST_LOADER", yaml.SafeLoader)
    slow = read_yaml(path, "s.yaml", Problems())
    assert fast is not None and slow is not None
    assert fast.value == slow.value == yaml.safe_load(path.read_text(encoding="utf-8"))
    assert (fast.values, fast.keys) == (slow.values, slow.keys)
