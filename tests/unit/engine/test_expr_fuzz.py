"""Fuzzing the sandbox: random input never escapes, raises only ExprError, ends quickly.

Three generators feed :func:`check`: arbitrary text, soups of the language's tokens mixed
with Python's dangerous ones, and random expression trees over every operator and
function, evaluated against random records whose values ignore the declared types. An
audit hook (PEP 578) watches for anything that runs code or touches the outside world
(``exec``, ``import``, ``open``, ``os.system``, sockets…) while the language works; the only
event allowed is ``compile``, fired by ``ast.parse``.
"""

from __future__ import annotations

import datetime as dt
import gc
import sys
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.expr import (
    FUNCTIONS,
    Context,
    EvalError,
    ExprError,
    FieldType,
    ObjectType,
    Scope,
    Type,
    compile,
)

LINK = ObjectType("t.link", {"name": FieldType(Type.STRING), "x": FieldType(Type.NUMBER)})
ROWS = ObjectType("t.row", {"x": FieldType(Type.NUMBER), "s": FieldType(Type.STRING),
                            "v": FieldType(Type.ANY)})
SCOPE = Scope(
    record=ObjectType("t.rec", {
        "n": FieldType(Type.NUMBER), "s": FieldType(Type.STRING), "b": FieldType(Type.BOOL),
        "d": FieldType(Type.DATE), "t": FieldType(Type.DATETIME), "v": FieldType(Type.ANY),
        "w": FieldType(Type.ANY), "e": FieldType(Type.STRING, enum=("on", "off")),
        "link": FieldType(Type.NUMBER, target=LINK), "rows": FieldType(Type.ROWS, rows=ROWS),
    }),
    parent=ObjectType("t.parent", {"p": FieldType(Type.NUMBER)}),
    variables={"value": FieldType(Type.ANY)},
)
TIME_BOUND_S = 5.0
_VALUE_TYPES = (type(None), bool, int, float, Decimal, str, dt.date, dt.datetime)


class _Watch:
    """Audit-hook state: whether the language is running, and what fired meanwhile."""

    on = False
    thread = 0
    events: list[tuple[str, str]] = []
    installed = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _Watch.on and event != "compile" and threading.get_ident() == _Watch.thread:
        _Watch.events.append((event, repr(args)[:200]))


@pytest.fixture(scope="module", autouse=True)
def _audit() -> None:
    if not _Watch.installed:  # audit hooks cannot be removed; this one is inert when off
        sys.addaudithook(_hook)
        _Watch.installed = True


def _is_data(v: Any, depth: int = 0) -> bool:
    """Only plain data may come out: values, lists of values, or rows handed in."""
    if isinstance(v, _VALUE_TYPES):
        return True
    if depth > 4:
        return False
    if isinstance(v, (list, tuple, set, frozenset)):
        return all(_is_data(x, depth + 1) for x in v)
    if isinstance(v, Mapping):
        return all(isinstance(k, str) and _is_data(x, depth + 1) for k, x in v.items())
    return False


def check(source: str, contexts: list[Context]) -> None:
    """Compile and evaluate ``source``; only ExprError, only data, no audit events, fast."""
    _Watch.events.clear()
    t0 = time.thread_time()  # CPU time: another process's load does not count
    _Watch.thread = threading.get_ident()
    gc_was_on = gc.isenabled()
    gc.disable()  # a collector finalizer of some unrelated object must not count as ours
    _Watch.on = True
    try:
        try:
            expr = compile(source, SCOPE)
        except ExprError as exc:
            assert 0 <= exc.offset <= len(source)
            assert isinstance(exc.message, str) and exc.message
            return
        for ctx in contexts:
            try:
                value = expr.evaluate(ctx)
            except EvalError as exc:
                assert 0 <= exc.offset <= len(source)
                continue
            assert _is_data(value), (source, value)
    finally:
        _Watch.on = False
        elapsed = time.thread_time() - t0
        if gc_was_on:
            gc.enable()
    assert not _Watch.events, list(_Watch.events)
    assert elapsed < TIME_BOUND_S, (source, elapsed)


# ------------------------------------------------------------------------------ values

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400),
    st.floats(), st.decimals(allow_nan=True, allow_infinity=True, places=None),
    st.text(max_size=30), st.dates(), st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
)
values = st.one_of(scalars, st.lists(scalars, max_size=5),
                   st.dictionaries(st.text(max_size=5), scalars, max_size=3))
rows = st.lists(st.fixed_dictionaries({"x": values, "s": values, "v": values}), max_size=6)


@st.composite
def contexts(draw: st.DrawFn) -> list[Context]:
    """Two contexts: one with well-typed values, one with anything anywhere."""
    typed = Context(
        record={"n": draw(st.one_of(st.none(), st.integers(-10**6, 10**6),
                                    st.floats(-1e6, 1e6))),
                "s": draw(st.one_of(st.none(), st.text(max_size=20))),
                "b": draw(st.one_of(st.none(), st.booleans())),
                "d": draw(st.one_of(st.none(), st.dates())),
                "t": draw(st.one_of(st.none(), st.datetimes(timezones=st.just(dt.UTC)))),
                "v": draw(values), "w": draw(values), "e": draw(st.sampled_from(["on", None])),
                "link": 1},
        links={"link": {"name": "L", "x": 2}},
        children={"rows": [{"x": 1.5, "s": "a", "v": None}, {"x": None, "s": None, "v": 2}]},
        parent={"p": 3}, user={"id": 1, "roles": ["admin"], "sites": ["s1"]},
        variables={"value": draw(values)},
        clock=lambda: dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    names = ["n", "s", "b", "d", "t", "v", "w", "e", "link"]
    wild = Context(
        record={k: draw(values) for k in names},
        links={"link": draw(st.one_of(st.none(), st.fixed_dictionaries(
            {"name": values, "x": values})))},
        children={"rows": draw(rows)}, parent={"p": draw(values)},
        user={"id": draw(values), "roles": draw(values), "sites": draw(values)},
        variables={"value": draw(values)})
    return [typed, wild]


# ------------------------------------------------------------------------------ sources

NAMES = [
    "self.n", "self.s", "self.b", "self.d", "self.t", "self.v", "self.w", "self.e",
    "self.link", "self.link.name", "self.link.x", "self.rows", "self.rows.x", "self.rows.s",
    "self.rows.v", "parent.p", "user.id", "user.roles", "user.sites", "value", "null", "true",
    "false", "'on'", "'off'", "''", "'2024-01-01'", "'x'", "0", "1", "-1", "2.5", "1e308",
    "10", "1000", "9223372036854775807",
]
DANGEROUS = [
    "__import__", "__class__", "__bases__", "__subclasses__", "__globals__", "__builtins__",
    "_", "eval", "exec", "open", "getattr", "compile", "os", "sys", "import", "lambda",
    "globals", "locals", "vars", "type", "object", "self.__dict__", "().__class__",
    "''.join", "breakpoint", "input", "print", "help",
]
OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and",
             "or", "not", "in", "not in", "is", "is not", "if", "else"]
PUNCTUATION = ["(", ")", "[", "]", ",", ".", ":", "{", "}", ":=", "=", "*", "@", "~", "&", "|",
               "^", "<<", ">>", "'", '"', "\\", "#", "\n", ";", "!", "$", "`", "\0", "\t"]
TOKENS = NAMES + DANGEROUS + OPERATORS + PUNCTUATION + [f"{f}(" for f in FUNCTIONS]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join)
glued_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)

BINARY = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or",
          "in", "not in", "is", "is not"]


def _tree(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(BINARY), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["not ", "-", "+"]), children).map(lambda t: f"{t[0]}{t[1]}"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(st.sampled_from(sorted(FUNCTIONS)), st.lists(children, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.lists(children, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
    )


literals = st.one_of(
    st.integers(-(10**25), 10**25).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=8).map(repr),
)
trees = st.recursive(st.one_of(st.sampled_from(NAMES), literals), _tree, max_leaves=30)

# Well-typed trees: most of them compile, so evaluation meets values of every kind.
ARITH = ["+", "-", "*", "/", "//", "%", "**"]
ORDER = ["==", "!=", "<", "<=", ">", ">="]


def _bin(a: st.SearchStrategy[str], ops: list[str],
         b: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(a, st.sampled_from(ops), b).map(lambda t: f"({t[0]} {t[1]} {t[2]})")


def _call(name: str, *args: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*args).map(lambda t: f"{name}({', '.join(t)})")


def _cond(test: st.SearchStrategy[str], a: st.SearchStrategy[str],
          b: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(a, test, b).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})")


num_leaf = st.one_of(st.sampled_from(["self.n", "self.link.x", "parent.p", "0", "1", "-1",
                                      "2.5", "1e308", "self.v", "value", "count(self.rows)",
                                      "sum(self.rows.x)", "user.id"]),
                     st.integers(-(10**18), 10**18).map(str))
text_leaf = st.one_of(st.sampled_from(["self.s", "self.e", "'on'", "''", "self.link.name",
                                       "self.w", "'2024-01-01'", "'12.5'"]),
                      st.text(max_size=6).map(repr))
date_leaf = st.sampled_from(["self.d", "today()", "date('2024-02-29')", "self.v"])
dtm_leaf = st.sampled_from(["self.t", "now()", "datetime('2024-02-29T10:00Z')", "self.w"])
bool_leaf = st.sampled_from(["self.b", "true", "false", "null", "self.v"])
num: st.SearchStrategy[str] = st.deferred(lambda: st.one_of(
    num_leaf, _bin(num, ARITH, num), st.tuples(st.sampled_from(["-", "+"]), num).map("".join),
    st.sampled_from(["abs", "floor", "ceil", "round"]).flatmap(lambda f: _call(f, num)),
    _call("round", num, num), _call("min", num, num), _call("max", num, num),
    _call("len", text), _call("days_between", date, date), _call("hours_between", dtm, dtm),
    _call("year", date), _call("month", dtm), _call("hour", dtm), _call("number", text),
    _call("sum", lst), _call("avg", lst), _call("min", lst), _call("coalesce", num, num),
    _cond(boolean, num, num)))
text: st.SearchStrategy[str] = st.deferred(lambda: st.one_of(
    text_leaf, _bin(text, ["+"], text), _call("lower", text), _call("upper", text),
    _call("trim", text), _call("string", num), _call("concat", text, num, date),
    _call("coalesce", text, text), _cond(boolean, text, text)))
date: st.SearchStrategy[str] = st.deferred(lambda: st.one_of(
    date_leaf, _call("add_days", date, num), _call("date", dtm), _call("date", text),
    _call("max", date, date)))
dtm: st.SearchStrategy[str] = st.deferred(lambda: st.one_of(
    dtm_leaf, _call("add_hours", dtm, num), _call("add_days", dtm, num),
    _call("datetime", date), _call("datetime", text)))
lst = st.one_of(st.sampled_from(["self.rows.x", "self.rows.v", "user.roles", "self.v"]),
                st.lists(num, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"))
boolean: st.SearchStrategy[str] = st.deferred(lambda: st.one_of(
    bool_leaf, _bin(num, ORDER, num), _bin(text, ORDER, text), _bin(date, ORDER, date),
    _bin(dtm, ORDER, dtm), _bin(boolean, ["and", "or"], boolean),
    st.tuples(st.just("not "), boolean).map("".join), _bin(num, ["in", "not in"], lst),
    _bin(text, ["in", "not in"], text), _bin(num, ["is", "is not"], st.just("null")),
    _call("contains", text, text), _call("starts_with", text, text),
    _call("ends_with", text, text), _call("is_blank", text), _call("has_role", text),
    _bin(st.just("self.e"), ["==", "!="], st.sampled_from(["'on'", "'off'"]))))
typed_trees = st.one_of(boolean, num, text, date, dtm)

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(source=st.text(max_size=300))
def test_random_text(source: str) -> None:
    check(source, [Context()])


@FUZZ
@given(source=st.one_of(token_soup, glued_soup), ctxs=contexts())
def test_token_soup(source: str, ctxs: list[Context]) -> None:
    check(source, ctxs)


@FUZZ
@given(source=trees, ctxs=contexts())
def test_random_trees(source: str, ctxs: list[Context]) -> None:
    check(source, ctxs)


@settings(FUZZ, max_examples=400)
@given(source=typed_trees, ctxs=contexts())
def test_random_typed_trees(source: str, ctxs: list[Context]) -> None:
    check(source, ctxs)


@pytest.mark.parametrize("source", [
    "__import__('os').system('touch /tmp/campo_pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "self.__class__.__mro__",
    "self.s.__class__",
    "getattr(self, '__class__')",
    "eval('1+1')",
    "exec('import os')",
    "open('/etc/passwd').read()",
    "(lambda: 1)()",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "user.roles.__len__()",
    "self.link.name.format(self)",
    "'{0.__class__}'.format(self)",
    "f'{self.__class__}'",
    "self.rows.__getitem__(0)",
    "type(self)",
    "globals()",
    "vars()",
    "__builtins__",
    "len.__self__",
    "breakpoint()",
    "[*self.rows]",
    "{**user}",
    "(x := self)",
    "self.rows[0]",
    "user['roles']",
])
def test_known_escapes_are_refused_at_compile_time(source: str) -> None:
    with pytest.raises(ExprError):
        compile(source, SCOPE)
    check(source, [Context()])  # and nothing fires while refusing them


def test_the_audit_hook_sees_what_it_should() -> None:
    _Watch.events.clear()
    _Watch.thread = threading.get_ident()
    _Watch.on = True
    try:
        with open(__file__, encoding="utf-8"):
            pass
    finally:
        _Watch.on = False
    assert any(event == "open" for event, _ in _Watch.events)
    _Watch.events.clear()
