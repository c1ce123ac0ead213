"""Checks of the behaviour keys: computed, fetch_from, defaults, series, validations, workflow.

These run in phase 4 of loading next to :mod:`metamodel.checks` and look at what can be
checked without the expression language: names of fields, states, roles and tokens, and
options that contradict each other. The expressions themselves (unknown fields inside
them, their types) are compiled by ``engine.rules`` when the engine loads the model.
"""

from __future__ import annotations

from typing import Any

from .behaviour import DATE_TOKENS, dependency_order, parse_series, self_refs
from .errors import Problems, expected_one_of
from .model import Entity, Role
from .shape import EntityDef, Salvage

#: field types whose value a naming series can insert with ``{field}``
_SERIES_TOKEN_TYPES = ("string", "enum", "int", "date")
_NUMBERS = ("int", "decimal", "float")
_TEXTS = ("string", "text", "enum")


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _a(word: str) -> str:
    """``a string``, ``an int``."""
    return ("an " if word[:1] in "aeiou" else "a ") + word


class _Reporter:
    """Adds problems located at paths under one entity."""

    def __init__(self, d: EntityDef, problems: Problems) -> None:
        self.d, self.problems = d, problems

    def value(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        full = self.d.path + path
        self.problems.add(self.d.doc.where(full), _dotted(full), message, hint)

    def key(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        full = self.d.path + path
        self.problems.add(self.d.doc.where_key(full), _dotted(full), message, hint)


def check_behaviour(d: EntityDef, ent: Entity, entities: dict[str, Entity],
                    roles: dict[str, Role], salvage: Salvage, problems: Problems) -> None:
    """Every behaviour check of one entity."""
    r = _Reporter(d, problems)
    for fname, f in ent.fields.items():
        _check_field_behaviour(r, ent, fname, f, entities)
    _check_computed_cycles(r, ent)
    if ent.spec.naming is not None and ent.spec.naming.series is not None:
        _check_series(r, d, ent)
    _check_validations(r, d, ent)
    if ent.spec.workflow is not None:
        _check_workflow(r, d, ent, roles, salvage)


def _known(d: EntityDef, ent: Entity, name: str) -> bool:
    return name in ent.fields or name in d.broken_fields


# --------------------------------------------------------------------------- fields


def _check_field_behaviour(r: _Reporter, ent: Entity, fname: str, f: Any,
                           entities: dict[str, Entity]) -> None:
    fp = ("fields", fname)
    derived = "computed" if f.computed is not None else (
        "fetched" if f.fetch_from is not None else None)
    if "stored" in f.model_fields_set and f.computed is None:
        r.value(fp + ("stored",), "'stored' applies only to computed fields",
                "add 'computed: <expression>' or remove 'stored:'")
    if f.type == "table":
        for key in ("computed", "fetch_from", "required_if"):
            if getattr(f, key) is not None:
                r.value(fp + (key,), f"'{key}' does not apply to a table field",
                        "a table field holds rows of a child entity; compute a column of the "
                        "child entity, or a total here: sum(self." + fname + ".<column>)"
                        if key == "computed" else None)
        return
    if f.computed is not None and f.fetch_from is not None:
        r.value(fp + ("fetch_from",), "a field is either computed or fetched, not both",
                "remove 'computed:' or 'fetch_from:'")
    if f.computed is not None and f.default is not None:
        r.value(fp + ("default",), "'default' does not apply to a computed field",
                "the expression gives its value; remove 'default:'")
    if derived is not None:
        for key in ("required_if", "readonly_if"):
            if getattr(f, key) is not None:
                r.value(fp + (key,), f"'{key}' does not apply to a {derived} field",
                        "clients never write it; the server fills it")
    if f.is_virtual:
        for key in ("required", "unique", "index"):
            if getattr(f, key):
                r.value(fp + (key,), f"'{key}' does not apply to a virtual field "
                        "(stored: false)", "it has no column; remove 'stored: false' to "
                        "store the computed value")
    if isinstance(f.default, str) and f.default.startswith("=") and not f.default[1:].strip():
        r.value(fp + ("default",), "an expression default needs an expression after '='",
                "e.g. default: '=today()'; to start a text default with '=', write "
                "default: \"='=...'\"")
    if f.fetch_from is not None:
        _check_fetch(r, ent, fname, f, entities)


def _check_fetch(r: _Reporter, ent: Entity, fname: str, f: Any,
                 entities: dict[str, Entity]) -> None:
    path = ("fields", fname, "fetch_from")
    link, _, tname = f.fetch_from.partition(".")
    links = sorted(k for k, x in ent.fields.items() if x.type == "link")
    lf = ent.fields.get(link)
    if lf is None:
        if link not in r.d.broken_fields:
            r.value(path, f"unknown field '{link}'",
                    (expected_one_of(link, links) + " (link fields)") if links else
                    f"'{ent.qualname}' has no link field to fetch through")
        return
    if lf.type != "link":
        r.value(path, f"fetch_from goes through a link field; '{link}' is {_a(lf.type)} field",
                "write '<link field>.<field of the linked entity>', e.g. 'well.name'"
                + (f"; link fields here: {', '.join(links)}" if links else ""))
        return
    target = entities.get(ent.targets.get(link, ""))
    if target is None:
        return  # the link's own problem is reported where it is defined
    tf = target.fields.get(tname)
    columns = target.stored_fields()
    if tf is None or tf.type == "table":
        what = "a table field of" if tf is not None else "unknown field"
        msg = (f"'{tname}' is {what} '{target.qualname}'" if tf is not None
               else f"unknown field '{tname}' of '{target.qualname}'")
        r.value(path, msg, expected_one_of(tname, columns))
        return
    if tf.is_virtual:
        r.value(path, f"'{target.qualname}.{tname}' is a virtual computed field "
                "(stored: false); there is no stored value to copy",
                "fetch a stored field, or compute the value here")
        return
    ok = (f.type == tf.type or (f.type in ("string", "text") and tf.type in _TEXTS)
          or (f.type in ("decimal", "float") and tf.type in _NUMBERS))
    if not ok:
        r.value(path, f"fetch_from '{f.fetch_from}' copies {_a(tf.type)} field into "
                f"{_a(f.type)} field", f"declare this field as 'type: {tf.type}'")
    elif f.type == "link" and ent.targets.get(fname) != target.targets.get(tname):
        r.value(path, f"fetch_from '{f.fetch_from}' copies a link to "
                f"'{target.targets.get(tname)}' into a link to '{ent.targets.get(fname)}'",
                "both links must point at the same entity")
    elif f.type == "string" and tf.type == "string" and tf.max_length > f.max_length:
        r.value(path, f"copied values may be {tf.max_length} characters long; max_length is "
                f"{f.max_length}", f"make max_length at least {tf.max_length}")


def _check_computed_cycles(r: _Reporter, ent: Entity) -> None:
    deps = {k: self_refs(f.computed) for k, f in ent.fields.items()
            if f.computed is not None and f.type != "table"}
    for cycle in dependency_order(deps)[1]:
        first = cycle[0]
        r.value(("fields", first, "computed"),
                "computed fields read each other in a cycle: " + " -> ".join(cycle),
                "no value on the cycle could be computed first; make one of them an "
                "ordinary field, or compute it from other fields")


# --------------------------------------------------------------------------- series


def _check_series(r: _Reporter, d: EntityDef, ent: Entity) -> None:
    naming = ent.spec.naming
    assert naming is not None and naming.series is not None
    path = ("naming", "series")
    template = naming.series
    example = "e.g. 'WO-{YYYY}-{#####}'"
    nf = ent.fields.get(naming.field)
    if nf is not None and nf.type != "string":
        r.value(("naming", "field"), f"a naming series fills a string field; "
                f"'{naming.field}' is {_a(nf.type)} field", "declare it as 'type: string'")
    depth_ok = True
    level = 0
    for ch in template:
        level += 1 if ch == "{" else -1 if ch == "}" else 0
        if level not in (0, 1):
            depth_ok = False
    if not depth_ok or level != 0:
        r.value(path, f"series '{template}' has an unmatched '{{' or '}}'",
                "tokens are written in braces: {YYYY} {YY} {MM} {DD} {####} {field_name}")
        return
    series = parse_series(template, naming.field)
    counters = [p for p in series.parts if p.kind == "counter"]
    if not counters:
        r.value(path, f"series '{template}' has no counter token",
                f"add {{####}} where the running number goes ({{#}} per digit), {example}")
    elif len(counters) > 1:
        r.value(path, f"series '{template}' has {len(counters)} counter tokens",
                "write one {####} token")
    names = sorted(k for k, f in ent.fields.items()
                   if f.type in _SERIES_TOKEN_TYPES and not f.is_virtual and k != naming.field)
    for tok in series.fields:
        f = ent.fields.get(tok)
        if tok == "":
            r.value(path, "an empty token '{}' in the series",
                    "tokens: {YYYY} {YY} {MM} {DD} {####} {field_name}")
        elif f is None:
            if tok not in d.broken_fields:
                hint = expected_one_of(tok, [*DATE_TOKENS, "####", *names])
                r.value(path, f"unknown token '{{{tok}}}' in the series", hint)
        elif tok == naming.field:
            r.value(path, f"the series cannot insert '{tok}', the field it fills")
        elif f.type == "link":
            r.value(path, f"token '{{{tok}}}' names a link field (its value is a record id)",
                    f"copy the code into a string field with fetch_from: {tok}.<code field>, "
                    "and name that field")
        elif f.type not in _SERIES_TOKEN_TYPES or f.is_virtual:
            kind = "virtual computed" if f.is_virtual else f.type
            r.value(path, f"token '{{{tok}}}' names {_a(kind)} field",
                    "a series can insert string, enum, int or date fields")
    if nf is not None and nf.type == "string" and series.min_length() > nf.max_length:
        r.value(path, f"names of series '{template}' are at least {series.min_length()} "
                f"characters long; '{naming.field}' has max_length {nf.max_length}",
                f"make max_length at least {series.min_length()}")


# --------------------------------------------------------------------------- validations


def _check_validations(r: _Reporter, d: EntityDef, ent: Entity) -> None:
    ids: dict[str, int] = {}
    for i, v in enumerate(ent.spec.validations):
        if v.field is not None and not _known(d, ent, v.field):
            r.value(("validations", i, "field"), f"unknown field '{v.field}'",
                    expected_one_of(v.field, ent.fields))
        if v.id is not None:
            if v.id in ids:
                r.value(("validations", i, "id"),
                        f"rule id '{v.id}' is already used by validations[{ids[v.id]}]",
                        "give each rule its own id")
            ids.setdefault(v.id, i)


# --------------------------------------------------------------------------- workflow


def _check_workflow(r: _Reporter, d: EntityDef, ent: Entity, roles: dict[str, Role],
                    salvage: Salvage) -> None:
    wf = ent.spec.workflow
    assert wf is not None
    if ent.spec.child:
        r.key(("workflow",), "a child entity cannot have a workflow; its rows are written "
              "with their parent", "move 'workflow:' to the parent entity")
        return
    enums = sorted(k for k, f in ent.fields.items() if f.type == "enum")
    sf = ent.fields.get(wf.field)
    if sf is None:
        if wf.field not in d.broken_fields:
            r.value(("workflow", "field"), f"unknown field '{wf.field}'",
                    expected_one_of(wf.field, enums) if enums else
                    "add an enum field whose values are the states, e.g. status: {type: enum, "
                    "values: [draft, approved, done]}")
        return
    if sf.type != "enum":
        r.value(("workflow", "field"), f"the workflow field must be an enum field; "
                f"'{wf.field}' is {_a(sf.type)} field",
                "declare it as 'type: enum' with the states as its values")
        return
    if sf.computed is not None or sf.fetch_from is not None:
        r.value(("workflow", "field"), f"the workflow field '{wf.field}' cannot be "
                "computed or fetched", "only the workflow's transitions change it")
    codes = sf.codes()

    def state(value: str, path: tuple[Any, ...], key: bool = False) -> bool:
        if value in codes:
            return True
        msg = f"unknown state '{value}': not a value of enum field '{wf.field}'"
        (r.key if key else r.value)(path, msg, expected_one_of(value, codes))
        return False

    for code in wf.states:
        state(code, ("workflow", "states", code), key=True)
    if wf.initial is not None and state(wf.initial, ("workflow", "initial")):
        default = sf.default
        if isinstance(default, str) and not default.startswith("=") and default != wf.initial:
            r.value(("fields", wf.field, "default"),
                    f"default '{default}' differs from the workflow's initial state "
                    f"'{wf.initial}'", "remove the field's default or make them the same")
    for i, code in enumerate(wf.deletable_in or ()):
        state(code, ("workflow", "deletable_in", i))
    for code, st in wf.states.items():
        for i, fname in enumerate(st.editable or ()):
            p = ("workflow", "states", code, "editable", i)
            if fname == wf.field:
                r.value(p, f"'{fname}' is the workflow's state field; only transitions "
                        "change it", "remove it from 'editable:'")
            elif not _known(d, ent, fname):
                r.value(p, f"unknown field '{fname}'", expected_one_of(fname, ent.fields))
    _check_transitions(r, d, ent, roles, salvage, state)


def _check_transitions(r: _Reporter, d: EntityDef, ent: Entity, roles: dict[str, Role],
                       salvage: Salvage, state: Any) -> None:
    wf = ent.spec.workflow
    assert wf is not None
    first: dict[tuple[str, str], int] = {}
    for i, t in enumerate(wf.transitions):
        tp = ("workflow", "transitions", i)
        sources = t.sources()
        if not sources:
            r.value(tp + ("from",), "an empty list of states",
                    "list the states the action starts from")
        for j, s in enumerate(sources):
            fp = tp + ("from",) + ((j,) if isinstance(t.from_, list) else ())
            if not state(s, fp):
                continue
            key = (t.action, s)
            if key in first:
                r.value(fp, f"action '{t.action}' from state '{s}' is already defined by "
                        f"transitions[{first[key]}]",
                        "an action leads from a state to one place; rename one of them")
            first.setdefault(key, i)
        state(t.to, tp + ("to",))
        for j, role in enumerate(t.roles):
            if role not in roles and role not in salvage.broken_roles:
                r.value(tp + ("roles", j), f"unknown role '{role}'", expected_one_of(role, roles))
        for j, fname in enumerate(t.requires):
            if not _known(d, ent, fname):
                r.value(tp + ("requires", j), f"unknown field '{fname}'",
                        expected_one_of(fname, ent.fields))
