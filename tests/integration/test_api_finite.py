"""Non-finite numbers (issue 8.10): refused where they enter, never written in an answer.

A JSON number beyond a double (``1e400``) used to be read as ``inf``, stored in a ``json``
field on SQLite and served as bare ``Infinity`` (not JSON) in every GET, list and export;
a float ``sum`` that overflowed on SQLite did the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import marshmallow as ma
import pytest
import sqlalchemy as sa
from flask_smorest import Blueprint
from support.api import PLANT_YAML, ApiEnv, assert_error, make_env

pytestmark = pytest.mark.integration


def _strict(text: str | bytes) -> Any:
    """Parse as a strict JSON reader would (no NaN/Infinity words)."""
    def refuse(word: str) -> Any:
        raise AssertionError(f"{word} in an answer")
    return json.loads(text, parse_constant=refuse)


class _Echo(ma.Schema):
    rate = ma.fields.Float(required=True)


def _echo_blueprint() -> Blueprint:
    blp = Blueprint("echo", __name__, url_prefix="/api/echo")

    @blp.route("", methods=["POST"])
    @blp.arguments(_Echo)
    def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    return blp


@pytest.fixture
def env(project, db_url: str) -> Iterator[ApiEnv]:  # type: ignore[no-untyped-def]
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), db_url,
                 extra_blueprints=[_echo_blueprint()])
    yield e
    e.engine.dispose()


def _post(env: ApiEnv, url: str, raw: str, method: str = "post") -> Any:
    return getattr(env.client, method)(url, data=raw, content_type="application/json")


@pytest.mark.parametrize("raw, where", [
    ('{"tag": "A-1", "name": "a", "attrs": 1e400}', ["attrs"]),
    ('{"tag": "A-1", "name": "a", "attrs": {"x": [1, -1E+999]}}', ["attrs"]),
    ('{"tag": "A-1", "name": "a", "rate": 1e309}', ["rate"]),
    ('{"tag": "A-1", "name": "a", "depth_m": 1e400}', ["depth_m"]),
])
def test_a_number_beyond_a_double_is_422_naming_the_field(env: ApiEnv, raw: str,
                                                         where: list[str]) -> None:
    body = assert_error(_post(env, "/api/plant/equipment", raw), 422)
    assert list(body["errors"]["json"]) == where, body
    assert "1.8e308" in json.dumps(body["errors"])
    with env.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM plant_equipment")).scalar() == 0


def test_every_write_path_refuses_them(env: ApiEnv) -> None:
    rec = env.create("equipment", {"tag": "A-1", "name": "a", "attrs": {"x": 1}})
    url = f"/api/plant/equipment/{rec['id']}"
    for method in ("patch", "put"):
        raw = ('{"tag": "A-1", "name": "a", "attrs": {"deep": {"er": 1e400}}, '
               f'"version": {rec["version"]}}}')
        body = assert_error(_post(env, url, raw, method), 422)
        assert list(body["errors"]["json"]) == ["attrs"]
        assert "deep.er" in body["errors"]["json"]["attrs"][0]
    bulk = '[{"tag": "B-1", "name": "b"}, {"tag": "B-2", "name": "b", "attrs": 1e400}]'
    body = assert_error(_post(env, "/api/plant/equipment/bulk", bulk), 422)
    assert body["errors"]["json"] == {"1": {"attrs": [body["errors"]["json"]["1"]["attrs"][0]]}}
    assert env.client.get(url).json["attrs"] == {"x": 1}


def test_webargs_bodies_refuse_them_too(env: ApiEnv) -> None:
    body = assert_error(_post(env, "/api/echo", '{"rate": 1e400}'), 422)
    assert list(body["errors"]["json"]) == ["rate"]
    assert env.client.post("/api/echo", json={"rate": 1.5}).json == {"rate": 1.5}
    assert_error(_post(env, "/api/echo", '{"rate": NaN}'), 400)
    assert_error(_post(env, "/api/echo", '{"rate": '), 400)


def test_a_stored_infinity_is_never_served(env: ApiEnv) -> None:
    """A row written before the checks (or by another program) holding infinity."""
    rec = env.create("equipment", {"tag": "A-1", "name": "a", "rate": 2.5})
    inf = "'Infinity'::float8" if env.engine.dialect.name == "postgresql" else "9e999"
    with env.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE plant_equipment SET rate = {inf}"))
    for url in (f"/api/plant/equipment/{rec['id']}", "/api/plant/equipment",
                "/api/plant/equipment/export?format=json",
                "/api/plant/equipment/aggregate?max=rate"):
        r = env.client.get(url)
        assert r.status_code == 200, (url, r.data[:300])
        assert b"Infinity" not in r.data and b"NaN" not in r.data, url
        _strict(r.data)
    assert env.client.get(f"/api/plant/equipment/{rec['id']}").json["rate"] is None
    csv = env.client.get("/api/plant/equipment/export?format=csv&fields=tag,rate").data
    assert csv.decode().splitlines()[1] == f"{rec['id']},A-1,"


@pytest.mark.parametrize("fn", ["sum", "avg"])
def test_a_float_aggregate_that_overflows_is_422_naming_it(env: ApiEnv, fn: str) -> None:
    for i in range(3):
        env.create("equipment", {"tag": f"A-{i}", "name": "a", "rate": 1.5e308})
    r = env.client.get(f"/api/plant/equipment/aggregate?{fn}=rate")
    if fn == "avg" and r.status_code == 200:  # a database that averages without overflow
        assert _strict(r.data)["items"][0]["avg"]["rate"] == pytest.approx(1.5e308)
        return
    body = assert_error(r, 422)
    assert list(body["errors"]["query"]) == [fn], body
    assert b"Infinity" not in r.data
    ok = env.client.get(f"/api/plant/equipment/aggregate?{fn}=rate&tag=A-1")
    assert ok.status_code == 200 and _strict(ok.data)["items"][0][fn]["rate"] == 1.5e308
