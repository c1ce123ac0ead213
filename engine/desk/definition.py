"""``GET /api/desk/definition/<module>/<entity>``: the effective definition, as ``campo show``.

For consultants: the merged definition (base and site overlays) with the file, line and
column each part came from. Needs read permission on the entity; fields hidden from the
caller are left out of both the text and the JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Response
from flask_smorest import Blueprint

from engine.api.errors import json_response
from engine.rules.show import show_entity, show_json

from .context import ctx, hidden_fields, readable

if TYPE_CHECKING:
    from .plugin import DeskPlugin


def register(blp: Blueprint, plugin: DeskPlugin) -> None:
    """Add the definition route."""

    @blp.route("/definition/<module>/<entity>")
    @blp.doc(summary="Effective definition of an entity and where each part came from")
    def definition(module: str, entity: str) -> Response:
        c = ctx()
        qual = f"{module}.{entity}"
        res = readable(c, qual)
        hidden = hidden_fields(c, res)
        out = show_json(c.model, qual)
        fields = out["definition"].get("fields") or {}
        out["definition"]["fields"] = {k: v for k, v in fields.items() if k not in hidden}
        out["sources"] = {k: v for k, v in out["sources"].items()
                          if not any(k == f"fields.{h}" or k.startswith(f"fields.{h}.")
                                     for h in hidden)}
        text = show_entity(c.model, qual)
        if hidden:
            text = "\n".join(line for line in text.splitlines()
                             if not any(line.strip().startswith(f"{h}:") for h in hidden))
        out["text"] = text
        return json_response(out)
