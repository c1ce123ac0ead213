"""ERP workflow transitions notify through a ``notify/`` hook: the outbox row is written in
the transition's transaction (none when the transition is refused) and delivered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.rules import Hooks, RulesEnv, seed
from test_notify_support import Receiver, free_port

from engine.api import create_app
from engine.db import build_metadata, create_engine_for
from engine.notify.tables import notification_table
from engine.rules import load_project
from engine.settings import Settings
from engine.wiring import alarms as wiring

pytestmark = pytest.mark.integration


def test_workflow_transition_notifies_once_through_a_hook(tmp_path: Path, db_url: str) -> None:
    from support.rules import WORKS_YAML

    root = tmp_path / "project"
    (root / "modules").mkdir(parents=True)
    (root / "modules" / "works.yaml").write_text(WORKS_YAML, encoding="utf-8")
    port = free_port()
    (root / "notify").mkdir()
    (root / "notify" / "hooks.yaml").write_text(f"""
channels:
  fin: {{type: webhook, url: 'http://127.0.0.1:{port}/wf'}}
hooks:
  job_approved:
    entity: works.job
    action: approve
    channels: [fin]
    message: {{es: 'Trabajo {{record}} aprobado', en: 'Job {{record}} approved'}}
""")
    model = load_project(root)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    settings = Settings(project=root, data_dir=tmp_path)
    hooks = Hooks()
    record_change = wiring.workflow_notifier(settings, engine, hooks.record_change)
    assert record_change is not hooks.record_change
    app = create_app(model, engine, Settings(max_page_size=50, default_page_size=20),
                     authorize=hooks.authorize, current_user=hooks.current_user,
                     current_roles=hooks.current_roles, row_filter=hooks.row_filter,
                     record_change=record_change)
    env = RulesEnv(app, app.test_client(), engine, model, hooks)
    ids = seed(env)
    job = env.create("job", {"crew": ids["C1"], "assigned_to": "ana", "lines": [
        {"item": ids["BOLT"], "description": "bolts", "qty": "4"}]})
    hooks.roles = frozenset({"operator"})
    r = env.client.post(f"/api/works/job/{job['id']}/actions/approve", json={})
    assert r.status_code == 403
    hooks.roles = frozenset({"supervisor"})
    r = env.client.post(f"/api/works/job/{job['id']}/actions/approve",
                        json={"version": job["version"]})
    assert r.status_code == 200, r.json

    def rows() -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return [dict(x) for x in conn.execute(sa.select(notification_table)).mappings()]

    (row,) = rows()  # the refused transition wrote none
    assert row["kind"] == "workflow" and row["payload"]["message"]["en"] == \
        f"Job {job['id']} approved"
    receiver = Receiver(port)
    receiver.start()
    service = wiring.notification_service(settings, engine)
    assert service is not None and service.deliver_due() == 1
    receiver.stop()
    assert len(receiver.got) == 1 and rows()[0]["status"] == "sent"
    engine.dispose()
