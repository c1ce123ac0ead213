"""Campo's safe expression language: validations, computed fields, rules, alarm conditions.

Python-like expressions (``self.status == 'producing' and self.depth_m > 1000``) are
parsed with :func:`ast.parse` (which never runs code), checked against a whitelist and a
:class:`Scope` of declared names and types, and compiled once into nested closures. No
``eval``, ``exec`` or code objects; no attribute access beyond the model. See
``docs/expressions.md`` for the language.

Example::

    from engine.expr import Context, Type, compile, scope_for_entity
    scope = scope_for_entity(model, "showcase.asset")
    rule = compile("self.kind == 'well' and self.depth_m > 1000", scope, expect=Type.BOOL)
    rule.evaluate(Context(record=row))     # True or False
"""

from __future__ import annotations

from .compiler import Refs
from .entities import record_type, scope_for_entity
from .errors import EvalError, ExprError, location_in_yaml
from .expression import Expression, compile
from .functions import FUNCTIONS
from .mathfunctions import _pseudo_random  # noqa: F401  (registers exp, ln, sqrt, pseudo_random)
from .runtime import Context
from .scope import DEFAULT_LIMITS, DEFAULT_USER, FieldType, Limits, ObjectType, Scope, Type

__all__ = [
    "DEFAULT_LIMITS", "DEFAULT_USER", "FUNCTIONS", "Context", "EvalError", "ExprError",
    "Expression", "FieldType", "Limits", "ObjectType", "Refs", "Scope", "Type", "compile",
    "location_in_yaml", "record_type", "scope_for_entity",
]
