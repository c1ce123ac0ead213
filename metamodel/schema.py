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

from .model import ModuleFile

DRAFT = "http://json-schema.org/draft-07/schema#"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of one ``modules/**/*.yaml`` file."""
    schema = ModuleFile.model_json_schema(ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    return {
        "$schema": DRAFT,
        "title": "Campo module",
        "description": "One YAML file under modules/: a module's entities and roles. "
                       "Check a project with `campo validate`.",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
        "patternProperties": {"^x-": {"description": "Ignored by Campo: a place for YAML "
                                                     "anchors (&name) that fields reuse."}},
        "definitions": definitions,
    }
