"""Pure parts of engine.auth and engine.audit: password policy and hashing, audit diffs,
principal roles and permissions, user-name and role checks, API key format."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from engine.audit import diff, jsonable
from engine.auth import Principal
from engine.auth.apikeys import _KEY
from engine.auth.passwords import PasswordPolicyError, Passwords, check_password_policy
from engine.auth.state import DEFAULT_PUBLIC
from engine.auth.users import IdentityError, check_roles, check_sites, check_username
from metamodel import load

CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def test_password_policy() -> None:
    check_password_policy("eight-ch", "bob")
    for bad, why in (("short", "at least 8"), ("x" * 1025, "at most 1024"),
                     ("Operator1", "differ from the user name")):
        with pytest.raises(PasswordPolicyError, match=why):
            check_password_policy(bad, "operator1")


def test_hash_is_argon2id_and_verifies() -> None:
    pw = Passwords(CHEAP)
    h = pw.hash("secret-pass")
    assert h.startswith("$argon2id$")
    assert pw.verify(h, "secret-pass") == (True, None)
    assert pw.verify(h, "wrong-pass") == (False, None)
    assert pw.verify(None, "secret-pass") == (False, None)  # unknown user: dummy hash
    assert pw.verify("not-a-hash", "secret-pass") == (False, None)
    old = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("secret-pass")
    ok, upgraded = pw.verify(old, "secret-pass")
    assert ok and upgraded is not None and "m=8192" in upgraded


def test_diff_keeps_only_changed_fields_and_serialises() -> None:
    class Kind(enum.Enum):
        WELL = "well"

    u = uuid.UUID(int=1)
    before = {"a": 1, "b": decimal.Decimal("1.10"), "c": "x", "updated_at": "t1", "version": 1}
    after = {"a": 1, "b": decimal.Decimal("1.20"), "d": dt.date(2026, 5, 1),
             "updated_at": "t2", "version": 2, "k": Kind.WELL, "u": u}
    assert diff(before, after) == (
        {"b": "1.10", "c": "x"},
        {"b": "1.20", "d": "2026-05-01", "k": "well", "u": str(u)})
    assert diff(None, {"a": 1, "created_at": "t"}) == (None, {"a": 1})
    assert diff({"a": 1}, None) == ({"a": 1}, None)
    assert diff({"a": 1}, {"a": 1}) == ({}, {})
    assert diff(None, None) == (None, None)
    assert jsonable({"f": float("nan"), "t": (1, b"\x00"), "i": dt.datetime(2026, 1, 1)}) == {
        "f": "nan", "t": [1, "AA=="], "i": "2026-01-01T00:00:00"}


def _model(tmp_path: Path):  # type: ignore[no-untyped-def]
    mod = tmp_path / "modules"
    mod.mkdir()
    (mod / "m.yaml").write_text("""
module: plant
roles:
  engineer: {inherits: [operator]}
  chief: {inherits: [engineer, supervisor]}
entities:
  gauge:
    fields:
      code: {type: string, max_length: 20}
    permissions:
      operator: [read, update]
      supervisor: [read, create, update, delete]
  secret:
    fields:
      code: {type: string, max_length: 20}
    permissions:
      admin: [read]
""")
    return load(tmp_path)


def test_principal_permissions_and_sites(tmp_path: Path) -> None:
    model = _model(tmp_path)
    roles = model.role_closure("chief")
    assert roles == {"chief", "engineer", "operator", "supervisor"}
    p = Principal(1, "ana", roles, frozenset({"chief"}), frozenset({"pad7"}))
    assert p.permissions(model) == {"plant.gauge": ["create", "delete", "read", "update"]}
    assert p.has_role("operator") and not p.is_admin and not p.all_sites
    assert p.may_see_site("pad7") and not p.may_see_site("pad9") and p.may_see_site(None)
    star = Principal(2, "sue", frozenset({"viewer"}), frozenset({"viewer"}), frozenset({"*"}))
    assert star.all_sites and star.permissions(model) == {}
    admin = Principal(3, "root", frozenset({"admin"}), frozenset({"admin"}), frozenset())
    assert admin.all_sites and admin.may_see_site("anywhere")


def test_names_roles_and_sites_are_checked(tmp_path: Path) -> None:
    model = _model(tmp_path)
    assert check_username("  Ana.Perez@Pad7 ") == "ana.perez@pad7"
    for bad in ("", "-ana", "ana perez", "a" * 151, "ana;drop"):
        with pytest.raises(IdentityError) as err:
            check_username(bad)
        assert err.value.field == "username"
    assert check_roles(model, ["engineer", "admin", "engineer"]) == ["admin", "engineer"]
    with pytest.raises(IdentityError, match="did you mean 'engineer'"):
        check_roles(model, ["enginer"])
    assert check_sites(["pad7", "*", "pad7"]) == ["*", "pad7"]
    with pytest.raises(IdentityError):
        check_sites(["pad 7"])


def test_api_key_format() -> None:
    assert _KEY.match("campo_0123456789ab_" + "A" * 43)
    assert not _KEY.match("campo_0123456789ab_" + "A" * 42)
    assert not _KEY.match("campo_XYZ456789abc_" + "A" * 43)


def test_public_endpoints_are_exactly_the_documented_ones() -> None:
    assert set(DEFAULT_PUBLIC) == {"/api/auth/login", "/api/auth/refresh", "/api/health",
                                   "/api/openapi.json", "/api/docs", "/api/docs/"}
