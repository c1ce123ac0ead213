"""The entry point: :func:`compile` text once, :meth:`Expression.evaluate` it many times.

Compiling runs three phases: parse and whitelist (:mod:`engine.expr.parser`), type-check
and build closures (:mod:`engine.expr.compiler`), then check the result type the caller
expects. Evaluating calls the root closure with a :class:`~engine.expr.runtime.Context`.

Example::

    from engine.expr import Context, FieldType, ObjectType, Scope, Type, compile
    scope = Scope(record=ObjectType("demo.tank", {"level_m": FieldType(Type.NUMBER)}))
    rule = compile("self.level_m > 2.5", scope, expect=Type.BOOL)
    rule.evaluate(Context(record={"level_m": 3.1}))     # True
"""

from __future__ import annotations

from typing import Any

from .compiler import Compiler, Refs
from .errors import EvalError, ExprError
from .nodes import a_type
from .parser import parse
from .runtime import Context, Fault
from .scope import DEFAULT_LIMITS, Limits, Scope, Type

# Errors a value handed in by the caller could still provoke inside a closure (an
# unhashable list in `in`, a signalling Decimal…): reported as the language's own error.
_RUNTIME_ERRORS = (TypeError, ValueError, ArithmeticError, AttributeError, LookupError,
                   RecursionError)


class Expression:
    """A compiled expression: its source, static type, references, and a fast evaluator."""

    __slots__ = ("source", "type", "elem", "refs", "constant", "_fn")

    def __init__(self, source: str, type_: Type, elem: Type, refs: Refs, fn: Any,
                 constant: bool) -> None:
        self.source = source
        #: the static type of the result (bool results are always True/False, never null)
        self.type = type_
        #: the element type when ``type`` is LIST
        self.elem = elem
        #: what the expression reads (load these before evaluating)
        self.refs = refs
        #: the value does not depend on the context
        self.constant = constant
        self._fn = fn

    def evaluate(self, ctx: Context) -> Any:
        """The expression's value in ``ctx``; raises only :class:`EvalError`."""
        try:
            return self._fn(ctx)
        except ExprError:
            raise
        except Fault as exc:  # defensive: every closure should have located it already
            raise EvalError(str(exc), 0) from None
        except _RUNTIME_ERRORS as exc:
            raise EvalError(f"cannot evaluate: {type(exc).__name__}: {exc}", 0) from None

    def __repr__(self) -> str:
        return f"<Expression {self.source!r}: {self.type}>"


def compile(source: str, scope: Scope, *, expect: Type | None = None,  # noqa: A001
            limits: Limits = DEFAULT_LIMITS) -> Expression:
    """Parse, check and compile ``source`` against ``scope``; raise :class:`ExprError`.

    :param expect: the result type the caller needs (``Type.BOOL`` for a rule). A result
        of type ``any`` is accepted: for ``Type.BOOL`` it is converted at run time (null is
        false); otherwise ``Expression.type`` stays ``any`` and the caller checks values.
    """
    tree, src = parse(source, limits)
    comp = Compiler(src, scope, limits)
    try:
        node = comp.compile(tree)
    except RecursionError:
        raise ExprError("expression is too deeply nested", 0) from None
    if expect is not None and node.type not in (expect, Type.ANY):
        hint = None
        if expect is Type.BOOL and node.type is not Type.NULL:
            hint = "a rule must be true or false: compare the value, e.g. x > 0 or x != null"
        raise ExprError(f"expected {a_type(expect)} expression, but this is "
                        f"{a_type(node.type)}", 0, hint)
    fn = node.fn
    result_type = Type.BOOL if expect is Type.BOOL else node.type
    if result_type is Type.BOOL and not node.boolean:
        inner = fn

        def fn(c: Context) -> bool:
            return bool(inner(c))
    return Expression(source, result_type, node.elem, comp.refs.freeze(), fn, node.const)
