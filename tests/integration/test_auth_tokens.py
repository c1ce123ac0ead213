"""Tokens: expiry, refresh rotation, re-use detection, logout, revocation, forged tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support.auth import SECRET, Harness, bearer

from engine.auth import decode_bearer

pytest_plugins = ("support.auth",)  # fixtures: harness, auth_model

pytestmark = pytest.mark.integration


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _sig = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(header))),
            json.loads(base64.urlsafe_b64decode(pad(payload))))


def _hs256(header: dict[str, Any], payload: dict[str, Any], key: bytes,
           digest: Any = hashlib.sha256) -> str:
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    sig = hmac.new(key, signing.encode("ascii"), digest).digest()
    return f"{signing}.{_b64(sig)}"


def test_login_gives_tokens_that_open_protected_routes(harness: Harness) -> None:
    t = harness.tokens("bob")
    assert t["token_type"] == "Bearer"
    assert t["expires_in"] == 15 * 60 and t["refresh_expires_in"] == 7 * 86400
    header, claims = _parts(t["access_token"])
    assert header["alg"] == "HS256"
    assert claims["exp"] - claims["iat"] == 900 and claims["sid"] == t["session_id"]
    r = harness.get("/api/test/ping", t["access_token"])
    assert r.status_code == 200
    assert r.json == {"user": "bob", "roles": ["operator"], "sites": ["pad7"], "service": False}


def test_access_token_expires_and_refresh_still_works(harness: Harness) -> None:
    harness.clock.advance(minutes=-16)  # issued 16 minutes ago: 15-minute token is dead
    t = harness.tokens("bob")
    r = harness.get("/api/test/ping", t["access_token"])
    assert r.status_code == 401
    assert r.json == {"code": 401, "status": "Unauthorized", "message": "token expired"}
    harness.clock.advance(minutes=16)
    r = harness.client.post("/api/auth/refresh", headers=bearer(t["refresh_token"]))
    assert r.status_code == 200
    assert harness.get("/api/test/ping", r.json["access_token"]).status_code == 200


def test_refresh_token_expires_with_the_session(harness: Harness) -> None:
    harness.clock.advance(days=-8)
    t = harness.tokens("bob")
    harness.clock.advance(days=8)
    r = harness.client.post("/api/auth/refresh", headers=bearer(t["refresh_token"]))
    assert r.status_code == 401 and r.json["message"] == "token expired"


def test_refresh_rotates_and_reuse_revokes_the_whole_session(harness: Harness) -> None:
    t1 = harness.tokens("erin")
    r = harness.client.post("/api/auth/refresh", headers=bearer(t1["refresh_token"]))
    assert r.status_code == 200
    t2 = r.json
    assert t2["session_id"] == t1["session_id"]
    assert t2["refresh_token"] != t1["refresh_token"]
    assert _parts(t2["refresh_token"])[1]["jti"] != _parts(t1["refresh_token"])[1]["jti"]
    # the rotated refresh token comes back: a thief (or the owner after theft) -> kill session
    r = harness.client.post("/api/auth/refresh", headers=bearer(t1["refresh_token"]))
    assert r.status_code == 401
    assert r.json["message"] == "refresh token already used; the session has been revoked"
    for token in (t1["access_token"], t2["access_token"]):
        r = harness.get("/api/test/ping", token)
        assert r.status_code == 401
        assert r.json["message"] == "session revoked (refresh token reuse)"
    r = harness.client.post("/api/auth/refresh", headers=bearer(t2["refresh_token"]))
    assert r.status_code == 401
    rows = harness.audit_rows(action="session.reuse")
    assert [(x["username"], x["record_id"]) for x in rows] == [("erin", t1["session_id"])]


def test_logout_revokes_access_and_refresh(harness: Harness) -> None:
    t = harness.tokens("bob")
    r = harness.client.post("/api/auth/logout", headers=bearer(t["access_token"]))
    assert r.status_code == 204
    r = harness.get("/api/test/ping", t["access_token"])
    assert r.status_code == 401 and r.json["message"] == "session revoked (logout)"
    r = harness.client.post("/api/auth/refresh", headers=bearer(t["refresh_token"]))
    assert r.status_code == 401
    other = harness.tokens("bob")  # a second session is untouched by the first's logout
    assert harness.get("/api/test/ping", other["access_token"]).status_code == 200


def test_session_revoked_by_admin_and_disabled_user_are_rejected(harness: Harness) -> None:
    bob = harness.tokens("bob")
    admin = harness.tokens("alice")["access_token"]
    r = harness.client.delete(f"/api/auth/sessions/{bob['session_id']}", headers=bearer(admin))
    assert r.status_code == 204
    r = harness.get("/api/test/ping", bob["access_token"])
    assert r.status_code == 401 and r.json["message"] == "session revoked (revoked by admin)"
    erin = harness.tokens("erin")["access_token"]
    r = harness.client.patch(f"/api/auth/users/{harness.users['erin']}",
                             json={"disabled": True}, headers=bearer(admin))
    assert r.status_code == 200
    assert harness.get("/api/test/ping", erin).status_code == 401


def test_wrong_token_type_is_rejected(harness: Harness) -> None:
    t = harness.tokens("bob")
    r = harness.get("/api/test/ping", t["refresh_token"])
    assert r.status_code == 401 and r.json["message"] == "an access token is required"
    r = harness.client.post("/api/auth/refresh", headers=bearer(t["access_token"]))
    assert r.status_code == 401 and r.json["message"] == "a refresh token is required"


def test_tampered_and_forged_tokens_are_rejected(harness: Harness) -> None:
    t = harness.tokens("bob")
    header, claims = _parts(t["access_token"])
    good_sig = t["access_token"].split(".")[2]
    escalated = {**claims, "sub": str(harness.users["alice"])}
    tampered = ".".join([_b64(json.dumps(header).encode()),
                         _b64(json.dumps(escalated).encode()), good_sig])
    alg_none = ".".join([_b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()),
                         _b64(json.dumps(escalated).encode()), ""])
    wrong_key = _hs256(header, escalated, b"another-secret-" + b"x" * 40)
    # the right secret, but an algorithm the server does not accept
    hs512 = _hs256({"alg": "HS512", "typ": "JWT"}, escalated, SECRET.encode(), hashlib.sha512)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs256 = pyjwt.encode(escalated, rsa_key, algorithm="RS256")
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    # HS/RS confusion: HMAC-sign with the RSA public key as if it were the shared secret
    confused = _hs256({"alg": "HS256", "typ": "JWT"}, escalated, public_pem)
    garbage = "not.a.token"
    for forged in (tampered, alg_none, wrong_key, hs512, rs256, confused, garbage):
        r = harness.get("/api/test/ping", forged)
        assert r.status_code == 401, forged
        assert r.json == {"code": 401, "status": "Unauthorized", "message": "invalid token"}
        assert decode_bearer_in(harness, forged) is None
    # the genuine token still works and names bob, not alice
    assert harness.get("/api/test/ping", t["access_token"]).json["user"] == "bob"


def test_token_for_another_users_session_is_rejected(harness: Harness) -> None:
    bob = harness.tokens("bob")
    _h, claims = _parts(bob["access_token"])
    # correctly signed (the secret leaked) but naming alice inside bob's session
    forged = pyjwt.encode({**claims, "sub": str(harness.users["alice"])}, SECRET,
                          algorithm="HS256")
    r = harness.get("/api/test/ping", forged)
    assert r.status_code == 401


def decode_bearer_in(h: Harness, token: str) -> Any:
    with h.app.app_context():
        return decode_bearer(token)


def test_decode_bearer_for_websockets(harness: Harness) -> None:
    t = harness.tokens("bob")
    found = decode_bearer_in(harness, t["access_token"])
    assert found is not None and found[1].username == "bob"
    assert decode_bearer_in(harness, t["refresh_token"]) is None
    harness.client.post("/api/auth/logout", headers=bearer(t["access_token"]))
    assert decode_bearer_in(harness, t["access_token"]) is None
