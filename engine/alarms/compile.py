"""Alarm rules compiled for the engine: expressions checked at load, conditions as closures.

:func:`compile_alarms` takes the :class:`~metamodel.tags.TagModel` (whose alarm rules the
metamodel already resolved and checked) and compiles every expression of every alarm with
:mod:`engine.expr`: limits given as text, ``when:`` conditions and ``suppress_when:``. The
names an expression may use are the tags below the alarm's instance (``pip``,
``motor_current``) or site (``w1.pip``), ``value`` (the watched tag's value) and
``params.<name>`` (the instance's template parameters, numbers where they read as one).
Every mistake is reported at the ``file:line:col`` of the character it starts at; limits
that depend only on parameters are computed per instance and checked like constants.

Example::

    tags = load_tags(".")
    alarms = compile_alarms(tags)        # DefinitionError listing every problem
    alarms.by_tag["sim_pad.w1.pip"]      # the alarms to evaluate when that tag changes
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.expr import Context, ExprError, FieldType, ObjectType, Scope, Type
from engine.expr import compile as compile_expr
from engine.rules.locate import expression_location
from metamodel.errors import Problem, Problems
from metamodel.source import dotted
from metamodel.tags import Tag, TagModel
from metamodel.tags.alarms import AlarmRule, ExprText, check_setpoints

Values = Mapping[str, Any]


def _type_of(tag: Tag) -> Type:
    if tag.data_type == "bool":
        return Type.BOOL
    if tag.data_type == "string":
        return Type.STRING
    return Type.NUMBER if tag.data_type is not None or tag.scaling else Type.ANY


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


@dataclass
class _Tree:
    """Tag names below a base, as nested objects (``w1.pip`` -> ``w1: {pip}``)."""

    leaves: dict[str, Tag] = field(default_factory=dict)
    groups: dict[str, _Tree] = field(default_factory=dict)

    def add(self, parts: list[str], tag: Tag) -> None:
        if len(parts) == 1:
            self.leaves[parts[0]] = tag
        else:
            self.groups.setdefault(parts[0], _Tree()).add(parts[1:], tag)

    def fields(self, name: str) -> dict[str, FieldType]:
        out: dict[str, FieldType] = {}
        for k, g in self.groups.items():
            out[k] = FieldType(Type.ANY, target=ObjectType(f"{name}.{k}", g.fields(
                f"{name}.{k}")))
        for k, t in self.leaves.items():
            out[k] = FieldType(_type_of(t))
        return out


@dataclass
class CompiledAlarm:
    """One alarm ready for the engine: its rule, inputs and compiled expressions."""

    rule: AlarmRule
    #: tag paths whose change re-evaluates the alarm (the watched tag first)
    inputs: tuple[str, ...]
    #: the inputs of the condition itself (a bad one makes it undetermined)
    needs: tuple[str, ...] = ()
    #: limit as a function of the live values (None: undetermined)
    limit: Callable[[Values], float | None] | None = None
    #: the condition of a ``when`` alarm (None: undetermined)
    when: Callable[[Values], bool | None] | None = None
    #: suppression by design (None: never suppressed)
    suppress: Callable[[Values], bool] | None = None
    #: numeric template parameters of the instance
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CompiledAlarms:
    """Every compiled alarm by path, the alarms each tag feeds, and the warnings."""

    alarms: dict[str, CompiledAlarm]
    by_tag: dict[str, list[CompiledAlarm]]
    warnings: tuple[Problem, ...] = ()


def _refs(text: str, names: set[str]) -> set[str]:
    """Tag names (relative, dotted) read by ``text``: the longest dotted prefix that is one."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return set()
    out: set[str] = set()
    for node in ast.walk(tree):
        parts: list[str] = []
        cur: ast.AST = node
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        if not isinstance(cur, ast.Name):
            continue
        parts.append(cur.id)
        parts.reverse()
        for n in range(len(parts), 0, -1):
            dotted_name = ".".join(parts[:n])
            if dotted_name in names:
                out.add(dotted_name)
                break
    return out


class _Compiler:
    def __init__(self, tags: TagModel, problems: Problems) -> None:
        self.tags = tags
        self.problems = problems
        self._scopes: dict[tuple[str, str | None, tuple[str, ...]],
                           tuple[Scope, dict[str, Tag]]] = {}
        self._trees: dict[str, tuple[_Tree, dict[str, Tag]]] = {}
        self._by_instance: dict[str, list[Tag]] = {}
        self._exprs: dict[tuple[Any, ...], tuple[Any, set[str]] | None] = {}
        self._broken: dict[str, set[str]] = {}
        for t in tags.tags.values():
            if t.instance is not None:
                self._by_instance.setdefault(t.instance, []).append(t)

    def names(self, base: str) -> tuple[_Tree, dict[str, Tag]]:
        if base not in self._trees:
            prefix = base + "."
            if base in self.tags.instances:  # an instance: its own tags
                rel = {t.path[len(prefix):]: t for t in self._by_instance.get(base, ())}
            else:
                rel = {p[len(prefix):]: t for p, t in self.tags.tags.items()
                       if p.startswith(prefix)}
            tree = _Tree()
            for name, t in rel.items():
                tree.add(name.split("."), t)
            self._trees[base] = (tree, rel)
        return self._trees[base]

    def broken(self, base: str, rel: Mapping[str, Tag]) -> set[str]:
        """Names below ``base`` that templates declare but that did not resolve."""
        if base not in self._broken:
            declared: set[str] = set()
            prefix = base + "."
            for path, inst in self.tags.instances.items():
                tpl = self.tags.templates.get(inst.template)
                if tpl is None:
                    continue
                if path == base:
                    declared.update(tpl.tags)
                elif path.startswith(prefix):
                    declared.update(f"{path[len(prefix):]}.{n}" for n in tpl.tags)
            self._broken[base] = declared - set(rel)
        return self._broken[base]

    def scope(self, rule: AlarmRule) -> tuple[Scope, dict[str, Tag]]:
        key = (rule.base, rule.tag, tuple(p for p, _ in rule.params))
        if key not in self._scopes:
            tree, rel = self.names(rule.base)
            variables = tree.fields(rule.base)
            if rule.params:
                variables["params"] = FieldType(Type.ANY, target=ObjectType("params", {
                    p: FieldType(Type.ANY) for p, _ in rule.params}))
            if rule.tag is not None:
                variables["value"] = FieldType(_type_of(self.tags.tags[rule.tag]))
            self._scopes[key] = (Scope(user=None, variables=variables,
                                       functions=None), rel)
        return self._scopes[key]

    def expr(self, rule: AlarmRule, src: ExprText, expect: Type
             ) -> tuple[Any, set[str]] | None:
        """Compile once per template (names are relative: every instance reads its own)."""
        key = (rule.template or rule.base, src.text, expect,
               tuple(p for p, _ in rule.params), rule.tag is not None and
               _type_of(self.tags.tags[rule.tag]), id(src.doc), src.path)
        if key in self._exprs:
            return self._exprs[key]
        scope, rel = self.scope(rule)
        got: tuple[Any, set[str]] | None
        if self.problems and _refs(src.text, self.broken(rule.base, rel)):
            # it reads a tag that is declared but did not resolve (reported with the tag,
            # so the problems are not empty): an "unknown name" would only repeat that
            self._exprs[key] = None
            return None
        try:
            got = compile_expr(src.text, scope, expect=expect), _refs(src.text, set(rel))
        except ExprError as err:
            where = expression_location(src.doc, src.path, src.text, err.offset)
            self.problems.add(where, dotted(src.path), err.message, err.hint)
            got = None
        self._exprs[key] = got
        return got


def _reader(rule: AlarmRule, rel_refs: set[str], params: Mapping[str, Any]
            ) -> Callable[[Values], dict[str, Any]]:
    """Build the expression variables from the live values (nested for dotted names)."""
    flat = [(r, f"{rule.base}.{r}") for r in sorted(rel_refs) if "." not in r]
    nested = [(r.split("."), f"{rule.base}.{r}") for r in sorted(rel_refs) if "." in r]
    own = rule.tag

    def read(values: Values) -> dict[str, Any]:
        out: dict[str, Any] = {name: values.get(path) for name, path in flat}
        for parts, path in nested:
            d = out
            for p in parts[:-1]:
                d = d.setdefault(p, {})
            d[parts[-1]] = values.get(path)
        if params:
            out["params"] = params
        if own is not None:
            out["value"] = values.get(own)
        return out
    return read


def _evaluator(expr: Any, read: Callable[[Values], dict[str, Any]]) -> Callable[[Values], Any]:
    evaluate = expr.evaluate

    def run(values: Values) -> Any:
        return evaluate(Context(variables=read(values)))
    return run


def compile_alarms(tags: TagModel) -> CompiledAlarms:
    """Compile every alarm of ``tags``; raise DefinitionError with every problem."""
    problems = Problems()
    compiled = collect_alarms(tags, problems)
    problems.raise_if_any()
    return compiled


def collect_alarms(tags: TagModel, problems: Problems) -> CompiledAlarms:
    """Compile every alarm of ``tags``, adding problems to ``problems`` (the alarms with a
    problem are left out); ``campo validate`` reports them with every other language's."""
    comp = _Compiler(tags, problems)
    out: dict[str, CompiledAlarm] = {}
    per_rule: dict[str, list[tuple[str, float]]] = {}
    for path, rule in tags.alarms.items():
        params = {k: _number(v) for k, v in rule.params}
        inputs: list[str] = [rule.tag] if rule.tag else []
        needs: list[str] = list(inputs)
        ca = CompiledAlarm(rule, (), params=params)
        ok = True
        for src, expect, slot in ((rule.limit_expr, Type.NUMBER, "limit"),
                                  (rule.when, Type.BOOL, "when"),
                                  (rule.suppress_when, Type.BOOL, "suppress")):
            if src is None:
                continue
            got = comp.expr(rule, src, expect)
            if got is None:
                ok = False
                continue
            expr, refs = got
            inputs += [f"{rule.base}.{r}" for r in sorted(refs)]
            if slot != "suppress":
                needs += [f"{rule.base}.{r}" for r in sorted(refs)]
            run = _evaluator(expr, _reader(rule, refs, params))
            if slot == "limit":
                if not refs and "value" not in expr.refs.variables:
                    value = _constant_limit(run, rule, src, problems, tags)
                    if value is None:
                        ok = False
                        continue
                    per_rule.setdefault(rule.rule, []).append((rule.level or "", value))
                    ca.limit = _const(value)
                else:
                    ca.limit = _as_number(run)
            elif slot == "when":
                ca.when = run
                if rule.on_delay or rule.off_delay:
                    _when_delays(rule, refs, tags, problems)
            else:
                ca.suppress = run
        if not ok:
            continue
        if rule.limit is not None:
            per_rule.setdefault(rule.rule, []).append((rule.level or "", rule.limit))
        ca.inputs = tuple(dict.fromkeys(inputs))
        ca.needs = tuple(dict.fromkeys(needs))
        out[path] = ca
    _check_instance_setpoints(out, per_rule, tags, problems)
    by_tag: dict[str, list[CompiledAlarm]] = {}
    for ca in out.values():
        for t in ca.inputs:
            by_tag.setdefault(t, []).append(ca)
    return CompiledAlarms(out, by_tag, tags.warnings)


def _const(value: float) -> Callable[[Values], float]:
    def limit(_values: Values) -> float:
        return value
    return limit


def _as_number(run: Callable[[Values], Any]) -> Callable[[Values], float | None]:
    def limit(values: Values) -> float | None:
        try:
            v = run(values)
        except ExprError:
            return None
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    return limit


def _constant_limit(run: Callable[[Values], Any], rule: AlarmRule, src: ExprText,
                    problems: Problems, tags: TagModel) -> float | None:
    """A limit of parameters only, computed for this instance (a load-time problem if bad)."""
    try:
        value = run({})
    except ExprError as err:
        value, why = None, err.message
    else:
        why = f"got {value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    inst = tags.instances.get(rule.instance or "")
    where = inst.location if inst is not None else src.location
    shown = ", ".join(f"{k}={v!r}" for k, v in rule.params)
    problems.add(where, f"instances.{(rule.instance or '').split('.', 1)[-1]}.params",
                 f"limit '{src.text}' of alarm '{rule.path}' is not a number for this "
                 f"instance ({why}; {shown})", "give the parameter a number")
    return None


def _when_delays(rule: AlarmRule, refs: set[str], tags: TagModel, problems: Problems) -> None:
    periods = [tags.tags[f"{rule.base}.{r}"].period for r in refs
               if f"{rule.base}.{r}" in tags.tags]
    if not periods or rule.when is None:
        return
    fastest = min(periods)
    for key, seconds in (("on_delay", rule.on_delay), ("off_delay", rule.off_delay)):
        if seconds and seconds < fastest:
            path = rule.when.path[:-1] + (key,)
            problems.add(rule.when.doc.where(path), dotted(path),
                         f"{key} {seconds:g} s is shorter than the fastest scan period of the "
                         f"tags in 'when' ({fastest:g} s): the scan cannot resolve it",
                         f"use at least {fastest:g} s")


def _check_instance_setpoints(out: dict[str, CompiledAlarm],
                              per_rule: dict[str, list[tuple[str, float]]], tags: TagModel,
                              problems: Problems) -> None:
    """Setpoint order per instance when some limits came from parameters."""
    groups: dict[str, list[CompiledAlarm]] = {}
    for ca in out.values():
        if ca.rule.level is not None:
            groups.setdefault(ca.rule.rule, []).append(ca)
    for rule_path, limits in per_rule.items():
        members = groups.get(rule_path, [])
        src = next((ca.rule.limit_expr for ca in members if ca.rule.limit_expr), None)
        if src is None:
            continue  # constants only: checked by the metamodel
        first = members[0].rule
        inst = tags.instances.get(first.instance or "")
        tag = tags.tags.get(first.tag or "")
        if inst is None or tag is None:
            continue
        key = src.path[:-3] if src.path[-1] == "limit" else src.path[:-2]
        if not check_setpoints(limits, first.deadband, tag, src.doc, key, problems,
                               where=inst.location,
                               suffix=f" (instance '{inst.path}', with its parameters)"):
            for ca in members:
                out.pop(ca.rule.path, None)


__all__ = ["CompiledAlarm", "CompiledAlarms", "compile_alarms"]
