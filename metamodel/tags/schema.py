"""JSON Schema of a ``tags/**/*.yaml`` file, for editor completion (``campo tags schema``)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from .spec import ScanClassesFile, SiteFile, TemplateFile


def tags_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12): a scan-classes, template or site file.

    A site value written as ``${parameter}`` is checked by the loader, not by the schema:
    editors may flag ``port: ${modbus_port}`` as not an integer.
    """
    schema = TypeAdapter(ScanClassesFile | TemplateFile | SiteFile).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Campo tags file"
    return schema
