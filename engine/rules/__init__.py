"""The load-time bridge between the YAML language and the expression language.

``metamodel`` describes where expressions are written (``Entity.expressions()``) but
cannot import ``engine``; this package compiles every one of them against the model's
types when the model loads (every command loads it through :func:`load_model`), reports
mistakes at the file:line:column of the offending character, and keeps the compiled
expressions for the runtime in a :class:`CompiledProject` (:func:`rules_for`,
:func:`scopes_for`): the metamodel's objects are never written into.
"""

from __future__ import annotations

from .compiled import (
           EntityRules,
           Rules,
           compile_entity,
           compile_rules,
           scope_with_virtuals,
)
from .loading import load_compiled, load_model, load_project, load_whole_project
from .locate import expression_location
from .project import CompiledProject, capabilities_for, compiled_for, rules_for, scopes_for

__all__ = ["CompiledProject", "EntityRules", "Rules", "capabilities_for", "compile_entity",
           "compile_rules", "compiled_for", "expression_location", "load_compiled",
           "load_model", "load_project", "load_whole_project", "rules_for",
           "scope_with_virtuals", "scopes_for"]
