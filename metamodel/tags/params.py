"""``${name}`` placeholders: site parameters and template parameters.

Site files may use ``${name}`` anywhere below ``devices:``, ``instances:`` and ``tags:``;
a value that is exactly one placeholder takes the parameter's type (``port: ${modbus_port}``
becomes an int), others are text. A site parameter's value is, in order: an override given
to the loader (``--set sim_pad.modbus_port=5021``), the environment variable named by its
``env:``, its ``default:``. Template files may use ``${name}`` inside the text of a tag
(``node``, ``topic``, ``path``, ``metric``, ``description``); each instance fills them in.
``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import Problems, expected_one_of
from ..source import Document, dotted
from .spec import SiteParameterSpec

PLACEHOLDER = re.compile(r"(?<!\$)\$\{([^}]*)\}")
_WHOLE = re.compile(r"^\$\{([^}]*)\}$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


UNCLOSED_HINT = "close it with '}' (${name}), or write $${ for a literal ${"


def unclosed(text: str) -> str | None:
    """The start of the first ``${`` that no ``}`` closes (``$${`` is a literal), or None."""
    rest = PLACEHOLDER.sub("", text).replace("$${", "")
    i = rest.find("${")
    if i < 0:
        return None
    return rest[i:].split()[0][:40]


def placeholders(text: str) -> list[str]:
    """Names of the ``${...}`` placeholders in ``text``."""
    return [m.group(1).strip() for m in PLACEHOLDER.finditer(text)]


def fill(text: str, values: Mapping[str, Any]) -> str:
    """``text`` with every known placeholder replaced (unknown ones are left as they are)."""
    def repl(m: re.Match[str]) -> str:
        name = m.group(1).strip()
        return str(values[name]) if name in values else m.group(0)

    return PLACEHOLDER.sub(repl, text).replace("$${", "${")


def convert(value: Any, kind: str) -> Any:
    """``value`` (an override or an environment string) as a parameter of type ``kind``."""
    if kind == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"'{value}' is not true or false")
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a number")
    if kind == "int":
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"'{value}' is not an integer") from None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"'{value}' is not a number") from None


def site_values(site: str, specs: Mapping[str, SiteParameterSpec], doc: Document,
                overrides: Mapping[str, Any], environ: Mapping[str, str],
                problems: Problems) -> dict[str, Any]:
    """Each site parameter's value after overrides, environment and defaults."""
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        where = doc.where_key(("parameters", name))
        path = f"parameters.{name}"
        source: str
        if f"{site}.{name}" in overrides:
            raw, source = overrides[f"{site}.{name}"], f"--set {site}.{name}"
        elif name in overrides:
            raw, source = overrides[name], f"--set {name}"
        elif spec.env and spec.env in environ:
            raw, source = environ[spec.env], f"${spec.env}"
        elif spec.default is not None:
            raw, source = spec.default, "default"
        else:
            hint = f"give a default, set {spec.env} or use --set {site}.{name}=..." if spec.env \
                else f"give a default or use --set {site}.{name}=..."
            problems.add(where, path, f"parameter '{name}' has no value", hint)
            continue
        try:
            out[name] = convert(raw, spec.type)
        except ValueError as exc:
            problems.add(where, path, f"parameter '{name}' ({spec.type}): {exc} (from {source})")
    return out


def substitute_site(value: Any, path: tuple[Any, ...], values: Mapping[str, Any],
                    doc: Document, problems: Problems, tainted: set[str],
                    broken: frozenset[str] = frozenset()) -> Any:
    """Replace placeholders in a site document's values (typed when a value is one).

    Paths whose value could not be filled in (unknown parameter, or one in ``broken``
    whose own problem is already reported) are added to ``tainted``.
    """
    if isinstance(value, dict):
        return {k: substitute_site(v, path + (k,), values, doc, problems, tainted, broken)
                for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_site(v, path + (i,), values, doc, problems, tainted, broken)
                for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    bad = unclosed(value)
    if bad is not None:
        problems.add(doc.where(path), dotted(path), f"unclosed placeholder '{bad}'",
                     UNCLOSED_HINT)
        tainted.add(dotted(path))
        return value
    unknown = [n for n in placeholders(value) if n not in values]
    for name in unknown:
        if name in broken:
            continue
        problems.add(doc.where(path), dotted(path), f"unknown parameter '{name}'",
                     expected_one_of(name, [*values, *broken]) if values or broken else
                     "declare it under 'parameters:' at the top of the site file")
    if unknown:
        tainted.add(dotted(path))
        return value
    whole = _WHOLE.match(value)
    if whole:
        return values[whole.group(1).strip()]
    return fill(value, values)
