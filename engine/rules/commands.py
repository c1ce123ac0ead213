"""``campo show``: print an entity's effective definition (after overlays) with origins."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from metamodel.errors import expected_one_of

from ..errors import UserError
from ..options import add_project_option, settings_from
from .loading import load_model
from .show import show_entity, show_json

log = logging.getLogger(__name__)


def _show(args: argparse.Namespace) -> int:
    model = load_model(settings_from(args))
    target: str = args.target
    if "." not in target:
        mod = model.modules.get(target)
        if mod is None:
            raise UserError(f"unknown module '{target}'\n  hint: "
                            + expected_one_of(target, model.modules))
        for name, ent in mod.entities.items():
            print(f"{mod.name}.{name}  {ent.location}")
        return 0
    if target not in model.entities:
        raise UserError(f"unknown entity '{target}'\n  hint: "
                        + expected_one_of(target, model.entities))
    if args.json:
        print(json.dumps(show_json(model, target), indent=2, ensure_ascii=False))
    else:
        print(show_entity(model, target), end="")
    return 0


def register(sub: Any) -> None:
    """Add ``campo show``."""
    p = sub.add_parser("show", help="print an entity's effective definition (after overlays) "
                                    "and where each part came from")
    p.add_argument("target", metavar="MODULE.ENTITY",
                   help="an entity (module.entity), or a module to list its entities")
    p.add_argument("--json", action="store_true",
                   help="print JSON: the definition and a map of key -> file:line:col")
    add_project_option(p)
    p.set_defaults(handler=_show)
