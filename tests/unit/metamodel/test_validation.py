"""pydantic errors -> located problems, for the module language and for other languages.

Other YAML languages (SCADA tags) reuse :func:`problems_from` with their own models, so it is
tested here on a small stand-in language with a discriminated union on a model field, an
alias and a label union, validated whole and from a base path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from metamodel import DefinitionError, load
from metamodel.errors import Problems, did_you_mean, expected_one_of
from metamodel.source import Document, read_yaml
from metamodel.spec import Labels, ModuleFile
from metamodel.validation import describe_pattern, problems_from, walk

REPO = Path(__file__).resolve().parents[3]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)


class Modbus(_Spec):
    kind: Literal["modbus"]
    address: Annotated[int, Field(ge=0, le=65535)]


class Mqtt(_Spec):
    kind: Literal["mqtt"]
    topic: Annotated[str, Field(pattern=r"^[a-z/]+$")]


class Tag(_Spec):
    name: str
    source: Modbus | Mqtt = Field(discriminator="kind")
    scale_: float = Field(1.0, alias="scale")
    label: Labels | str | None = None


class TagFile(_Spec):
    tags: list[Tag]


def doc_of(tmp_path: Path, text: str) -> Document:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    doc = read_yaml(path, "t.yaml", Problems())
    assert doc is not None
    return doc


def problems(model: Any, doc: Document, value: Any = None, base: tuple[Any, ...] = ()
             ) -> list[str]:
    try:
        model.model_validate(doc.value if value is None else value)
    except ValidationError as exc:
        return [p.format() for p in problems_from(exc, model, doc, base)]
    return []


TAGS = """\
tags:
  - name: p1
    source: {kind: modbus, address: 70000}
    scale: "x"
  - name: p2
    source: {kind: opcua}
    label: {es: 1}
    bogus: 2
  - name: p3
    source: {topic: a}
  - name: p4
    source: {kind: mqtt, topic: A B}
    label: 7
"""


def test_another_language_reuses_problems_from(tmp_path: Path) -> None:
    doc = doc_of(tmp_path, TAGS)
    assert problems(TagFile, doc) == [
        "t.yaml:3:37: tags[0].source.address: must be at most 65535, got 70000",
        "t.yaml:4:12: tags[0].scale: expected a number, got 'x'\n"
        "  hint: write the value without quotes",
        "t.yaml:6:20: tags[1].source.kind: unknown 'kind' 'opcua'\n"
        "  hint: expected one of modbus, mqtt",
        "t.yaml:7:17: tags[1].label.es: expected a string, got 1\n"
        "  hint: put the value in quotes to make it text",
        "t.yaml:8:5: tags[1].bogus: unknown key 'bogus'\n"
        "  hint: expected one of label, name, scale, source",
        "t.yaml:10:5: tags[2].source: missing required key 'kind'\n"
        "  hint: expected one of modbus, mqtt",
        "t.yaml:12:33: tags[3].source.topic: 'A B' does not match the pattern '^[a-z/]+$'",
        "t.yaml:13:12: tags[3].label: expected a mapping or a string, got 7",
    ]


def test_base_path_and_named_patterns(tmp_path: Path) -> None:
    doc = doc_of(tmp_path, TAGS)
    describe_pattern(r"^[a-z/]+$", "an MQTT topic", "lowercase words separated by '/'")
    try:
        got = problems(Mqtt, doc, doc.value["tags"][3]["source"], base=("tags", 3, "source"))
    finally:
        describe_pattern(r"^[a-z/]+$", "", "")
    assert got == ["t.yaml:12:33: tags[3].source.topic: 'A B' is not an MQTT topic\n"
                   "  hint: lowercase words separated by '/'"]


def test_walk_drops_union_labels_and_tags() -> None:
    loc = ("entities", "a", "fields", "k", "enum", "values",
           "dict[constrained-str,nullable[union[function-after[_one_language(), Labels],str]]]",
           "x", "function-after[_one_language(), Labels]", "es")
    w = walk(ModuleFile, loc)
    assert w.data_path == ["entities", "a", "fields", "k", "values", "x", "es"]
    assert [c[1] for c in w.choices] == [0, 0]
    key = walk(ModuleFile, ("entities", "Bad", "[key]"))
    assert (key.data_path, key.is_key) == (["entities", "Bad"], True)


def test_hints() -> None:
    assert did_you_mean("strng", ["string", "text"]) == "did you mean 'string'?"
    assert did_you_mean("esp", ["ESP", "PCP"]) == "did you mean 'ESP'?"
    assert did_you_mean("zzz", ["string"]) is None
    assert expected_one_of("b", ["c", "a"]) == "expected one of a, c"


# --------------------------------------------------------------------------- fuzzing

_SHOWCASE = yaml.safe_load((REPO / "modules" / "showcase" / "showcase.yaml").read_text())
_ODD_VALUES = [None, 0, -1, 1.5, True, "x", "Bad Name", "", [], [1, "a"], {}, {"a": 1},
               "2024-01-01", "{", "999999999999999999999"]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


_ALL_PATHS = [p for p in _paths(_SHOWCASE) if p]


def _mutate(doc: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    import copy

    out = copy.deepcopy(doc)
    node = out
    for part in path[:-1]:
        node = node[part]
    last = path[-1]
    if action == "replace":
        node[last] = value
    elif action == "delete" and isinstance(node, dict):
        del node[last]
    elif action == "rename" and isinstance(node, dict) and isinstance(last, str):
        node[last[:-1] + "x" if len(last) > 1 else "Q"] = node.pop(last)
    return out


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(st.tuples(st.sampled_from(_ALL_PATHS),
                                    st.sampled_from(["replace", "delete", "rename"]),
                                    st.sampled_from(_ODD_VALUES)), min_size=1, max_size=3))
def test_mutated_documents_give_located_problems_never_crashes(
        tmp_path_factory: pytest.TempPathFactory, mutations: list[Any]) -> None:
    doc: Any = _SHOWCASE
    for path, action, value in mutations:
        try:
            doc = _mutate(doc, path, action, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    root = tmp_path_factory.mktemp("fuzz")
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    (root / "modules").mkdir()
    (root / "modules" / "m.yaml").write_text(text, encoding="utf-8")
    lines = text.split("\n")
    try:
        load(root)
    except DefinitionError as err:
        assert err.problems
        for p in err.problems:
            assert 1 <= p.location.line <= len(lines), p.format()
            assert 1 <= p.location.column <= len(lines[p.location.line - 1]) + 1, p.format()
            report = p.format()
            for leak in ("function-after", "constrained-", "[key]", "union[", "Input should",
                         "Value error", "NoneType", "<class"):
                assert leak not in report, report
