"""The load-time bridge between the YAML language and the expression language.

``metamodel`` describes where expressions are written (``Entity.expressions()``) but
cannot import ``engine``; this package compiles every one of them against the model's
types when the model loads (every command loads it through :func:`load_model`), reports
mistakes at the file:line:column of the offending character, and keeps the compiled
expressions for the runtime (:func:`rules_for`).
"""

from __future__ import annotations

from .compiled import (
           EntityRules,
           Rules,
           compile_entity,
           compile_rules,
           rules_for,
           scope_with_virtuals,
)
from .loading import load_model, load_project
from .locate import expression_location

__all__ = ["EntityRules", "Rules", "compile_entity", "compile_rules", "expression_location",
           "load_model", "load_project", "rules_for", "scope_with_virtuals"]
