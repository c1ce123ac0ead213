"""Load a project with every check: the metamodel's, the expressions' and the scopes'.

``metamodel`` cannot import the engine, so the expression checks run here, after
:func:`metamodel.project.collect_project` has built what is sound; all problems of every
language are reported together, sorted by file and line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.settings import Settings
from engine.urls import BUILTIN_SEGMENTS
from metamodel import DefinitionError, Model
from metamodel.errors import Problems
from metamodel.loader import collect
from metamodel.project import Project, collect_project

from .project import CompiledProject, compile_project, register

log = logging.getLogger(__name__)


def collect_compiled(root: Path | str = ".", overlays: Sequence[Path | str] = (), *,
                     tags: bool = True, params: Mapping[str, Any] | None = None,
                     environ: Mapping[str, str] | None = None
                     ) -> tuple[CompiledProject, Problems]:
    """Load and compile a project, returning what is sound plus every problem.

    :param tags: also load ``tags/`` and ``screens/layouts/`` and check them against the
        modules (``campo validate``); False for the commands that need only the modules
    """
    if tags:
        project, problems = collect_project(root, overlays, reserved_urls=BUILTIN_SEGMENTS,
                                            params=params, environ=environ)
    else:
        model, problems = collect(root, overlays, BUILTIN_SEGMENTS)
        project = Project(str(root), model, None)
    return compile_project(project, problems), problems


def load_compiled(root: Path | str = ".", overlays: Sequence[Path | str] = (), *,
                  tags: bool = True, params: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> CompiledProject:
    """Load, check and compile a project; raise ``DefinitionError`` listing every problem
    of every language (modules, expressions, scopes, tags, layouts, and the checks between
    them)."""
    cp, problems = collect_compiled(root, overlays, tags=tags, params=params, environ=environ)
    problems.raise_if_any()
    register(cp)
    log.debug("loaded %s: %d entities, %d with rules, %d tags", root, len(cp.model.entities),
              sum(1 for r in cp.rules.entities.values() if r.computed or r.validations
                  or r.guards or r.defaults or r.visible_if or r.required_if or r.readonly_if),
              len(cp.tags.tags) if cp.tags else 0)
    return cp


def load_project(root: Path | str = ".", overlays: Sequence[Path | str] = ()) -> Model:
    """The modules of a project, checked and compiled (not its tags): the model.

    Raises ``DefinitionError`` listing every problem; the compiled rules and scopes are
    found with :func:`engine.rules.rules_for` and :func:`engine.rules.scopes_for`.
    """
    return load_compiled(root, overlays, tags=False).model


def load_model(settings: Settings) -> Model:
    """Load the project's modules (plus overlays), compile its expressions, or raise
    :class:`~engine.errors.UserError` with every problem (what the commands call)."""
    try:
        return load_project(settings.project, settings.overlays)
    except DefinitionError as err:
        raise UserError(err.report()) from None


def load_whole_project(settings: Settings, environ: Mapping[str, str] | None = None
                    ) -> CompiledProject:
    """Every language of the project (modules, tags, layouts) checked together, or
    :class:`~engine.errors.UserError` listing every problem (``campo validate``)."""
    try:
        return load_compiled(settings.project, settings.overlays, environ=environ)
    except DefinitionError as err:
        raise UserError(err.report()) from None
