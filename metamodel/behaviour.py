"""Resolved views of an entity's behaviour keys: naming series, workflow, expressions.

The pydantic specs in :mod:`metamodel.spec` hold what the YAML says; the classes here are
what the engine reads at run time (``Entity.series``, ``Entity.workflow``,
``Entity.expressions()``). They are built from a spec the loader has already checked, so
they never report problems themselves; :mod:`metamodel.behaviourchecks` does that.

Expressions are not parsed here (the language lives in ``engine.expr``); only their
``self.<field>`` references are scanned, to order computed fields by dependency.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .spec import Labels, TransitionSpec, WorkflowSpec, labels_of

# --------------------------------------------------------------------------- naming series

#: ``{YYYY}``, ``{#####}``, ``{field}`` (anything between braces is one token)
_TOKEN = re.compile(r"\{([^{}]*)\}")
DATE_TOKENS: dict[str, int] = {"YYYY": 4, "YY": 2, "MM": 2, "DD": 2}


@dataclass(frozen=True)
class SeriesPart:
    """One piece of a series template: ``literal``, ``date``, ``counter`` or ``field``."""

    kind: str
    #: the literal text, the date token (``YYYY``), the field name; ``#`` for the counter
    text: str
    #: zero-padded width of the counter
    digits: int = 0


@dataclass(frozen=True)
class Series:
    """A parsed naming series such as ``WO-{YYYY}-{#####}``.

    The counter is gap-free per (entity, :meth:`key`): the template rendered with the
    counter left as ``{#}``, so ``WO-{YYYY}-{#####}`` counts separately every year.

    >>> s = parse_series("WO-{YYYY}-{####}", "number")
    >>> s.key({}, dt.date(2025, 3, 1)), s.render({}, dt.date(2025, 3, 1), 7)
    ('WO-2025-{#}', 'WO-2025-0007')
    """

    field: str
    template: str
    parts: tuple[SeriesPart, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        """Fields of the record the series reads (``{site}``), in template order."""
        return tuple(p.text for p in self.parts if p.kind == "field")

    @property
    def counter(self) -> SeriesPart | None:
        """The counter token, or ``None`` (a checked series always has exactly one)."""
        return next((p for p in self.parts if p.kind == "counter"), None)

    def _render(self, values: Mapping[str, Any], on: dt.date, counter: str) -> str:
        out = []
        for p in self.parts:
            if p.kind == "literal":
                out.append(p.text)
            elif p.kind == "date":
                out.append({"YYYY": f"{on.year:04d}", "YY": f"{on.year % 100:02d}",
                            "MM": f"{on.month:02d}", "DD": f"{on.day:02d}"}[p.text])
            elif p.kind == "counter":
                out.append(counter)
            else:
                v = values.get(p.text)
                out.append("" if v is None else str(v))
        return "".join(out)

    def key(self, values: Mapping[str, Any], on: dt.date) -> str:
        """The counter's scope: the rendered template with ``{#}`` for the counter."""
        return self._render(values, on, "{#}")

    def render(self, values: Mapping[str, Any], on: dt.date, number: int) -> str:
        """The name for counter value ``number`` (zero-padded; wider numbers are kept whole)."""
        counter = self.counter
        width = counter.digits if counter is not None else 0
        return self._render(values, on, f"{number:0{width}d}")

    def min_length(self) -> int:
        """Length of the shortest name the series renders (field tokens counted as empty)."""
        return sum(len(p.text) if p.kind == "literal" else DATE_TOKENS.get(p.text, 0)
                   if p.kind == "date" else p.digits for p in self.parts)


def parse_series(template: str, field: str) -> Series:
    """Split ``template`` into parts; unknown tokens are kept as ``field`` parts."""
    parts: list[SeriesPart] = []
    pos = 0
    for m in _TOKEN.finditer(template):
        if m.start() > pos:
            parts.append(SeriesPart("literal", template[pos:m.start()]))
        tok = m.group(1)
        if tok in DATE_TOKENS:
            parts.append(SeriesPart("date", tok))
        elif tok and set(tok) == {"#"}:
            parts.append(SeriesPart("counter", "#", len(tok)))
        else:
            parts.append(SeriesPart("field", tok))
        pos = m.end()
    if pos < len(template):
        parts.append(SeriesPart("literal", template[pos:]))
    return Series(field, template, tuple(parts))


# --------------------------------------------------------------------------- workflow


@dataclass(frozen=True)
class State:
    """A workflow state: an enum value with its labels, color and editable fields."""

    name: str
    labels: Labels
    color: str | None
    #: fields that may change in this state; ``None``: every field
    editable: frozenset[str] | None


@dataclass(frozen=True)
class Workflow:
    """A resolved workflow: every enum value is a state; transitions as written."""

    field: str
    initial: str
    #: every code of the enum field, in its order
    states: dict[str, State]
    transitions: tuple[TransitionSpec, ...]
    #: states in which a record may be deleted (None: every state)
    deletable_in: frozenset[str] | None = None

    def may_delete_in(self, state: str) -> bool:
        """Whether a record in ``state`` may be deleted (``deletable_in:``)."""
        return self.deletable_in is None or state in self.deletable_in

    def actions_from(self, state: str) -> list[TransitionSpec]:
        """Transitions that can start from ``state``, in declaration order."""
        return [t for t in self.transitions if state in t.sources()]

    def transition(self, action: str, state: str) -> TransitionSpec | None:
        """The transition ``action`` from ``state``, or ``None`` when there is none."""
        return next((t for t in self.transitions
                     if t.action == action and state in t.sources()), None)

    def actions(self) -> tuple[str, ...]:
        """Every action name, once, in declaration order."""
        return tuple(dict.fromkeys(t.action for t in self.transitions))

    def editable_in(self, state: str) -> frozenset[str] | None:
        """Fields editable in ``state`` (``None``: all of them)."""
        st = self.states.get(state)
        return st.editable if st is not None else None


def resolve_workflow(spec: WorkflowSpec, enum_field: Any) -> Workflow:
    """The resolved workflow of a checked spec over ``enum_field`` (an EnumField spec)."""
    codes = enum_field.codes() if getattr(enum_field, "type", None) == "enum" else []
    values = enum_field.values if isinstance(getattr(enum_field, "values", None), dict) else {}
    states: dict[str, State] = {}
    for code in list(codes) + [c for c in spec.states if c not in codes]:
        st = spec.states.get(code)
        label = st.label if st is not None and st.label is not None else values.get(code)
        states[code] = State(code, labels_of(label, code), st.color if st else None,
                             frozenset(st.editable) if st and st.editable is not None else None)
    default = getattr(enum_field, "default", None)
    initial = spec.initial or (default if isinstance(default, str) and default in states
                               else next(iter(states), ""))
    return Workflow(spec.field, initial, states, tuple(spec.transitions),
                    frozenset(spec.deletable_in) if spec.deletable_in is not None else None)


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class ExprSite:
    """One expression written on an entity, and where it is in the YAML."""

    #: ``computed``, ``default``, ``visible_if``, ``required_if``, ``readonly_if``,
    #: ``validation`` or ``guard``
    kind: str
    source: str
    #: the document path of the YAML scalar (under the entity's ``doc``)
    path: tuple[Any, ...]
    #: the field the expression belongs to (the target field of a validation, if any)
    field: str | None = None
    #: index into ``validations`` or ``workflow.transitions``
    index: int | None = None

    @property
    def offset(self) -> int:
        """Characters before the expression inside the scalar (1 for a ``'='`` default)."""
        return 1 if self.kind == "default" else 0


_STRINGS = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|#[^\n]*")
_SELF_REF = re.compile(r"(?<![\w.])self\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")


def self_refs(source: str) -> set[str]:
    """Names read as ``self.<name>`` in an expression (string literals and comments skipped)."""
    return set(_SELF_REF.findall(_STRINGS.sub(" ", source)))


def dependency_order(deps: Mapping[str, set[str]]) -> tuple[list[str], list[list[str]]]:
    """Order ``deps`` (name -> names it reads) so each name follows what it reads.

    Only dependencies among the keys count. Returns the order (declaration order where
    free; members of a cycle keep their declaration order at the end) and the cycles found,
    each as a path ``[a, b, ..., a]``.
    """
    names = list(deps)
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles: list[list[str]] = []
    seen_cycles: set[frozenset[str]] = set()

    def visit(n: str, trail: list[str]) -> None:
        state[n] = 1
        for d in sorted(deps[n] & deps.keys(), key=names.index):
            if state.get(d) == 1:
                cyc = trail[trail.index(d):] + [d] if d in trail else [n, d]
                if frozenset(cyc) not in seen_cycles:
                    seen_cycles.add(frozenset(cyc))
                    cycles.append(cyc)
            elif d not in state:
                visit(d, trail + [d])
        state[n] = 2
        order.append(n)

    for n in names:
        if n not in state:
            visit(n, [n])
    return order, cycles
