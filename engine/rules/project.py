"""The engine's compiled project: the language objects plus what the engine builds from them.

The metamodel's objects (:class:`metamodel.project.Project`, :class:`metamodel.Model`) stay
immutable: the engine never writes into them. It compiles a :class:`CompiledProject` once
per load (entity rules, row scopes; tag and alarm rules join it when they exist) and keeps
it in a registry keyed by the model object, so that code holding only the model (the API's
rules, the auth hooks) finds what was compiled for it (:func:`compiled_for`); the registry
keeps the most recently used few, and a model it no longer knows is compiled again.

Example::

    from engine.rules import load_compiled
    cp = load_compiled(".")                        # DefinitionError lists every problem
    cp.rules.entity("maintenance.work_order").computed
    cp.scopes.get("showcase.asset")
    cp.tags                                        # the tag map, or None
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from metamodel import Model
from metamodel.errors import Problems
from metamodel.project import Project
from metamodel.tags import TagModel

from .capabilities import Capabilities, check_capabilities
from .compiled import Rules, compile_rules
from .scopes import RowScope, check_scopes


@dataclass(frozen=True)
class CompiledProject:
    """A project and the engine's compiled structures for it."""

    project: Project
    #: the compiled expressions of every entity (computed, defaults, rules, guards)
    rules: Rules
    #: qualified entity -> its compiled row scope (entities with ``scope:`` only)
    scopes: dict[str, RowScope]
    #: compiled allocations and export templates
    capabilities: Capabilities

    @property
    def model(self) -> Model:
        return self.project.model

    @property
    def tags(self) -> TagModel | None:
        return self.project.tags


def compile_project(project: Project, problems: Problems) -> CompiledProject:
    """Compile the expressions and scopes of ``project`` (problems collected, not raised)."""
    rules = compile_rules(project.model, problems)
    scopes = check_scopes(project.model, problems)
    capabilities = check_capabilities(project.model, problems)
    return CompiledProject(project, rules, scopes, capabilities)


# --------------------------------------------------------------------------- registry

#: how many compiled projects are kept (a process serves one; tests build many)
KEEP = 32
_lock = threading.Lock()
#: id(model) -> its compiled project, most recently used last; an entry holds its model, so
#: the id cannot be reused while the entry exists
_compiled: OrderedDict[int, CompiledProject] = OrderedDict()


def register(cp: CompiledProject) -> None:
    """Remember ``cp`` for its model (the least recently used beyond :data:`KEEP` go)."""
    with _lock:
        _compiled[id(cp.model)] = cp
        _compiled.move_to_end(id(cp.model))
        while len(_compiled) > KEEP:
            _compiled.popitem(last=False)


def compiled_for(model: Model) -> CompiledProject:
    """The compiled project of ``model``: the one registered by :func:`load_compiled`, or
    compiled now (a model loaded by :func:`metamodel.load` directly, as tests do).

    Raises :class:`metamodel.DefinitionError` when an expression or scope does not compile
    (a model from :func:`load_compiled` never does).
    """
    with _lock:
        cp = _compiled.get(id(model))
        if cp is not None and cp.model is model:
            _compiled.move_to_end(id(model))
            return cp
    problems = Problems()
    cp = compile_project(Project(model.root, model, None), problems)
    problems.raise_if_any()
    register(cp)
    return cp


def rules_for(model: Model) -> Rules:
    """The compiled rules of a loaded model (see :func:`compiled_for`)."""
    return compiled_for(model).rules


def scopes_for(model: Model) -> dict[str, RowScope]:
    """The compiled row scopes of a model by qualified entity name (see :func:`compiled_for`)."""
    return compiled_for(model).scopes


def capabilities_for(model: Model) -> Capabilities:
    """The compiled allocations and export templates of ``model`` (see :func:`compiled_for`)."""
    return compiled_for(model).capabilities
