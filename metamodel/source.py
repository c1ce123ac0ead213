"""YAML documents that remember where every key and value came from.

:func:`read_yaml` composes a file with ``yaml.compose`` (safe-load semantics: only plain
scalars, sequences and mappings, no Python tags), converts it into plain Python values
and records a :class:`~metamodel.errors.Location` for every value node and every mapping
key, addressed by its key path (a tuple of keys and list indexes). Duplicate keys, which
PyYAML silently accepts, are reported as problems instead of letting the last one win.

Example::

    doc = read_yaml(Path("modules/x/a.yaml"), "modules/x/a.yaml", problems)
    doc.value["entities"]           # plain dicts and lists
    doc.where(("entities", "well")) # Location of that value
    doc.where_key(("entities", "well"))  # Location of the key itself
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Location, Problems

KeyPath = tuple[Any, ...]

#: deepest nesting of lists and mappings a definition file may have; Campo's languages need
#: a handful of levels, and a deeper document (5,000 brackets) would exhaust the recursion
#: of the composer and of every check that walks it
MAX_DEPTH = 100
_DEPTH_MESSAGE = f"YAML nested more than {MAX_DEPTH} levels deep"
_DEPTH_HINT = "flatten the structure: Campo's definitions need only a few levels"


class _TooDeep(Exception):
    """A document nests deeper than :data:`MAX_DEPTH` (raised at the first node below it)."""

    def __init__(self, line: int, column: int) -> None:
        super().__init__(line, column)
        self.line = line
        self.column = column


@dataclass
class Document:
    """A YAML file's value plus the locations of its nodes."""

    file: str
    value: Any
    values: dict[KeyPath, Location] = field(default_factory=dict)
    keys: dict[KeyPath, Location] = field(default_factory=dict)
    #: nodes already reported while reading (unsupported tags); read as ``None``
    unreadable: set[Location] = field(default_factory=set)
    #: the text of every file this document's locations point into (display name -> text);
    #: an overlay merged into the document adds its file (see :mod:`metamodel.overlays`)
    texts: dict[str, str] = field(default_factory=dict)

    def where(self, path: Sequence[Any]) -> Location:
        """Location of the value at ``path``, or of its nearest known ancestor."""
        p = tuple(path)
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), Location(self.file, 1, 1))

    def where_key(self, path: Sequence[Any]) -> Location:
        """Location of the mapping key that ends ``path`` (falls back to :meth:`where`)."""
        p = tuple(path)
        return self.keys.get(p) or self.where(p)


def _loc(file: str, node: Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Converter(SafeConstructor):
    """Builds plain values from nodes with safe-load scalar resolution."""

    def __init__(self) -> None:
        super().__init__()
        #: id(mapping node) -> how many of its pairs came from merge keys (``<<``)
        self.merged: dict[int, int] = {}


_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = _TAG + "str", _TAG + "map", _TAG + "seq", _TAG + "merge"
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))


def _unsupported(node: Node, path: KeyPath, doc: Document, problems: Problems) -> None:
    tag = str(node.tag).replace(_TAG, "!!")
    doc.unreadable.add(_loc(doc.file, node))
    problems.add(_loc(doc.file, node), _dotted(path), f"unsupported YAML tag '{tag}'",
                 "only plain values, lists and mappings are allowed; remove the tag")


def _convert(
    node: Node, path: KeyPath, doc: Document, problems: Problems, conv: _Converter
) -> Any:
    mark = node.start_mark
    doc.values[path] = Location(doc.file, mark.line + 1, mark.column + 1)
    if len(path) >= MAX_DEPTH and not isinstance(node, ScalarNode):
        raise _TooDeep(mark.line + 1, mark.column + 1)
    if isinstance(node, ScalarNode):
        if node.tag == _STR:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            _unsupported(node, path, doc, problems)
            return None
        return conv.construct_object(node, deep=True)
    if isinstance(node, SequenceNode):
        if node.tag != _SEQ:
            _unsupported(node, path, doc, problems)
            return None
        return [_convert(n, path + (i,), doc, problems, conv) for i, n in enumerate(node.value)]
    if not isinstance(node, MappingNode) or node.tag != _MAP:
        _unsupported(node, path, doc, problems)
        return None
    return _convert_mapping(node, path, doc, problems, conv)


def _convert_mapping(
    node: MappingNode, path: KeyPath, doc: Document, problems: Problems, conv: _Converter
) -> dict[Any, Any]:
    merged = conv.merged.get(id(node), 0)
    if any(k.tag == _MERGE for k, _ in node.value):  # resolve merge keys like safe_load does
        own = sum(1 for k, _ in node.value if k.tag != _MERGE)
        conv.flatten_mapping(node)
        merged = conv.merged[id(node)] = len(node.value) - own
    file, values, keys = doc.file, doc.values, doc.keys
    out: dict[Any, Any] = {}
    inherited: set[Any] = set()
    for i, (key_node, value_node) in enumerate(node.value):
        if not isinstance(key_node, ScalarNode):
            problems.add(_loc(file, key_node), _dotted(path),
                         "mapping keys must be plain names, not lists or mappings")
            continue
        key = key_node.value if key_node.tag == _STR else conv.construct_object(key_node)
        if not isinstance(key, str):
            key = key_node.value  # `on:`, `yes:` or `404:` keep the spelling the user wrote
        sub = path + (key,)
        if key in out and key not in inherited:
            problems.add(_loc(file, key_node), _dotted(sub),
                         f"duplicate key '{key}' (first defined at {keys[sub]})",
                         "each key may appear once in a mapping; merge the two entries")
            continue
        if merged:  # a key from a merge (<<) is overridden by a later one, as in safe_load
            inherited.discard(key)
            if i < merged:
                inherited.add(key)
        mark = key_node.start_mark
        keys[sub] = Location(file, mark.line + 1, mark.column + 1)
        if value_node.tag == _STR and isinstance(value_node, ScalarNode):  # the common case
            mark = value_node.start_mark
            values[sub] = Location(file, mark.line + 1, mark.column + 1)
            out[key] = value_node.value
        else:
            out[key] = _convert(value_node, sub, doc, problems, conv)
    return out


def _dotted(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


dotted = _dotted


#: libyaml's composer when PyYAML was built with it (same nodes and marks, ~8x faster)
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _too_deep(text: str) -> _TooDeep | None:
    """Where ``text`` first nests deeper than :data:`MAX_DEPTH`, read as a stream of events
    by PyYAML's parser (a state machine: no recursion, and unlike libyaml it does not scan
    the whole flow collection first); None when it does not."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    return _TooDeep(mark.line + 1, mark.column + 1)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        pass
    return None


def _compose(text: str) -> Node | None:
    """Compose with libyaml; on an error, compose again in Python for its (stable) message.

    libyaml refuses documents nested 1,000 levels deep; those are reported as too deep
    (never composed in Python, whose composer recurses once per level).
    """
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.YAMLError as exc:
        if "nesting depth" in str(getattr(exc, "problem", "")):
            raise _too_deep(text) or _TooDeep(1, 1) from None
        if _FAST_LOADER is yaml.SafeLoader:
            raise
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _syntax_problem(exc: yaml.MarkedYAMLError, display: str) -> tuple[Location, str, str, str]:
    """Location, path, message and hint for a YAML syntax error."""
    mark, ctx = exc.problem_mark or exc.context_mark, exc.context_mark
    loc = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display, 1, 1)
    message = f"YAML syntax error: {exc.problem or exc.context}"
    if exc.problem and exc.context and ctx is not None:
        started = Location(display, ctx.line + 1, ctx.column + 1)
        message += f" ({exc.context} started at line {started.line}, column {started.column})"
    hint = "check indentation, quotes and the ':' after each key"
    if "\\t" in (exc.problem or ""):
        hint = "indent with spaces; YAML does not allow tabs for indentation"
    elif "flow" in (exc.context or ""):
        hint = "a '{' or '[' is not closed: check for a missing '}', ']' or ','"
    return loc, "", message, hint


def read_yaml(path: Path, display: str, problems: Problems) -> Document | None:
    """Read one YAML file; syntax errors become problems and return ``None``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(Location(display, 1, 1), "", f"cannot read file: {exc}")
        return None
    try:
        node = _compose(text)
    except _TooDeep as exc:
        problems.add(Location(display, exc.line, exc.column), "", _DEPTH_MESSAGE, _DEPTH_HINT)
        return None
    except yaml.MarkedYAMLError as exc:
        problems.add(*_syntax_problem(exc, display))
        return None
    except yaml.YAMLError as exc:
        problems.add(Location(display, 1, 1), "", f"YAML error: {exc}")
        return None
    doc = Document(display, None, texts={display: text})
    if node is None:
        doc.value = {}
        doc.values[()] = Location(display, 1, 1)
        return doc
    try:
        doc.value = _convert(node, (), doc, problems, _Converter())
    except _TooDeep as exc:
        problems.add(Location(display, exc.line, exc.column), "", _DEPTH_MESSAGE, _DEPTH_HINT)
        return None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        loc = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display, 1, 1)
        problems.add(loc, "", f"unsupported YAML: {exc.problem}",
                     "only plain scalars, lists and mappings are allowed (no !!python tags)")
        return None
    return doc
