"""Functions for generated and engineering values: ``exp``, ``ln``, ``sqrt`` and the
deterministic ``pseudo_random`` (demo and test data that is the same on every run).
Registered on import, like :mod:`engine.expr.functions`."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from .functions import function, scalar, text_of
from .nodes import NUMERIC, Call, Node
from .runtime import Fault, is_number
from .scope import Type


def _unary(signature: str, summary: str, op: Any) -> None:
    @function(signature, summary, 1, 1)
    def build(call: Call) -> Node:
        call.need(call.args[0], NUMERIC, "a number")

        def impl(v: Any) -> Any:
            if not is_number(v):
                raise Fault(f"expected a number, got {v!r}")
            try:
                return op(float(v))
            except (OverflowError, ValueError):
                return None                      # like division by zero: null, not an error
        return scalar(call, impl, Type.NUMBER)


_unary("exp(x)", "e raised to x", math.exp)
_unary("ln(x)", "the natural logarithm of x (null for x <= 0)", math.log)
_unary("sqrt(x)", "the square root of x (null for x < 0)", math.sqrt)


@function("pseudo_random(key, ...)", "a number in [0, 1) fixed by the arguments: the same "
          "arguments always give the same number (demo and test data)", 1, None)
def _pseudo_random(call: Call) -> Node:
    def impl(*values: Any) -> float:
        text = "\x1f".join(text_of(v) for v in values)
        digest = hashlib.sha256(text.encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64
    return scalar(call, impl, Type.NUMBER)
