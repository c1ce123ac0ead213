"""Load a project with every check, the metamodel's and the expressions'.

``metamodel`` cannot import the engine, so the expression checks run here, after
:func:`metamodel.loader.collect` has built what is sound; all problems of both are
reported together, sorted by file and line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from engine.errors import UserError
from engine.settings import Settings
from engine.urls import BUILTIN_SEGMENTS
from metamodel import DefinitionError, Model
from metamodel.loader import collect

from .capabilities import check_capabilities, remember_capabilities
from .compiled import compile_rules, remember
from .scopes import check_scopes, remember_scopes

log = logging.getLogger(__name__)


def load_project(root: Path | str = ".", overlays: Sequence[Path | str] = ()) -> Model:
    """Load, check and compile a project; raise ``DefinitionError`` listing every problem.

    The compiled expressions are cached on the model (:func:`engine.rules.rules_for`).
    """
    model, problems = collect(root, overlays, BUILTIN_SEGMENTS)
    rules = compile_rules(model, problems)
    scopes = check_scopes(model, problems)
    capabilities = check_capabilities(model, problems)
    problems.raise_if_any()
    remember(model, rules)
    remember_scopes(model, scopes)
    remember_capabilities(model, capabilities)
    log.debug("loaded %s: %d entities, %d with rules", root, len(model.entities),
              sum(1 for r in rules.entities.values() if r.computed or r.validations
                  or r.guards or r.defaults or r.visible_if or r.required_if or r.readonly_if))
    return model


def load_model(settings: Settings) -> Model:
    """Load the project's YAML (plus overlays), compile its expressions, or raise
    :class:`~engine.errors.UserError` with every problem (what the commands call)."""
    try:
        return load_project(settings.project, settings.overlays)
    except DefinitionError as err:
        raise UserError(err.report()) from None
