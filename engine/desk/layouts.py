"""``GET /api/desk/layouts``: form and list layouts (``screens/layouts``) of readable entities.

The layouts are loaded and checked against the model once, when the desk starts (a
mistake stops ``campo serve`` with every problem located, like the module files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Response
from flask_smorest import Blueprint

from engine.api import security
from engine.api.errors import json_response
from metamodel.layout import Layouts, load_layouts
from metamodel.spec import labels_of

from .context import ctx

if TYPE_CHECKING:
    from .plugin import DeskPlugin


def _labels(value: Any, fallback: str) -> dict[str, str] | None:
    if value is None:
        return None
    lab = labels_of(value, fallback)
    return {"es": lab.es or "", "en": lab.en or ""}


def layouts_json(layouts: Layouts) -> dict[str, Any]:
    """Layouts as the desk reads them (labels normalised to ``{es, en}``)."""
    forms: dict[str, Any] = {}
    for qual, form in layouts.forms.items():
        tabs = form.tabs or []
        raw_tabs = [{"label": _labels(t.label, "tab"), "sections": t.sections} for t in tabs] \
            if tabs else [{"label": None, "sections": form.sections or []}]
        forms[qual] = {"tabs": [{"label": t["label"], "sections": [
            {"label": _labels(s.label, "section"), "columns": s.columns,
             "collapsible": s.collapsible, "collapsed": s.collapsed, "fields": s.fields}
            for s in t["sections"]]} for t in raw_tabs]}
    lists = {q: {"columns": lst.columns, "sort": lst.sort, "group_by": lst.group_by}
             for q, lst in layouts.lists.items()}
    return {"forms": forms, "lists": lists}


def register(blp: Blueprint, plugin: DeskPlugin) -> None:
    """Add the layouts route."""
    data = layouts_json(load_layouts(plugin.settings.project, plugin.model))

    @blp.route("/layouts")
    @blp.doc(summary="Form and list layouts of the entities the caller may read")
    def layouts() -> Response:
        c = ctx()
        ok = {q for q, r in c.resources.items()
              if "read" in security.allowed_actions(c, r.entity)}
        hidden = {q: security.field_rules(c, c.resources[q].entity).hidden for q in ok}
        forms = {q: {"tabs": [{**t, "sections": [
            {**s, "fields": [f for f in s["fields"] if f not in hidden[q]]}
            for s in t["sections"]]} for t in v["tabs"]]}
            for q, v in data["forms"].items() if q in ok}
        lists = {q: {**v, "columns": [f for f in v["columns"] if f not in hidden[q]],
                     "group_by": [f for f in v["group_by"] if f not in hidden[q]]}
                 for q, v in data["lists"].items() if q in ok}
        return json_response({"forms": forms, "lists": lists})
