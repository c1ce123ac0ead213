"""A field hidden from the caller (``hidden_for``) reads exactly like a missing one in every
query error: filters, ``sort``, ``fields``, ``expand``, aggregate functions and ``group_by``
name it as unknown and never list it among the "expected one of" choices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.rbac import FIELD_YAML, secured_app, seed_field

pytestmark = pytest.mark.integration

#: (URL template, the parameter named in errors.query); ``{f}`` is the field asked for
CASES = [
    ("/api/field/asset?{f}=1", "{f}"),
    ("/api/field/asset?{f}__gt=1", "{f}__gt"),
    ("/api/field/asset?sort=-{f}", "sort"),
    ("/api/field/asset?fields=tag,{f}", "fields"),
    ("/api/field/asset?expand={f}", "expand"),
    ("/api/field/asset/export?sort={f}", "sort"),
    ("/api/field/asset/aggregate?sum={f}", "sum"),
    ("/api/field/asset/aggregate?max={f}", "max"),
    ("/api/field/asset/aggregate?group_by={f}", "group_by"),
    ("/api/field/asset/aggregate?{f}=1", "{f}"),
]


def _choices(message: str) -> str:
    assert "expected one of " in message, message
    return message.split("expected one of ", 1)[1].split(";")[0]


def test_hidden_fields_are_never_hinted(project: Any, sqlite_url: str, tmp_path: Path) -> None:
    s = secured_app(project({"modules/field.yaml": FIELD_YAML}), sqlite_url, tmp_path)
    seed_field(s)
    for template, param in CASES:
        hidden = s.call("viewer", "GET", template.format(f="cost"))
        missing = s.call("viewer", "GET", template.format(f="nosuchfield"))
        assert hidden.status_code == missing.status_code == 400, (template, hidden.json)
        assert list(hidden.json["errors"]["query"]) == [param.format(f="cost")], template
        # the same sentence as for a field that does not exist, and no hidden name hinted
        assert hidden.json["message"].replace("cost", "X").split(";")[0] == \
            missing.json["message"].replace("nosuchfield", "X").split(";")[0], template
        assert _choices(hidden.json["message"]) == _choices(missing.json["message"])
        assert "cost" not in _choices(hidden.json["message"]), template
        # a caller who may see the field gets it among the choices
        sup = s.call("supervisor", "GET", template.format(f="nosuchfield"))
        assert "cost" in _choices(sup.json["message"]), template
    s.engine.dispose()
