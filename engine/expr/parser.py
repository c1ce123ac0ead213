"""Source text -> a checked Python syntax tree (phase 1 of compiling an expression).

The grammar is Python's expression grammar, parsed by the standard library's
:func:`ast.parse` in ``eval`` mode, which builds a tree and never runs code. The text is
wrapped in parentheses so an expression may span several lines (a YAML ``|`` block).
Then the tree is walked once, iteratively: every node type must be on a short whitelist
(literals, names, attribute reads, calls of named functions, operators, comparisons,
``x if c else y``, lists), names may not start with ``_``, and the tree's size and depth are
bounded. Anything else is an :class:`~engine.expr.errors.ExprError` at the offending
character.
"""

from __future__ import annotations

import ast
import io
import tokenize

from .errors import ExprError
from .scope import Limits

ALLOWED: frozenset[type[ast.AST]] = frozenset({
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Is, ast.IsNot, ast.IfExp, ast.Call, ast.Name, ast.Load, ast.Attribute, ast.Constant,
    ast.List, ast.Tuple,
})

_REFUSED: dict[type[ast.AST], tuple[str, str | None]] = {
    ast.Lambda: ("lambda functions are not allowed", None),
    ast.Subscript: ("indexing with [...] is not allowed",
                    "read fields as self.field; aggregate child rows with sum(), count()..."),
    ast.Slice: ("slices are not allowed", None),
    ast.ListComp: ("comprehensions are not allowed", "use sum(), min(), max() or count()"),
    ast.SetComp: ("comprehensions are not allowed", "use sum(), min(), max() or count()"),
    ast.DictComp: ("comprehensions are not allowed", "use sum(), min(), max() or count()"),
    ast.GeneratorExp: ("comprehensions are not allowed", "use sum(), min(), max() or count()"),
    ast.Dict: ("dictionary literals are not allowed", "write a list: [a, b]"),
    ast.Set: ("set literals are not allowed", "write a list: [a, b]"),
    ast.JoinedStr: ("f-strings are not allowed", "join text with + or concat(a, b)"),
    ast.FormattedValue: ("f-strings are not allowed", "join text with + or concat(a, b)"),
    ast.NamedExpr: ("assignment (:=) is not allowed", "compare with =="),
    ast.Starred: ("* unpacking is not allowed", None),
    ast.Await: ("await is not allowed", None),
    ast.Yield: ("yield is not allowed", None),
    ast.YieldFrom: ("yield is not allowed", None),
    ast.BitAnd: ("operator '&' is not supported", "use 'and'"),
    ast.BitOr: ("operator '|' is not supported", "use 'or'"),
    ast.BitXor: ("operator '^' is not supported", "use ** for powers"),
    ast.Invert: ("operator '~' is not supported", "use 'not'"),
    ast.LShift: ("operator '<<' is not supported", None),
    ast.RShift: ("operator '>>' is not supported", None),
    ast.MatMult: ("operator '@' is not supported", None),
}

_SYMBOLS: dict[type[ast.AST], str] = {
    ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
    ast.MatMult: "@",
}

_LAYOUT = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                     tokenize.DEDENT, tokenize.ENDMARKER})

_SYNTAX_HINTS = (
    ("&&", "use 'and'"), ("||", "use 'or'"), ("!", "use 'not' (and != for 'not equal')"),
    ("=", "compare with =="),
)


class Source:
    """An expression's text and the map from syntax-tree positions to character offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        # "\r\n" -> " \n" keeps every offset; a lone "\r" is a line break to Python too.
        self.normal = text.replace("\r\n", " \n").replace("\r", "\n")
        self.wrapped = "(" + self.normal + "\n)"
        self._lines = self.wrapped.split("\n")
        self._starts = []
        pos = 0
        for line in self._lines:
            self._starts.append(pos)
            pos += len(line) + 1

    def offset(self, lineno: int, col_bytes: int) -> int:
        """Offset into the user's text of a tree position (1-based line, UTF-8 column)."""
        line = self._lines[min(lineno, len(self._lines)) - 1]
        chars = len(line.encode("utf-8")[:col_bytes].decode("utf-8", "ignore"))
        return self.clamp(self._starts[min(lineno, len(self._lines)) - 1] + chars - 1)

    def clamp(self, offset: int) -> int:
        return max(0, min(offset, len(self.text)))

    def start(self, node: ast.AST) -> int:
        """Offset where ``node`` starts."""
        return self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        """Offset just after ``node``."""
        end_line = getattr(node, "end_lineno", None) or node.lineno  # type: ignore[attr-defined]
        end_col = getattr(node, "end_col_offset", None)
        if end_col is None:
            return self.start(node)
        return self.offset(end_line, end_col)

    def find(self, symbol: str, lo: int, hi: int) -> int:
        """Offset of ``symbol`` between ``lo`` and ``hi`` (an operator's place), else ``lo``."""
        at = self.normal.find(symbol, lo, max(lo, hi))
        return at if at >= 0 else lo


def parse(text: str, limits: Limits) -> tuple[ast.expr, Source]:
    """Parse and check ``text``; return the expression tree and its :class:`Source`."""
    if not isinstance(text, str):
        raise ExprError(f"an expression must be text, not {type(text).__name__}", 0)
    if len(text) > limits.max_source:
        raise ExprError(f"expression is too long ({len(text)} characters; the limit is "
                        f"{limits.max_source})", limits.max_source,
                        "split it, or move the logic into a computed field")
    if not text.strip():
        raise ExprError("expression is empty", 0)
    if "\0" in text:
        raise ExprError("invalid character (NUL) in expression", text.index("\0"))
    src = Source(text)
    _check_brackets(src)
    try:
        tree = ast.parse(src.wrapped, "<expression>", mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(exc, src) from None
    except (RecursionError, MemoryError):
        raise ExprError("expression is too deeply nested", 0,
                        f"at most {limits.max_depth} levels") from None
    except ValueError as exc:  # defensive: some versions raise ValueError for bad source
        raise ExprError(f"invalid expression: {exc}", 0) from None
    body = tree.body
    if body.lineno == 1 and body.col_offset == 0:  # a ')' closed our wrapper: "a) or (b"
        raise ExprError("unmatched ')'", 0)
    _check_tree(body, src, limits)
    return body, src


def _check_brackets(src: Source) -> None:
    """Report a closing bracket without an opening one at its own place."""
    depth = 0
    significant = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src.normal).readline):
            if tok.type not in _LAYOUT:
                significant += 1
            if tok.type != tokenize.OP:
                continue
            if tok.string in "([{":
                depth += 1
            elif tok.string in ")]}":
                depth -= 1
                if depth < 0:
                    row, col = tok.start
                    lines = src.normal.split("\n")
                    off = sum(len(x) + 1 for x in lines[: row - 1]) + col
                    raise ExprError(f"unmatched '{tok.string}'", src.clamp(off))
    except (tokenize.TokenError, SyntaxError):
        return  # ast.parse reports these with a better message
    if not significant:
        raise ExprError("expression is empty (only comments)", 0)


def _syntax_error(exc: SyntaxError, src: Source) -> ExprError:
    msg = exc.msg or "invalid syntax"
    offset = len(src.text)
    if exc.lineno is not None and exc.offset is not None:
        line = src._lines[min(exc.lineno, len(src._lines)) - 1] if exc.lineno >= 1 else ""
        col = max(0, min(exc.offset - 1, len(line)))
        offset = src.clamp(src._starts[min(max(exc.lineno, 1), len(src._lines)) - 1] + col - 1)
    if offset >= len(src.text.rstrip()) and msg.startswith("invalid syntax"):
        msg = "the expression ends too early"
    hint = next((h for sym, h in _SYNTAX_HINTS if sym in src.text), None)
    if "'('" in msg or "never closed" in msg:
        hint = "every '(' needs a ')'"
    return ExprError(msg, offset, hint)


def _check_tree(root: ast.expr, src: Source, limits: Limits) -> None:
    """Whitelist node types, refuse '_' names, bound size and depth (iteratively)."""
    count = 0
    stack: list[tuple[ast.AST, int, int]] = [(root, 1, 0)]
    while stack:
        node, depth, near = stack.pop()
        kind = type(node)
        if kind is ast.Load:
            continue
        if isinstance(node, ast.expr):  # operators and contexts are not counted
            count += 1
        where = src.start(node) if hasattr(node, "lineno") else near
        if count > limits.max_nodes:
            raise ExprError(f"expression is too large (more than {limits.max_nodes} parts)",
                            where, "split it, or move the logic into a computed field")
        if depth > limits.max_depth:
            raise ExprError(f"expression is too deeply nested (more than {limits.max_depth} "
                            "levels)", where)
        if kind not in ALLOWED:
            msg, hint = _REFUSED.get(kind, (f"'{_describe(node)}' is not allowed in an "
                                            "expression", None))
            raise ExprError(msg, where, hint)
        if kind is ast.Name and node.id.startswith("_"):  # type: ignore[attr-defined]
            raise ExprError(f"names starting with '_' are not allowed ('{node.id}')",  # type: ignore[attr-defined]
                            where)
        if kind is ast.Attribute and node.attr.startswith("_"):  # type: ignore[attr-defined]
            attr = node.attr  # type: ignore[attr-defined]
            raise ExprError(f"names starting with '_' are not allowed ('{attr}')",
                            src.end(node) - len(attr))
        if kind is ast.Call:
            call: ast.Call = node  # type: ignore[assignment]
            if call.keywords:
                kw = call.keywords[0]
                raise ExprError("keyword arguments are not allowed",
                                src.start(kw) if hasattr(kw, "lineno") else where,
                                "pass arguments by position: round(x, 2)")
        op_at = where
        if isinstance(node, ast.BinOp):  # operators carry no position: find the symbol
            symbol = _SYMBOLS.get(type(node.op), "")
            op_at = src.find(symbol, src.end(node.left), src.start(node.right))
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1, op_at))


def _describe(node: ast.AST) -> str:
    return type(node).__name__.lower()
