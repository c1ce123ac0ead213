"""The model's rules enforced by the REST API, on SQLite and PostgreSQL: expression
defaults, fetch_from, stored and virtual computed fields (child-table aggregates), derived
fields refused on write, required_if / readonly_if, validations with es/en messages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.api import assert_error
from support.rules import RulesEnv, make_rules_env, seed

pytestmark = pytest.mark.integration


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> RulesEnv:
    e = make_rules_env(tmp_path / "project", db_url)
    yield e
    e.engine.dispose()


def _lines(ids: dict[str, int]) -> list[dict[str, object]]:
    return [{"item": ids["BOLT"], "description": "bolts", "qty": "4"},
            {"description": "labour", "qty": "2"}]


def test_create_derives_defaults_fetched_computed_and_virtual(env: RulesEnv) -> None:
    ids = seed(env)
    job = env.create("job", {"crew": ids["C1"], "lines": _lines(ids)})
    assert job["status"] == "draft"                       # workflow initial
    assert job["number"] == f"JOB-{dt.date.today().year}-0001"   # naming series
    assert job["due_on"] == (dt.date.today() + dt.timedelta(days=7)).isoformat()  # '=' default
    assert job["crew_name"] == "Alpha crew"               # fetch_from
    bolts, labour = job["lines"]
    assert bolts["unit_price"] == "2.50" and bolts["amount"] == "10.00"  # child fetch+compute
    assert labour["unit_price"] is None and labour["amount"] is None
    assert job["total"] == "10.00"                        # sum(self.lines.amount), stored
    assert job["line_count"] == 2 and job["crew_site"] == "PAD7"  # virtual, in the answer
    got = env.get(f"job/{job['id']}").json
    assert got == job
    page = env.get("job").json
    assert page["items"][0]["line_count"] == 2 and page["items"][0]["crew_site"] == "PAD7"
    # stored computed values can be filtered; virtual ones are not served with fields=
    assert [i["id"] for i in env.get("job?total__gte=10").json["items"]] == [job["id"]]
    assert env.get("job?total__gt=10").json["items"] == []
    assert "line_count" not in env.get("job?fields=total").json["items"][0]
    # an explicit value wins over the '=' default
    other = env.create("job", {"due_on": "2030-01-01"})
    assert other["due_on"] == "2030-01-01" and other["total"] == "0.00"
    assert other["line_count"] == 0 and other["crew_site"] is None and other["crew_name"] is None


def test_updates_recompute_and_fetch_when_the_link_changes(env: RulesEnv) -> None:
    ids = seed(env)
    job = env.create("job", {"crew": ids["C1"], "lines": _lines(ids)})
    url = f"job/{job['id']}"
    # PATCH a child table: amounts and the total follow
    lines = [dict(x) for x in job["lines"]]
    lines[1]["qty"] = "3"
    lines.append({"item": ids["PUMP"], "description": "pump", "qty": "1"})
    r = env.patch(url, {"lines": lines})
    assert r.status_code == 200, r.json
    assert r.json["total"] == "1210.00" and r.json["line_count"] == 3
    assert [x["id"] for x in r.json["lines"][:2]] == [x["id"] for x in job["lines"]]
    # PATCH of another field keeps the lines and the total
    r = env.patch(url, {"assigned_to": "ana"})
    assert r.status_code == 200 and r.json["total"] == "1210.00" and len(r.json["lines"]) == 3
    # the linked crew is renamed: the copy stays until the link changes
    assert env.patch(f"crew/{ids['C1']}", {"name": "Alpha renamed"}).status_code == 200
    r = env.patch(url, {"assigned_to": "bea"})
    assert r.json["crew_name"] == "Alpha crew"
    r = env.patch(url, {"crew": ids["C2"]})
    assert r.json["crew_name"] == "Bravo crew" and r.json["crew_site"] == "PAD9"
    r = env.patch(url, {"crew": None})
    assert r.json["crew_name"] is None and r.json["crew_site"] is None
    # PUT with the record as read (derived fields unchanged) is accepted and keeps them
    current = env.get(url).json
    r = env.client.put(f"/api/works/{url}", json=current)
    assert r.status_code == 200, r.json
    assert r.json["number"] == job["number"] and r.json["status"] == "draft"
    assert r.json["total"] == "1210.00"
    # PUT without the derived fields does not reset them
    body = {"lines": current["lines"], "assigned_to": "cy", "due_on": current["due_on"]}
    r = env.client.put(f"/api/works/{url}", json=body)
    assert r.status_code == 200, r.json
    assert r.json["number"] == job["number"] and r.json["status"] == "draft"
    assert r.json["total"] == "1210.00"


def test_derived_fields_are_refused_naming_the_field(env: RulesEnv) -> None:
    ids = seed(env)
    r = env.post("job", {"total": "5.00", "lines": _lines(ids)})
    body = assert_error(r, 422)
    assert "total" in body["errors"]["json"] and "computed" in body["errors"]["json"]["total"][0]
    job = env.create("job", {"lines": _lines(ids)})
    url = f"job/{job['id']}"
    for field, value in (("line_count", 7), ("status", "done"), ("number", "X-1"),
                         ("crew_name", "someone"), ("total", "1.00")):
        body = assert_error(env.patch(url, {field: value}), 422)
        assert list(body["errors"]["json"]) == [field], body
    assert "actions" in assert_error(env.patch(url, {"status": "done"}), 422)["message"]
    body = assert_error(env.post("job", {"number": "JOB-1999-0001"}), 422)
    assert "naming series" in body["errors"]["json"]["number"][0]
    lines = job["lines"]
    lines[0]["amount"] = "99.00"
    body = assert_error(env.patch(url, {"lines": lines}), 422)
    assert list(body["errors"]["json"]) == ["lines.0.amount"]
    # the same values as the server keeps are accepted (a form sends back what it read)
    assert env.patch(url, {"status": "draft", "total": "10", "line_count": 2}).status_code == 200
    assert env.get(url).json["version"] == 2


def test_validations_list_every_failed_rule_in_the_callers_language(env: RulesEnv) -> None:
    ids = seed(env)
    bad = {"kind": "corrective", "due_on": "2000-01-01",
           "lines": [{"item": ids["PUMP"], "description": "pumps", "qty": "9"},
                     {"description": "nothing", "qty": "0"}]}
    body = assert_error(env.post("job", bad), 422)
    errors = body["errors"]["json"]
    assert errors == {
        "cause": ["required while self.kind == 'corrective'"],
        "total": ["Total exceeds the cap"],
        "_rules": ["Due before it was created"],
        "lines.1.qty": ["Quantity must be positive"],
    }
    es = assert_error(env.post("job", bad, headers={"Accept-Language": "es-AR,es;q=0.9"}), 422)
    assert es["errors"]["json"]["total"] == ["El total supera el tope"]
    assert es["errors"]["json"]["lines.1.qty"] == ["La cantidad debe ser positiva"]
    assert es["errors"]["json"]["cause"] == ["obligatorio cuando self.kind == 'corrective'"]
    # bulk: errors by row index, nothing created
    r = env.post("job/bulk", [{"lines": _lines(ids)}, bad])
    body = assert_error(r, 422)
    assert list(body["errors"]["json"]) == ["1"]
    assert env.get("job?count=exact").json["count"] == 0
    # a failed rule on update leaves the record as it was
    job = env.create("job", {"lines": _lines(ids)})
    r = env.patch(f"job/{job['id']}", {"lines": [{"item": ids["PUMP"], "description": "p",
                                                   "qty": "10"}]})
    assert assert_error(r, 422)["errors"]["json"] == {"total": ["Total exceeds the cap"]}
    assert env.get(f"job/{job['id']}").json["total"] == "10.00"
    # bulk of valid records: numbered in order
    r = env.post("job/bulk", [{"lines": _lines(ids)}, {"kind": "corrective", "cause": "leak"}])
    assert r.status_code == 201, r.json
    numbers = [i["number"] for i in r.json["items"]]
    assert [n[-4:] for n in numbers] == ["0002", "0003"]


def test_required_if_and_readonly_if_are_enforced(env: RulesEnv) -> None:
    job = env.create("job", {"kind": "corrective", "cause": "worn seal"})
    url = f"job/{job['id']}"
    body = assert_error(env.patch(url, {"cause": None}), 422)
    assert body["errors"]["json"] == {"cause": ["required while self.kind == 'corrective'"]}
    assert env.patch(url, {"kind": "preventive", "cause": None}).status_code == 200
    assert env.patch(url, {"kind": "corrective", "cause": "rust", "locked": True}
                     ).status_code == 200
    # readonly_if is judged on the stored record: locked now, cause cannot change ...
    body = assert_error(env.patch(url, {"cause": "other"}), 422)
    assert body["errors"]["json"] == {"cause": ["cannot be changed while self.locked"]}
    # ... not even together with unlocking; unlocking first works
    assert_error(env.patch(url, {"locked": False, "cause": "other"}), 422)
    assert env.patch(url, {"cause": "rust"}).status_code == 200  # unchanged value: fine
    assert env.patch(url, {"locked": False}).status_code == 200
    assert env.patch(url, {"cause": "other"}).json["cause"] == "other"


def test_meta_serves_rules_as_expression_texts(env: RulesEnv) -> None:
    meta = env.client.get("/api/meta/works/job").json
    fields = {f["name"]: f for f in meta["fields"]}
    cause = fields["cause"]
    assert cause["visible_if"] == "self.kind == 'corrective'"
    assert cause["required_if"] == "self.kind == 'corrective'"
    assert cause["readonly_if"] == "self.locked"
    assert fields["total"]["computed"] == "sum(self.lines.amount)" and fields["total"]["readonly"]
    assert fields["line_count"]["stored"] is False
    assert fields["crew_name"]["fetch_from"] == "crew.name"
    assert fields["due_on"]["default_expression"] == "add_days(today(), 7)"
    assert fields["status"]["workflow_state"] and fields["status"]["readonly"]
    assert fields["number"]["readonly"] and not fields["kind"]["readonly"]
    line_fields = {f["name"]: f for f in fields["lines"]["table"]["fields"]}
    assert line_fields["amount"]["computed"] == "self.qty * self.unit_price"
    wf = meta["workflow"]
    assert wf["field"] == "status" and wf["initial"] == "draft"
    approve = wf["transitions"][0]
    assert approve == {"action": "approve", "from": ["draft"], "to": "approved",
                       "roles": ["supervisor"], "guard": "self.total > 0",
                       "requires": ["assigned_to"],
                       "label": {"es": "Aprobar", "en": "Approve"}}
    states = {s["name"]: s for s in wf["states"]}
    assert states["done"]["editable"] == [] and states["approved"]["editable"] is None
    assert meta["series"] == {"field": "number", "template": "JOB-{YYYY}-{####}"}
    assert meta["validations"][0]["message"] == {"es": "El total supera el tope",
                                                 "en": "Total exceeds the cap"}
    # the input schema does not require what the server fills
    spec = env.client.get("/api/openapi.json").json
    schema = spec["components"]["schemas"]["WorksJobInput"]
    assert "number" not in schema.get("required", [])


_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                    st.floats(allow_nan=False), st.text(max_size=20),
                    st.sampled_from(["draft", "done", "2025-01-01", "1e400", "10.00", "1"]))
_LINE = st.dictionaries(st.sampled_from(["id", "item", "description", "qty", "unit_price",
                                         "amount"]), _SCALAR, max_size=6)
_BODY = st.dictionaries(st.sampled_from([
    "crew", "crew_name", "kind", "cause", "locked", "assigned_to", "due_on", "total",
    "line_count", "crew_site", "status", "number", "version", "lines"]),
    st.one_of(_SCALAR, st.lists(_LINE, max_size=3)), max_size=8)


def test_random_bodies_never_reach_a_500(sqlite_url: str, tmp_path: Path) -> None:
    env = make_rules_env(tmp_path / "project", sqlite_url)
    ids = seed(env)
    job = env.create("job", {"crew": ids["C1"], "lines": _lines(ids)})

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_BODY, st.sampled_from(["post", "patch", "put", "approve", "cancel"]))
    def check(body: dict[str, object], how: str) -> None:
        url = f"/api/works/job/{job['id']}"
        if how == "post":
            r = env.client.post("/api/works/job", json=body)
        elif how in ("patch", "put"):
            r = env.client.open(url, method=how.upper(), json=body)
        else:
            r = env.client.post(f"{url}/actions/{how}", json={"values": body})
        assert r.status_code < 500, (how, body, r.json)

    check()
    env.engine.dispose()
