"""Every write path goes through one gate (``engine.api.gate.write``): a signed-in operator
of site ``sim_pad`` cannot move a record into site ``pad_b`` (which they cannot see) by
create, bulk create, PUT, PATCH or a workflow action; each refusal is a 403, audited, and
leaves nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.auth import PASSWORD, bearer
from test_workflow_auth import signed_in_app

from engine.audit import audit_table
from engine.auth.users import create_user

pytestmark = pytest.mark.integration

PAD_YAML = """
module: pads
entities:
  well:
    scope: self.site in user.sites
    fields:
      name: {type: string, max_length: 40, required: true}
      site: {type: string, max_length: 20}
      status: {type: enum, values: [draft, open], default: draft}
    permissions:
      operator: [read, create, update]
    workflow:
      field: status
      initial: draft
      states:
        draft: {label: {es: Borrador, en: Draft}}
        open: {label: {es: Abierto, en: Open}}
      transitions:
        - action: open
          from: [draft]
          to: open
        - action: reopen
          from: [open]
          to: open
"""


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[tuple[Any, dict[str, str], sa.Engine]]:
    """The signed-in client of operator ``otto`` (site sim_pad), and the engine."""
    app, model, engine, state = signed_in_app(db_url, tmp_path, PAD_YAML)
    with engine.begin() as conn:
        create_user(conn, model, username="otto", now=state.now(),
                    password_hash=state.passwords.hash(PASSWORD), roles=["operator"],
                    sites=["sim_pad"])
    c = app.test_client()
    r = c.post("/api/auth/login", json={"username": "otto", "password": PASSWORD})
    assert r.status_code == 200, r.json
    yield c, bearer(r.json["access_token"]), engine
    engine.dispose()


def _sites(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT site FROM pads_well ORDER BY id")).scalars())


def _denials(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit_table.c.detail).where(
            audit_table.c.action == "permission.denied").order_by(audit_table.c.id)).scalars())


def test_no_write_path_moves_a_record_out_of_the_callers_sites(env: Any) -> None:
    c, otto, engine = env
    r = c.post("/api/pads/well", json={"name": "W1", "site": "sim_pad"}, headers=otto)
    assert r.status_code == 201, r.json
    wid = r.json["id"]
    url = f"/api/pads/well/{wid}"

    attempts = [
        ("create", c.post("/api/pads/well", json={"name": "W2", "site": "pad_b"},
                          headers=otto)),
        ("bulk", c.post("/api/pads/well/bulk", json=[{"name": "W3", "site": "sim_pad"},
                                                     {"name": "W4", "site": "pad_b"}],
                        headers=otto)),
        ("put", c.put(url, json={"name": "W1", "site": "pad_b"}, headers=otto)),
        ("patch", c.patch(url, json={"site": "pad_b"}, headers=otto)),
        ("action", c.post(f"{url}/actions/open", json={"values": {"site": "pad_b"}},
                          headers=otto)),
    ]
    for path, r in attempts:
        assert r.status_code == 403, (path, r.json)
        assert "outside your scope" in r.json["message"], (path, r.json)
    assert _sites(engine) == ["sim_pad"]
    assert len(_denials(engine)) == len(attempts)
    # the record did not move state either, and the action works inside the scope
    r = c.get(url, headers=otto)
    assert r.json["status"] == "draft" and r.json["site"] == "sim_pad"
    r = c.post(f"{url}/actions/open", json={"values": {"name": "W1b"}}, headers=otto)
    assert r.status_code == 200 and r.json["status"] == "open", r.json
    with engine.connect() as conn:
        moves = conn.execute(sa.text("SELECT count(*) FROM campo_transition")).scalar_one()
    assert moves == 1


def test_a_workflow_action_on_a_record_outside_the_scope_is_404(env: Any) -> None:
    c, otto, engine = env
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO pads_well (name, site, status, created_at, "
                             "updated_at, version) VALUES ('B', 'pad_b', 'draft', "
                             "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"))
        wid = conn.execute(sa.text("SELECT id FROM pads_well")).scalar_one()
    r = c.post(f"/api/pads/well/{wid}/actions/open", headers=otto)
    assert r.status_code == 404, r.json
    assert c.delete(f"/api/pads/well/{wid}", headers=otto).status_code in (403, 404)
    assert _sites(engine) == ["pad_b"]
