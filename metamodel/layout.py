"""The desk's layout language: how forms and lists of the model's entities are arranged.

Files ``screens/layouts/*.yaml`` (optional) hold two mappings keyed by ``module.entity``::

    forms:
      maintenance.work_order:
        tabs:                                   # or `sections:` directly (one tab)
          - label: {es: General, en: General}
            sections:
              - label: {es: Trabajo, en: Job}
                columns: 2                      # 1 to 4
                collapsible: true
                collapsed: false
                fields: [number, equipment, kind, priority]
    lists:
      maintenance.work_order:
        columns: [number, equipment_name, status, due_on, total]
        sort: -due_on
        group_by: [status, priority]

A form's fields that no section names are shown in a last section, so a field added to the
model appears without touching its layout. Every name is checked against the model and
reported as ``file:line:col: key.path: message`` with a did-you-mean, like module files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import Problems, did_you_mean, expected_one_of
from .model import Model
from .source import Document, read_yaml
from .spec import LabelText

LAYOUT_DIR = Path("screens") / "layouts"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SectionSpec(_Spec):
    """A group of fields under an optional heading."""

    label: LabelText | None = None
    columns: int = Field(2, ge=1, le=4, description="Fields side by side on a wide screen.")
    collapsible: bool = False
    collapsed: bool = Field(False, description="Start folded (needs collapsible).")
    fields: list[str] = Field(min_length=1)


class TabSpec(_Spec):
    """A tab of a form: a label and its sections."""

    label: LabelText
    sections: list[SectionSpec] = Field(min_length=1)


class FormLayout(_Spec):
    """A form: tabs of sections, or sections alone (one tab)."""

    tabs: list[TabSpec] | None = None
    sections: list[SectionSpec] | None = None


class ListLayout(_Spec):
    """A list: its default columns, sort and suggested group-by fields."""

    columns: list[str] = Field(min_length=1)
    sort: str | None = None
    group_by: list[str] = []


class LayoutFile(_Spec):
    """One ``screens/layouts/*.yaml`` file."""

    forms: dict[str, FormLayout] = {}
    lists: dict[str, ListLayout] = {}


class Layouts(_Spec):
    """Every layout of a project, by ``module.entity``."""

    forms: dict[str, FormLayout] = {}
    lists: dict[str, ListLayout] = {}


def layout_files(project: Path) -> list[Path]:
    """The layout files of a project, sorted."""
    folder = project / LAYOUT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml"))


def _check_fields(names: Iterable[str], known: Iterable[str], path: tuple[Any, ...],
                  doc: Document, problems: Problems, what: str) -> None:
    options = list(known)
    seen: set[str] = set()
    for i, name in enumerate(names):
        loc = doc.where((*path, i))
        dotted = ".".join(str(p) for p in (*path, i))
        if name not in options:
            problems.add(loc, dotted, f"unknown field '{name}' of {what}",
                         expected_one_of(name, options))
        elif name in seen:
            problems.add(loc, dotted, f"field '{name}' is placed twice",
                         "a field appears in one section only")
        seen.add(name)


def _check(model: Model, spec: LayoutFile, doc: Document, problems: Problems) -> None:
    entities = {q: e for q, e in model.entities.items() if e.parent is None}
    for kind, items in (("forms", spec.forms), ("lists", spec.lists)):
        for qual in items:
            if qual not in entities:
                guess = did_you_mean(qual, entities)
                problems.add(doc.where_key((kind, qual)), f"{kind}.{qual}",
                             f"unknown entity '{qual}'", guess or "write module.entity")
    for qual, form in spec.forms.items():
        ent = entities.get(qual)
        if ent is None:
            continue
        if (form.tabs is None) == (form.sections is None):
            problems.add(doc.where(("forms", qual)), f"forms.{qual}",
                         "give either tabs or sections", None)
            continue
        tabs = form.tabs or [TabSpec(label="-", sections=form.sections or [])]
        names: list[str] = []
        for ti, tab in enumerate(tabs):
            for si, sec in enumerate(tab.sections):
                path = (("forms", qual, "tabs", ti, "sections", si, "fields") if form.tabs
                        else ("forms", qual, "sections", si, "fields"))
                for i, name in enumerate(sec.fields):
                    if name not in ent.fields:
                        problems.add(doc.where((*path, i)),
                                     ".".join(str(p) for p in (*path, i)),
                                     f"unknown field '{name}' of {qual}",
                                     expected_one_of(name, ent.fields))
                    elif name in names:
                        problems.add(doc.where((*path, i)),
                                     ".".join(str(p) for p in (*path, i)),
                                     f"field '{name}' is placed twice",
                                     "a field appears in one section only")
                    names.append(name)
    for qual, lst in spec.lists.items():
        ent = entities.get(qual)
        if ent is None:
            continue
        listable = [n for n, f in ent.fields.items() if f.type not in ("table",)]
        _check_fields(lst.columns, listable, ("lists", qual, "columns"), doc, problems, qual)
        _check_fields(lst.group_by, listable, ("lists", qual, "group_by"), doc, problems, qual)
        if lst.sort is not None:
            name = lst.sort.lstrip("-")
            if name not in listable and name not in ("id", "created_at", "updated_at"):
                problems.add(doc.where(("lists", qual, "sort")), f"lists.{qual}.sort",
                             f"unknown field '{name}' of {qual}",
                             expected_one_of(name, listable))


def load_layouts(project: Path, model: Model) -> Layouts:
    """Every layout file of ``project``, checked against ``model``; DefinitionError lists
    every problem."""
    problems = Problems()
    layouts = collect_layouts(project, model, problems)
    problems.raise_if_any()
    return layouts


def collect_layouts(project: Path, model: Model, problems: Problems) -> Layouts:
    """Like :func:`load_layouts`, but add the problems to ``problems`` (the project loader
    reports them with every other language's)."""
    forms: dict[str, FormLayout] = {}
    lists: dict[str, ListLayout] = {}
    for path in layout_files(project):
        display = str(path.relative_to(project)) if path.is_relative_to(project) else str(path)
        doc = read_yaml(path, display, problems)
        if doc is None or doc.value is None:
            continue
        try:
            spec = LayoutFile.model_validate(doc.value)
        except ValidationError as err:
            for e in err.errors():
                loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p in
                                                        ("str", "Labels")))
                problems.add(doc.where(loc), ".".join(str(p) for p in loc), e["msg"])
            continue
        _check(model, spec, doc, problems)
        for qual, form in spec.forms.items():
            if qual in forms:
                problems.add(doc.where_key(("forms", qual)), f"forms.{qual}",
                             f"a form layout of '{qual}' is already defined", None)
            forms[qual] = form
        for qual, lst in spec.lists.items():
            if qual in lists:
                problems.add(doc.where_key(("lists", qual)), f"lists.{qual}",
                             f"a list layout of '{qual}' is already defined", None)
            lists[qual] = lst
    return Layouts(forms=forms, lists=lists)
