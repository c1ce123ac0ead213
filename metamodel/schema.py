"""JSON Schema of the YAML language, for editor completion (``campo schema``).

The schema is JSON Schema draft-07, the newest draft that the YAML language server
(VS Code's YAML extension, Neovim's yamlls) fully supports; later drafts draw a warning there.
Every key has a description and most have examples, which editors show on hover and offer
when completing. The schema checks shape only (keys, types, allowed values); references
between entities, defaults and names are checked by ``campo validate``.

Example::

    import json
    from metamodel.schema import json_schema
    json.dumps(json_schema())   # what `campo schema > campo.schema.json` writes
"""

from __future__ import annotations

from typing import Any

from .overlays import ENTITY_OVERRIDES, FIELD_OVERRIDES
from .spec import NAME_PATTERN, ModuleFile

DRAFT = "http://json-schema.org/draft-07/schema#"
_X_KEYS = {"^x-": {"description": "Ignored by Campo: a place for YAML anchors (&name) that "
                                  "fields reuse."}}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of one ``modules/**/*.yaml`` file (module or overlay)."""
    schema = ModuleFile.model_json_schema(ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    module_file = {
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
        "description": "A module file: a module's entities and roles.",
        "patternProperties": _X_KEYS,
    }
    definitions["ModuleFile"] = module_file
    definitions.update(_overlay_definitions(module_file, definitions))
    return {
        "$schema": DRAFT,
        "title": "Campo module",
        "description": "One YAML file under modules/: a module's entities and roles, or (with "
                       "'overlay: true') a site overlay that changes a module. Check a project "
                       "with `campo validate`.",
        "if": {"properties": {"overlay": {"const": True}}, "required": ["overlay"]},
        "then": {"$ref": "#/definitions/OverlayFile"},
        "else": {"$ref": "#/definitions/ModuleFile"},
        "definitions": definitions,
    }


def _overlay_definitions(module_file: dict[str, Any], definitions: dict[str, Any]
                         ) -> dict[str, Any]:
    """OverlayFile, EntityOverlay and FieldOverride, cut from the module file's schema."""
    entity = definitions["EntitySpec"]["properties"]
    field_union = entity["fields"]["patternProperties"][NAME_PATTERN]
    field_props = definitions["StringField"]["properties"]
    field_override = {
        "type": "object", "additionalProperties": False,
        "description": "Changes to an existing field of the base model.",
        "properties": {k: field_props[k] for k in FIELD_OVERRIDES if k in field_props},
    }
    fields = {**entity["fields"], "description": "New fields (with 'type:') or changes to "
              "existing ones (label, help, default, hidden...).",
              "patternProperties": {NAME_PATTERN: {"anyOf": [
                  field_union, {"$ref": "#/definitions/FieldOverride"}]}}}
    entity_overlay = {
        "type": "object", "additionalProperties": False,
        "description": "Changes to an existing entity of the base model: label, help and "
                       "permissions replace the base's; validations are appended (a rule with "
                       "the id of an existing one replaces it).",
        "properties": {k: (fields if k == "fields" else entity[k])
                       for k in ENTITY_OVERRIDES if k in entity},
    }
    props = module_file["properties"]
    overlay_file = {
        "type": "object", "additionalProperties": False, "required": ["overlay", "module"],
        "description": "A site overlay: changes a module of the base project without editing "
                       "its files (campo --overlay DIR).",
        "patternProperties": _X_KEYS,
        "properties": {
            "overlay": {"const": True, "description": "Marks the file as an overlay."},
            "module": {**props["module"], "description": "The module of the base project "
                       "this overlay changes."},
            "entities": {**props["entities"], "description": "New entities (with 'fields:') "
                         "or changes to existing ones.",
                         "patternProperties": {NAME_PATTERN: {"anyOf": [
                             {"$ref": "#/definitions/EntitySpec"},
                             {"$ref": "#/definitions/EntityOverlay"}]}}},
            "roles": props["roles"],
        },
    }
    return {"OverlayFile": overlay_file, "EntityOverlay": entity_overlay,
            "FieldOverride": field_override}
