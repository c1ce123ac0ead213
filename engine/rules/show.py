"""``campo show``: an entity's effective definition, and where each part came from.

With overlays, an entity is the sum of its base file and the overlay files that change
it. :func:`show_entity` prints the merged definition as YAML, one line per field, rule,
state and transition, each followed by a ``# file:line:col`` comment; a part an overlay
changed names the overlay's location of each changed key.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from metamodel import Model
from metamodel.errors import Location
from metamodel.model import Entity

#: keys whose entries get a line each (the others are printed on one line)
_EXPAND = {("fields",), ("validations",), ("workflow",), ("workflow", "states"),
           ("workflow", "transitions")}
_COMMENT_COLUMN = 64


def _flow(value: Any) -> str:
    """One-line YAML for ``value`` (flow style)."""
    text = str(yaml.safe_dump(value, default_flow_style=True, width=math.inf,
                              allow_unicode=True, sort_keys=False)).strip()
    return text[:-4] if text.endswith("\n...") else text.removesuffix("...").strip()


def _line(left: str, comment: str) -> str:
    return f"{left.ljust(_COMMENT_COLUMN)}  # {comment}" if comment else left


def _origin(ent: Entity, path: tuple[Any, ...], anchor: Location) -> str:
    """``file:line:col`` of ``path``, plus the places inside it that came from other files."""
    doc = ent.doc
    base = ("entities", ent.name) + path
    others: list[str] = []
    for k, loc in sorted(doc.keys.items(), key=lambda kv: (kv[1].file, kv[1].line)):
        if len(k) > len(base) and k[:len(base)] == base and loc.file != anchor.file:
            rel = ".".join(str(p) for p in k[len(base):])
            if not any(rel.startswith(o.split(" ")[0] + ".") for o in others):
                others.append(f"{rel} {loc}")
    return str(anchor) + "".join(f"; {o}" for o in others)


def _emit(ent: Entity, value: Any, path: tuple[Any, ...], indent: int, out: list[str]) -> None:
    pad = "  " * indent
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, sub in items:
        p = path + (key,)
        loc = ent.where_key(*p) if isinstance(value, dict) else ent.where(*p)
        head = f"{pad}{key}:" if isinstance(value, dict) else f"{pad}-"
        if (isinstance(value, dict) and tuple(str(x) for x in p) in _EXPAND
                and isinstance(sub, (dict, list)) and sub):
            out.append(_line(head, str(loc)))
            _emit(ent, sub, p, indent + 1, out)
        else:
            out.append(_line(f"{head} {_flow(sub)}", _origin(ent, p, loc)))


def show_entity(model: Model, qualname: str) -> str:
    """The effective YAML of entity ``module.entity`` with the origin of every part."""
    ent = model.entity(qualname)
    raw = ent.doc.value["entities"][ent.name]
    out = [f"# {qualname} (table {ent.table})"]
    if model.overlays:
        out.append("# overlays: " + ", ".join(model.overlays))
    out.append(f"module: {ent.module}")
    out.append("entities:")
    out.append(_line(f"  {ent.name}:", str(ent.location)))
    _emit(ent, raw, (), 2, out)
    out.extend(_resolved(ent))
    return "\n".join(out) + "\n"


def _resolved(ent: Entity) -> list[str]:
    out = ["# resolved:"]
    if ent.computed_order:
        out.append("#   computed (in order): " + ", ".join(ent.computed_order))
    fetched = ent.fetched_fields()
    if fetched:
        out.append("#   fetched: " + ", ".join(f"{k} <- {a}.{b}" for k, (a, b) in
                                               fetched.items()))
    derived = sorted(ent.derived_fields())
    if derived:
        out.append("#   written by the server only: " + ", ".join(derived))
    if ent.series is not None:
        out.append(f"#   series: {ent.series.template} fills {ent.series.field}")
    wf = ent.workflow
    if wf is not None:
        out.append(f"#   workflow on {wf.field}: initial {wf.initial}; "
                   + "; ".join(f"{t.action}: {'|'.join(t.sources())} -> {t.to}"
                               for t in wf.transitions))
    perms = ", ".join(f"{r}: {'/'.join(sorted(a))}" for r, a in sorted(ent.permissions.items())
                      if a)
    out.append(f"#   permissions: {perms}")
    return out


def show_json(model: Model, qualname: str) -> dict[str, Any]:
    """The effective definition and a map of dotted key path -> ``file:line:col``."""
    ent = model.entity(qualname)
    base = ("entities", ent.name)
    sources = {".".join(str(p) for p in k[2:]): str(loc)
               for k, loc in ent.doc.keys.items() if k[:2] == base and len(k) > 2}
    raw = ent.doc.value["entities"][ent.name]
    return {"entity": qualname, "table": ent.table, "location": str(ent.location),
            "overlays": list(model.overlays), "definition": _plain(raw), "sources": sources}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
