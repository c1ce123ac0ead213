"""Site overlays: YAML layers that change a base model without editing its files.

An overlay folder holds ``modules/**/*.yaml`` like a project. A file that starts with
``overlay: true`` changes a module of the base: it may add entities, fields and roles, and
override an entity's ``label``, ``help``, ``permissions`` (replaced), ``validations``
(appended; a rule with the ``id`` of an existing one replaces it) and a field's ``label``,
``help``, ``default``, ``hidden`` (and the permission keys ``hidden_for``/``readonly_for``).
A file without ``overlay: true`` is an ordinary module file (a site's own module).

Overlays are merged into the base documents before the shape phase: the merged
:class:`~metamodel.source.Document` keeps the location of every node, so a problem in an
overlaid key is reported in the overlay file and ``campo show`` can tell where each part of
an entity came from. Overlays apply in the order given; a later one wins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import Location, Problems, did_you_mean, expected_one_of
from .source import Document, KeyPath, dotted, read_yaml

log = logging.getLogger(__name__)

#: entity keys an overlay may change on an existing entity (``fields`` adds or overrides)
ENTITY_OVERRIDES: tuple[str, ...] = ("label", "help", "permissions", "validations", "scope",
                                     "fields")
#: field keys an overlay may change on an existing field
FIELD_OVERRIDES: tuple[str, ...] = ("label", "help", "default", "hidden", "hidden_for",
                                    "readonly_for")
_OVERLAY_KEYS = ("overlay", "module", "entities", "roles")


def apply_overlays(docs: list[Document], folders: Sequence[Path], root: Path,
                   problems: Problems) -> list[Document]:
    """The base documents with every overlay folder merged in, in order."""
    from .loader import display_path, find_files

    docs = list(docs)
    seen: set[Path] = set()
    for folder in folders:
        if folder.resolve() in seen:
            problems.add(Location(display_path(folder, root), 1, 1), "",
                         "overlay folder is given twice",
                         "give each overlay folder once")
            continue
        seen.add(folder.resolve())
        if not (folder / "modules").is_dir():
            problems.add(Location(display_path(folder, root), 1, 1), "",
                         "overlay folder has no modules/ folder" if folder.is_dir()
                         else "overlay folder does not exist",
                         "give a folder that contains modules/**/*.yaml")
            continue
        for path in find_files(folder, "modules"):
            doc = read_yaml(path, display_path(path, root), problems)
            if doc is None:
                continue
            if isinstance(doc.value, dict) and "overlay" in doc.value:
                extra = _merge(doc, docs, problems)
                if extra is not None:
                    docs.append(extra)
            else:
                docs.append(doc)
    return docs


def _modules(docs: list[Document]) -> dict[str, list[Document]]:
    out: dict[str, list[Document]] = {}
    for d in docs:
        if isinstance(d.value, dict) and isinstance(d.value.get("module"), str):
            out.setdefault(d.value["module"], []).append(d)
    return out


def _merge(o: Document, docs: list[Document], problems: Problems) -> Document | None:
    """Merge overlay document ``o`` into ``docs``; return a document of what it adds."""
    value: dict[str, Any] = o.value
    flag = value.get("overlay")
    if flag is not True:
        problems.add(o.where(("overlay",)), "overlay", f"'overlay' must be true, got {flag!r}",
                     "an overlay file starts with 'overlay: true'; remove the key for an "
                     "ordinary module file")
        return None
    for key in value:
        if key not in _OVERLAY_KEYS and not (isinstance(key, str) and key.startswith("x-")):
            problems.add(o.where_key((key,)), str(key), f"unknown key '{key}' in an overlay",
                         expected_one_of(str(key), _OVERLAY_KEYS))
    modules = _modules(docs)
    module = value.get("module")
    if not isinstance(module, str):
        problems.add(o.where(("module",)) if "module" in value else o.where(()), "module",
                     "an overlay needs 'module:' naming the module it changes",
                     "add 'module: <name>' after 'overlay: true'")
        return None
    if module not in modules:
        problems.add(o.where(("module",)), "module", f"overlay changes unknown module "
                     f"'{module}'", expected_one_of(module, modules) if modules else None)
        return None
    entities = value.get("entities") or {}
    if not isinstance(entities, dict):
        problems.add(o.where(("entities",)), "entities", "'entities' must be a mapping")
        return None
    added: dict[str, Any] = {}
    for name, raw in entities.items():
        base = next((d for d in modules[module] if isinstance(d.value.get("entities"), dict)
                     and name in d.value["entities"]), None)
        path = ("entities", name)
        if base is not None:
            _override_entity(o, base, path, raw, problems)
        elif isinstance(raw, dict) and "fields" in raw:
            added[name] = raw
        else:
            known = sorted({e for d in modules[module]
                            for e in (d.value.get("entities") or {})})
            guess = did_you_mean(str(name), known)
            problems.add(o.where_key(path), dotted(path),
                         f"overlay changes unknown entity '{module}.{name}'",
                         (guess + " " if guess else "") + "To add a new entity, give its "
                         "'fields:'")
    value = {k: v for k, v in value.items() if k != "overlay"}
    value["entities"] = added
    if not added and not value.get("roles"):
        return None
    log.debug("overlay %s adds %d entities to module %s", o.file, len(added), module)
    return Document(o.file, value, o.values, o.keys, o.unreadable, o.texts)


# --------------------------------------------------------------------------- transplanting


def _transplant(o: Document, src: KeyPath, b: Document, dst: KeyPath) -> None:
    """Make ``b``'s locations under ``dst`` those of ``o`` under ``src``."""
    n = len(dst)
    for table in (b.values, b.keys):
        for k in [k for k in table if k[:n] == dst]:
            del table[k]
    m = len(src)
    for own, table in ((o.values, b.values), (o.keys, b.keys)):
        for k, loc in own.items():
            if k[:m] == src:
                table[dst + k[m:]] = loc
    b.texts.update(o.texts)
    b.unreadable |= o.unreadable


def _override_entity(o: Document, b: Document, path: KeyPath, raw: Any,
                     problems: Problems) -> None:
    target = b.value["entities"][path[1]]
    if not isinstance(raw, dict):
        problems.add(o.where(path), dotted(path), "an entity's overlay must be a mapping",
                     "write the keys it changes, e.g. label: or fields:")
        return
    if not isinstance(target, dict):
        return  # the base entity is broken; its own problem says so
    for key, v in raw.items():
        kp = path + (key,)
        if key not in ENTITY_OVERRIDES:
            problems.add(o.where_key(kp), dotted(kp),
                         f"'{key}' of an existing entity cannot be changed by an overlay",
                         "an overlay may change " + ", ".join(ENTITY_OVERRIDES[:-1])
                         + " and add or change fields")
        elif key == "validations":
            _merge_validations(o, b, kp, v, target, problems)
        elif key == "fields":
            _merge_fields(o, b, kp, v, target, problems)
        else:
            target[key] = v
            _transplant(o, kp, b, kp)


def _merge_validations(o: Document, b: Document, kp: KeyPath, rules: Any,
                       target: dict[str, Any], problems: Problems) -> None:
    if not isinstance(rules, list):
        problems.add(o.where(kp), dotted(kp), "'validations' must be a list of rules")
        return
    have = target.get("validations")
    if not isinstance(have, list):
        target["validations"] = have = []
        b.values[kp] = o.where(kp)
        b.keys[kp] = o.where_key(kp)
    for i, rule in enumerate(rules):
        rid = rule.get("id") if isinstance(rule, dict) else None
        j = next((n for n, r in enumerate(have) if rid is not None and isinstance(r, dict)
                  and r.get("id") == rid), None)
        if j is None:
            j = len(have)
            have.append(rule)
        else:
            have[j] = rule
        _transplant(o, kp + (i,), b, kp + (j,))


def _merge_fields(o: Document, b: Document, kp: KeyPath, fields: Any,
                  target: dict[str, Any], problems: Problems) -> None:
    have = target.get("fields")
    if not isinstance(fields, dict):
        problems.add(o.where(kp), dotted(kp), "'fields' must be a mapping")
        return
    if not isinstance(have, dict):
        return  # the base entity's fields are broken; reported there
    for fname, spec in fields.items():
        fp = kp + (fname,)
        if fname not in have:
            if isinstance(spec, dict) and "type" in spec:
                have[fname] = spec
                _transplant(o, fp, b, fp)
            else:
                guess = did_you_mean(str(fname), list(have))
                problems.add(o.where_key(fp), dotted(fp),
                             f"overlay changes unknown field '{fname}' of "
                             f"'{b.value.get('module')}.{kp[1]}'",
                             (guess + " " if guess else "") + "To add a new field, give "
                             "its 'type:'")
            continue
        base = have[fname]
        if not isinstance(spec, dict):
            problems.add(o.where(fp), dotted(fp), "a field's overlay must be a mapping",
                         "write the keys it changes, e.g. label: or hidden: true")
            continue
        if not isinstance(base, dict):
            continue
        for key, v in spec.items():
            p = fp + (key,)
            if key not in FIELD_OVERRIDES:
                problems.add(o.where_key(p), dotted(p),
                             f"'{key}' of an existing field cannot be changed by an overlay",
                             "an overlay may change " + ", ".join(FIELD_OVERRIDES))
                continue
            base[key] = v
            _transplant(o, p, b, p)
