"""JSON Schema of the YAML language, for editor completion (``campo schema``)."""

from __future__ import annotations

from typing import Any

from .model import ModuleFile


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one ``modules/**/*.yaml`` file."""
    schema = ModuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Campo module"
    return schema
