"""``GET /api/meta`` and ``GET /api/meta/<module>/<entity>``: what a UI needs to draw forms.

Modules, their entities and every field with its type, labels (es/en), help, unit,
constraints, enum values with labels, link targets and child tables (with their own fields).
Built once from the model when the app is built, then narrowed per request to what the
caller may read (:func:`engine.api.security.meta_for`: entities their roles may read, fields
not hidden from them, ``allowed`` actions and ``readonly_fields``), using their roles
directly: asking ``authorize`` here would record a refusal for each entity.
``permissions`` (role -> actions) is the whole map of the entity.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response
from flask_smorest import Blueprint

from metamodel import Entity, Model
from metamodel.spec import labels_of

from . import security
from .codecs import kind_of
from .context import ApiContext
from .errors import ApiError, json_response
from .rules import entity_rules_meta, field_rules_meta


def _labels(value: Any, fallback: str) -> dict[str, str]:
    lab = labels_of(value, fallback)
    return {"es": lab.get("es"), "en": lab.get("en")}


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def field_meta(model: Model, ent: Entity, name: str, f: Any, url_prefix: str) -> dict[str, Any]:
    """Everything a form needs about one field."""
    out: dict[str, Any] = {
        "name": name, "type": f.type, "label": _labels(f.label, name),
        "help": _labels(f.help, name) if f.help is not None else None,
        "unit": f.unit, "required": f.required, "unique": f.unique,
        "default": _plain(f.default),
    }
    for key in ("max_length", "min_length", "pattern", "min", "max", "precision", "scale"):
        if hasattr(f, key):
            out[key] = _plain(getattr(f, key))
    out.update(field_rules_meta(ent, name, f))  # computed, *_if texts, readonly (rules.py)
    out.update(kind_of(f).meta(f))  # what the field's kind adds
    if f.type == "enum":
        values = f.values if isinstance(f.values, dict) else dict.fromkeys(f.values)
        out["values"] = [{"value": code, "label": _labels(lab, code)}
                         for code, lab in values.items()]
    if f.type == "link":
        target = model.entity(ent.targets[name])
        out["link"] = {"entity": target.qualname, "url": f"{url_prefix}/{target.module}/"
                       f"{target.name}", "on_delete": f.on_delete, "title": target.spec.title,
                       "naming": target.spec.naming.field if target.spec.naming else None}
    if f.type == "table":
        child = model.entity(ent.targets[name])
        out["table"] = {"entity": child.qualname, "label": _labels(child.spec.label, child.name),
                        "fields": [field_meta(model, child, n, cf, url_prefix)
                                   for n, cf in child.fields.items()
                                   if not getattr(cf, "hidden", False)]}
    return out


def entity_meta(model: Model, ent: Entity, url_prefix: str = "/api") -> dict[str, Any]:
    """Everything a UI needs about one entity."""
    return {
        "module": ent.module, "name": ent.name, "qualname": ent.qualname,
        "label": _labels(ent.spec.label, ent.name),
        "url": None if ent.parent else f"{url_prefix}/{ent.module}/{ent.name}",
        "child": ent.parent is not None,
        "parent": ent.parent[0] if ent.parent else None,
        "title": ent.spec.title,
        "naming": ent.spec.naming.field if ent.spec.naming else None,
        "permissions": {role: sorted(actions) for role, actions in ent.permissions.items()},
        "fields": [field_meta(model, ent, n, f, url_prefix) for n, f in ent.fields.items()
                   if not getattr(f, "hidden", False)],
        **entity_rules_meta(ent),  # validations, workflow, naming series (rules.py)
    }


def meta_blueprint(ctx: ApiContext) -> Blueprint:
    """The ``/api/meta`` routes."""
    model = ctx.model
    entities = {q: entity_meta(model, e) for q, e in model.entities.items()}
    blp = Blueprint("meta", __name__, url_prefix="/api/meta",
                    description="Model metadata for building forms and lists")

    @blp.route("", endpoint="modules")
    @blp.doc(summary="Every module and entity with its fields",
             responses={"200": {"description": "modules with their entities"}})
    def modules() -> Response:
        out = []
        for module in model.modules.values():
            ents = [m for e in module.entities.values() if e.parent is None
                    and (m := security.meta_for(ctx, e, entities[e.qualname])) is not None]
            if ents:
                out.append({"name": module.name, "label": _labels(module.labels, module.name),
                            "entities": ents})
        return json_response({"modules": out})

    @blp.route("/<module>/<entity>", endpoint="entity")
    @blp.doc(summary="One entity with its fields",
             responses={"200": {"description": "the entity"}, "404": "NOT_FOUND"})
    def entity(module: str, entity: str) -> Response:
        qual = f"{module}.{entity}"
        seen = security.meta_for(ctx, model.entity(qual), entities[qual]) \
            if qual in entities else None
        if seen is None:  # unknown, or not readable by the caller
            raise ApiError(404, f"unknown entity '{qual}'")
        return json_response(seen)

    return blp
