"""Show and accept quantities in the caller's unit system: ``X-Units: field|metric`` (or
``?units=``) on any ``/api/<module>/<entity>...`` request.

A WSGI middleware around the generated API, so every endpoint gets it and none changes:
request bodies (create, bulk, PUT, PATCH, a workflow action's ``values``, child rows) are
converted from the system's unit of each field to the field's own (canonical, stored) unit
before the API sees them; JSON answers (records, lists, aggregates, ``/api/meta``'s
``unit``) are converted back. Decimals keep the field's scale (rounded half-even), floats
stay floats; numeric filters in the query string (``oil__gte=10``) are converted too.
Answers carry ``X-Units`` when converted. See :mod:`engine.units` for the unit systems.
An attachment's file (``…/<id>/files/<field>``, :mod:`engine.api.attachments`) passes
untouched both ways (a JSON file is bytes, not a record); the upload's answer is converted.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

from engine import jsonio
from metamodel import Model

from . import SYSTEMS, UnitError, convert, display_unit

log = logging.getLogger(__name__)

#: entity -> {field: (stored unit, "decimal"|"float"|"int", scale, child entity or None)}
Plan = dict[str, dict[str, tuple[str, str, int, str | None]]]
_KEYS_OF_AGGREGATES = ("sum", "avg", "min", "max")
_NUMERIC_OPS = ("", "eq", "ne", "gt", "gte", "lt", "lte", "in")


def unit_plan(model: Model, system: str) -> Plan:
    """For each entity, its fields whose unit differs under ``system`` (and table fields)."""
    out: Plan = {}
    for qual, ent in model.entities.items():
        fields: dict[str, tuple[str, str, int, str | None]] = {}
        for name, f in ent.fields.items():
            if f.type == "table":
                fields[name] = ("", "table", 0, ent.targets.get(name))
                continue
            unit = getattr(f, "unit", None)
            if f.type not in ("decimal", "float", "int") or unit is None:
                continue
            shown = display_unit(str(unit), system)
            try:
                if shown != unit:
                    convert(1, str(unit), str(shown))
            except UnitError:
                continue
            if shown != unit:
                fields[name] = (str(unit), f.type, int(getattr(f, "scale", 0) or 0), None)
        out[qual] = fields
    return out


def _value(value: Any, src: str, dst: str, kind: str, scale: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return value                                     # the API will say what is wrong
    converted = convert(number, src, dst)
    if kind == "float":
        return float(converted)
    step = Decimal(1).scaleb(-scale)
    out = converted.quantize(step, rounding=ROUND_HALF_EVEN)
    if kind == "int":
        return int(out)
    return format(out, "f") if isinstance(value, str) else float(out)


def _is_file_route(path: str) -> bool:
    """``/api/<module>/<entity>/<id>/files/<field>``: an attachment's upload or download."""
    parts = path.strip("/").split("/")
    return len(parts) == 6 and parts[0] == "api" and parts[4] == "files"


class UnitsMiddleware:
    """The WSGI wrapper; ``model`` gives each field's unit."""

    def __init__(self, app: Callable[..., Any], model: Model) -> None:
        self.app, self.model = app, model
        self.plans = {s: unit_plan(model, s) for s in SYSTEMS}

    def _entity(self, path: str) -> str | None:
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "api":
            qual = f"{parts[1]}.{parts[2]}"
            if qual in self.model.entities:
                return qual
        return None

    def record(self, plan: Plan, qual: str | None, rec: Any, *, inbound: bool) -> Any:
        if not isinstance(rec, dict) or qual is None:
            return rec
        for name, (unit, kind, scale, child) in plan.get(qual, {}).items():
            if name not in rec:
                continue
            if kind == "table":
                if isinstance(rec[name], list):
                    rec[name] = [self.record(plan, child, r, inbound=inbound) for r in rec[name]]
                continue
            shown = str(display_unit(unit, plan_system(self, plan)))
            src, dst = (shown, unit) if inbound else (unit, shown)
            rec[name] = _value(rec[name], src, dst, kind, scale)
        return rec

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        raw_query = environ.get("QUERY_STRING", "")
        if "HTTP_X_UNITS" not in environ and "units" not in raw_query:
            return self.app(environ, start_response)  # the common case: nothing to convert
        query = parse_qsl(raw_query, keep_blank_values=True)
        system = environ.get("HTTP_X_UNITS") or next((v for k, v in query if k == "units"), None)
        if any(k == "units" for k, _ in query):
            query = [(k, v) for k, v in query if k != "units"]
            environ["QUERY_STRING"] = urlencode(query)
        path = environ.get("PATH_INFO", "")
        qual = self._entity(path)
        meta = path.startswith("/api/meta")
        if system not in self.plans or (qual is None and not meta):
            return self.app(environ, start_response)
        plan = self.plans[system]
        file = _is_file_route(path)  # an attachment's bytes are never rewritten
        if file and environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        if qual is not None and query and not file:
            environ["QUERY_STRING"] = urlencode(self._filters(plan, system, qual, query))
        if qual is not None and environ.get("REQUEST_METHOD") in ("POST", "PUT", "PATCH") \
                and not file:
            self._convert_body(environ, plan, qual)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(self.app(environ, capture))
        headers = captured["headers"]
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        if ctype.startswith("application/json") and body:
            try:
                data = jsonio.loads(body)
            except ValueError:
                data = None
            if data is not None:
                data = self._meta(data, system) if meta else self._answer(data, plan, qual)
                body = jsonio.dumps(data, separators=None).encode()
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers += [("Content-Length", str(len(body))), ("X-Units", system)]
        start_response(captured["status"], headers)
        return [body]

    def _filters(self, plan: Plan, system: str, qual: str, query: list[tuple[str, str]]
                 ) -> list[tuple[str, str]]:
        """Filter values (``oil__gte=100``, ``oil__in=1,2``) to the stored unit."""
        out = []
        for key, value in query:
            name, _, op = key.partition("__")
            spec = plan.get(qual, {}).get(name)
            if spec is not None and spec[1] != "table" and op in _NUMERIC_OPS and value:
                unit, kind, scale, _child = spec
                shown = str(display_unit(unit, system))
                parts = value.split(",") if op == "in" else [value]
                value = ",".join(str(_value(p, shown, unit, kind, scale + 2)) for p in parts)
            out.append((key, value))
        return out

    def _convert_body(self, environ: dict[str, Any], plan: Plan, qual: str) -> None:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            data = jsonio.loads(raw) if raw.strip() else None
        except ValueError:  # the API answers it (a 422 naming the field for 1e400)
            data = None
        if isinstance(data, list):
            data = [self.record(plan, qual, r, inbound=True) for r in data]
        elif isinstance(data, dict):
            if isinstance(data.get("values"), dict) and "/actions/" in environ["PATH_INFO"]:
                self.record(plan, qual, data["values"], inbound=True)
            else:
                self.record(plan, qual, data, inbound=True)
        if data is not None:
            raw = jsonio.dumps(data, ensure_ascii=True, separators=None).encode()
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))

    def _answer(self, data: Any, plan: Plan, qual: str | None) -> Any:
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            for item in data["items"]:
                if isinstance(item, dict) and "group" in item:          # an aggregate
                    for key in _KEYS_OF_AGGREGATES:
                        if isinstance(item.get(key), dict):
                            self.record(plan, qual, item[key], inbound=False)
                else:
                    self.record(plan, qual, item, inbound=False)
            return data
        return self.record(plan, qual, data, inbound=False)

    def _meta(self, data: Any, system: str) -> Any:
        """``unit`` of every field in ``/api/meta`` answers, as the system shows it."""
        if isinstance(data, dict):
            for key, value in data.items():
                if key == "unit" and isinstance(value, str):
                    shown = str(display_unit(value, system))
                    try:
                        convert(1, value, shown)
                        data[key] = shown
                    except UnitError:
                        pass
                else:
                    self._meta(value, system)
        elif isinstance(data, list):
            for value in data:
                self._meta(value, system)
        return data


def plan_system(mw: UnitsMiddleware, plan: Plan) -> str:
    """The system a plan was built for."""
    return next(s for s, p in mw.plans.items() if p is plan)
