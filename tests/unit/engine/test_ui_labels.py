"""Spanish everywhere (issue 13): every UI text of the desk and every label of the shipped
model has a Spanish version, and every text the desk asks for exists.

The desk's dictionary (``ui/js/i18n.js``) is read with a small scanner of its object
literal (keys at depth one of ``en: {...}`` and ``es: {...}``); the texts the code asks for
are the ``t('key')`` calls in ``ui/js/*.js``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from metamodel import load
from metamodel.spec import Labels

REPO = Path(__file__).resolve().parents[3]
UI = REPO / "ui" / "js"


def _dictionary(text: str, lang: str) -> dict[str, str]:
    """The ``lang: { key: 'text', ... }`` block of ``T`` in i18n.js, as a dict."""
    start = text.index(f"\n  {lang}: {{") + len(f"\n  {lang}: {{")
    out: dict[str, str] = {}
    i, n = start, len(text)
    key: str | None = None
    while i < n:
        ch = text[i]
        if ch == "}":
            return out
        if ch in "'\"`":
            j = i + 1
            buf = []
            while text[j] != ch:
                if text[j] == "\\":
                    j += 1
                buf.append(text[j])
                j += 1
            if key is not None:
                out[key] = "".join(buf)
                key = None
            i = j + 1
            continue
        m = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*:").match(text, i)
        if m and key is None:
            key = m.group(1)
            i = m.end()
            continue
        i += 1
    raise AssertionError(f"no end of the {lang} dictionary")


I18N = (UI / "i18n.js").read_text(encoding="utf-8")
EN = _dictionary(I18N, "en")
ES = _dictionary(I18N, "es")


def test_the_scanner_reads_both_dictionaries() -> None:
    assert EN["save"] == "Save" and ES["save"] == "Guardar"
    assert len(EN) > 100


def test_every_english_ui_text_has_a_spanish_one() -> None:
    missing = sorted(set(EN) - set(ES))
    assert missing == [], f"ui/js/i18n.js: no Spanish for {missing}"
    extra = sorted(set(ES) - set(EN))
    assert extra == [], f"ui/js/i18n.js: Spanish without English for {extra}"
    empty = sorted(k for k in EN if not EN[k].strip() or not ES[k].strip())
    assert empty == []


def test_placeholders_match_between_languages() -> None:
    def names(s: str) -> set[str]:
        return set(re.findall(r"\{(\w+)\}", s))

    differ = sorted(k for k in EN if k in ES and names(EN[k]) != names(ES[k]))
    assert differ == [], f"placeholders differ between en and es: {differ}"


def test_every_text_the_desk_asks_for_exists() -> None:
    asked: dict[str, str] = {}
    for path in sorted(UI.glob("*.js")):
        text = path.read_text(encoding="utf-8")
        for call in re.finditer(r"\bt\(([^(){}]*)", text):  # t('a'), t(x ? 'a' : 'b', {...})
            for m in re.finditer(r"'([a-z][a-z0-9_]*)'", call.group(1)):
                asked.setdefault(m.group(1), path.name)
        for m in re.finditer(r"\bt\(.*?`([a-z_]+)\$\{", text):  # t(`units_${u}`)
            for key in (k for k in EN if k.startswith(m.group(1))):
                asked.setdefault(key, path.name)
    assert len(asked) > 50
    unknown = sorted(f"{k} ({where})" for k, where in asked.items() if k not in EN)
    assert unknown == [], f"t() keys missing from the dictionary: {unknown}"


def _labels_in(obj: Any, where: str, out: list[tuple[str, Any]]) -> None:
    """Every ``label``/``help`` value (and enum value label) under a spec object."""
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            value = getattr(obj, name)
            if name == "label" or name in ("help", "message", "messages") and value is not None:
                out.append((f"{where}.{name}", value))  # no label: the name, not Spanish
            elif name == "values" and isinstance(value, dict):
                for code, lab in value.items():
                    if isinstance(lab, (str, Labels)) or lab is None:
                        out.append((f"{where}.values.{code}", lab))
                    else:
                        _labels_in(lab, f"{where}.values.{code}", out)
            else:
                _labels_in(value, f"{where}.{name}", out)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _labels_in(v, f"{where}.{k}", out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _labels_in(v, f"{where}[{i}]", out)


def _untranslated(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, Labels):
        return not value.es or not value.en
    return False  # one string for both languages: a code-like label (WGS 84), given on purpose


@pytest.fixture(scope="module")
def model() -> Any:
    return load(REPO)


def test_every_label_of_the_shipped_model_has_spanish(model: Any) -> None:
    found: list[tuple[str, Any]] = []
    for qualname, ent in sorted(model.entities.items()):
        mine: list[tuple[str, Any]] = []
        _labels_in(ent.spec, qualname, mine)
        wf = ent.spec.workflow
        for where, value in mine:
            m = re.fullmatch(rf"{re.escape(qualname)}\.workflow\.states\.(\w+)\.label", where)
            if m and value is None and wf is not None:  # a state's default: its enum label
                value = (ent.spec.fields[wf.field].values or {}).get(m.group(1))
            found.append((where, value))
    for name, mod in sorted(model.modules.items()):
        found.append((f"module {name}", mod.labels))
    for name, role in sorted(model.roles.items()):
        found.append((f"role {name}", role.labels))
    assert len(found) > 500
    bad = sorted(where for where, value in found if _untranslated(value))
    assert bad == [], f"labels without Spanish: {bad[:40]} ({len(bad)} in all)"


def test_built_in_roles_have_spanish_labels(model: Any) -> None:
    for name in ("admin", "supervisor", "operator", "viewer", "scada"):
        role = model.roles[name]
        assert role.labels.es and role.labels.en, name
    assert model.roles["operator"].labels.es != model.roles["operator"].labels.en
    assert model.roles["viewer"].labels.es != model.roles["viewer"].labels.en
