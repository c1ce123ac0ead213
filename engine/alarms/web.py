"""The alarm API: the active list, the journal, the KPIs and the operator actions.

- ``GET /api/alarms/active?site=&area=&priority=&state=&asset=&alarm=``: every alarm not
  normal, critical first, then the newest first; only the caller's sites;
- ``GET /api/alarms/journal?alarm=&site=&area=&priority=&action=&user=&from=&to=&page=``;
- ``GET /api/alarms/kpi?from=&to=&site=&area=&operators=``: ISA-18.2 KPIs beside targets;
- ``POST /api/alarms/{acknowledge,shelve,unshelve,out_of_service,in_service,reset}`` with
  ``{"alarms": [...], "comment": ..., "reason": ..., "minutes": ... | "until": ...}``:
  checked against the rule's roles (from YAML) and the caller's sites, applied by the
  engine, one audit row per alarm (``alarm.<action>``).

The views read states and journal from the database (so a web process apart from the
runtime serves them too) and send actions to the engine through :class:`Actions`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields, validate

from engine.audit import record
from engine.auth import current_principal, get_state
from engine.auth.access import record_denial
from engine.auth.errors import fail
from metamodel.tags import TagModel, compile_pattern

from .engine import ACTIONS
from .events import PRIORITY_RANK, event_of
from .kpi import Annunciation, kpis
from .store import from_row, journal_json, journal_table, state_table

log = logging.getLogger(__name__)
Actions = Callable[..., list[dict[str, Any]]]
MAX_ALARMS_PER_ACTION = 500


class ActiveQuery(Schema):
    site = fields.String()
    area = fields.String()
    priority = fields.String(validate=validate.OneOf(list(PRIORITY_RANK)))
    state = fields.String()
    asset = fields.String()
    alarm = fields.String(metadata={"description": "alarm path pattern (* one segment, ** any)"})


class JournalQuery(ActiveQuery):
    action = fields.String()
    user = fields.String()
    from_ = fields.AwareDateTime(data_key="from", default_timezone=dt.UTC)
    to = fields.AwareDateTime(default_timezone=dt.UTC)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class KpiQuery(Schema):
    from_ = fields.AwareDateTime(data_key="from", default_timezone=dt.UTC)
    to = fields.AwareDateTime(default_timezone=dt.UTC)
    site = fields.String()
    area = fields.String()
    operators = fields.Integer(validate=validate.Range(min=1, max=1000), metadata={
        "description": "operators on duty (default: the sites' alarm_settings.operators)"})


class ActionBody(Schema):
    alarms = fields.List(fields.String(validate=validate.Length(min=1, max=255)),
                         required=True, validate=validate.Length(min=1,
                                                                 max=MAX_ALARMS_PER_ACTION))
    comment = fields.String(validate=validate.Length(max=1000), load_default=None)
    reason = fields.String(validate=validate.Length(min=1, max=500), load_default=None)
    minutes = fields.Float(validate=validate.Range(min=0.1, max=60 * 24 * 30),
                           load_default=None)
    until = fields.AwareDateTime(default_timezone=dt.UTC, load_default=None)


@dataclass
class AlarmsWeb:
    """What the views need: the rules, the database and a way to reach the engine."""

    tags: TagModel
    engine: sa.Engine
    #: the engine's ``act`` (None when no alarm engine runs in reach: actions answer 503)
    actions: Actions | None = None
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def visible(self, principal: Any, path: str) -> bool:
        rule = self.tags.alarms.get(path)
        return rule is not None and principal.may_see_site(rule.site)

    def current(self, principal: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """The active list for the caller, filtered, critical first then newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(state_table).where(
                state_table.c.state != "normal")).mappings().all()
        rx = compile_pattern(args["alarm"]) if args.get("alarm") else None
        out = []
        for row in rows:
            rule = self.tags.alarms.get(row["alarm"])
            if rule is None or not principal.may_see_site(rule.site):
                continue
            if any(args.get(k) and args[k] != v for k, v in (
                    ("site", rule.site), ("area", rule.area), ("priority", rule.priority),
                    ("state", row["state"]), ("asset", rule.asset))):
                continue
            if rx is not None and not rx.match(rule.path):
                continue
            out.append(event_of(None, rule, from_row(row)))
        out.sort(key=lambda e: e.get("raised_at") or e.get("ts") or "", reverse=True)
        out.sort(key=lambda e: PRIORITY_RANK.get(e["priority"], 9))
        return out


def _sites_clause(principal: Any) -> Any:
    if principal.all_sites:
        return sa.true()
    return journal_table.c.site.in_(sorted(principal.sites))


def build_blueprint(web: AlarmsWeb) -> Blueprint:
    """The ``/api/alarms`` blueprint."""
    blp = Blueprint("alarms", __name__, url_prefix="/api/alarms",
                    description="Alarms after ISA-18.2: active list, journal, KPIs, actions")

    @blp.route("/active")
    @blp.arguments(ActiveQuery, location="query")
    def active(args: dict[str, Any]) -> dict[str, Any]:
        """Alarms not normal, critical first then newest first (the caller's sites)."""
        items = web.current(current_principal(), args)
        return {"items": items, "count": len(items)}

    @blp.route("/journal")
    @blp.arguments(JournalQuery, location="query")
    def journal(args: dict[str, Any]) -> dict[str, Any]:
        """Every transition (alarm, from, to, value, limit, time, user, comment), newest first."""
        p = current_principal()
        t = journal_table
        cond = [_sites_clause(p)]
        for key, col in (("site", t.c.site), ("area", t.c.area), ("priority", t.c.priority),
                         ("action", t.c.action), ("user", t.c.username),
                         ("state", t.c.to_state)):
            if args.get(key):
                cond.append(col == args[key])
        if args.get("alarm"):
            text = args["alarm"]
            cond.append(t.c.alarm.like(text.replace("**", "%").replace("*", "%"))
                        if "*" in text else t.c.alarm == text)
        if args.get("asset"):
            paths = [a.path for a in web.tags.alarms.values() if a.asset == args["asset"]]
            cond.append(t.c.alarm.in_(paths or ["\x00"]))
        if args.get("from_"):
            cond.append(t.c.ts >= args["from_"])
        if args.get("to"):
            cond.append(t.c.ts < args["to"])
        page, size = args["page"], args["page_size"]
        with web.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(t).where(*cond)
                                 ).scalar_one()
            rows = conn.execute(sa.select(t).where(*cond).order_by(t.c.ts.desc(), t.c.id.desc())
                                .limit(size).offset((page - 1) * size)).mappings().all()
        return {"items": [journal_json(r) for r in rows], "count": total, "page": page,
                "page_size": size}

    @blp.route("/kpi")
    @blp.arguments(KpiQuery, location="query")
    def kpi(args: dict[str, Any]) -> dict[str, Any]:
        """ISA-18.2 alarm-system KPIs over a period, each beside its target."""
        p = current_principal()
        end = args.get("to") or web.clock()
        try:
            start = args.get("from_") or end - dt.timedelta(days=1)
        except OverflowError:
            fail(400, "'to' is too early for the default one-day period", field="to")
        if start >= end:
            fail(400, "'from' must be before 'to'", field="from")
        t = journal_table
        cond = [_sites_clause(p), t.c.ts >= start, t.c.ts < end,
                t.c.action.in_(("raise", "realarm"))]
        for key, col in (("site", t.c.site), ("area", t.c.area)):
            if args.get(key):
                cond.append(col == args[key])
        with web.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.alarm, t.c.ts, t.c.priority).where(*cond)
                                ).all()
        states = [e for e in web.current(p, {k: args.get(k) for k in ("site", "area")})]
        operators = args.get("operators") or sum(
            getattr(s, "operators", 1) for site, s in web.tags.alarm_settings.items()
            if p.may_see_site(site) and (not args.get("site") or args["site"] == site)) or 1
        return kpis([Annunciation(a, ts, pr) for a, ts, pr in rows], start, end,
                    operators=operators, states=states, now=web.clock())

    def act(action: str) -> Callable[[dict[str, Any]], tuple[dict[str, Any], int]]:
        def view(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
            return _act(web, action, body)
        view.__name__ = f"alarm_{action}"
        view.__doc__ = f"{action.replace('_', ' ').capitalize()} alarms (roles from YAML, " \
                       "the caller's sites, audited)."
        return view

    for action in ACTIONS:
        blp.route(f"/{action}", methods=["POST"])(blp.arguments(ActionBody)(act(action)))
    return blp


def _act(web: AlarmsWeb, action: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    p = current_principal()
    paths: Sequence[str] = list(dict.fromkeys(body["alarms"]))
    unknown = [a for a in paths if not web.visible(p, a)]
    if unknown:
        fail(404, f"unknown alarm '{unknown[0]}'", field="alarms")
    need = ACTIONS[action]
    refused = [a for a in paths if not web.tags.alarms[a].may(need, p.roles)]
    if refused:
        rule = web.tags.alarms[refused[0]]
        message = (f"'{action}' on '{rule.path}' needs one of the roles: "
                   f"{', '.join(sorted(rule.roles.get(need, ())))}")
        record_denial(entity="alarm", record_id=rule.path, action=f"alarm.{action}")
        fail(403, message)
    until = body.get("until")
    now = web.clock()
    if action == "shelve":
        if body.get("minutes") is not None:
            until = now + dt.timedelta(minutes=body["minutes"])
        if until is None:
            fail(422, "a shelve needs 'minutes' or 'until'", field="minutes")
        if not body.get("reason"):
            fail(422, "a shelve needs a 'reason'", field="reason")
        if until <= now:
            fail(422, "'until' must be in the future", field="until")
    if web.actions is None:
        fail(503, "the alarm engine is not running in reach of this process")
    results = web.actions(action, paths, user=p.username, roles=p.roles,
                          sites=None if p.all_sites else sorted(p.sites),
                          comment=body.get("comment"), until=until, reason=body.get("reason"))
    state = get_state()
    with state.engine.begin() as conn:
        for r in results:
            record(conn, action=f"alarm.{action}", entity="alarm", record_id=r["alarm"],
                   before={"state": r.get("from")}, after={"state": r.get("state")},
                   detail={"ok": r["ok"], "error": r.get("error"),
                           "comment": body.get("comment"), "reason": body.get("reason"),
                           "until": until.isoformat() if until else None},
                   changes_only=False, ts=state.now())
    ok = [r for r in results if r["ok"]]
    status = 200 if ok else int(results[0]["status"])
    if not ok:
        fail(status, results[0]["error"], field="alarms")
    return {"results": results, "ok": len(ok), "failed": len(results) - len(ok)}, 200


def init_alarms(app: Any, api: Api, web: AlarmsWeb) -> None:
    """Register ``/api/alarms`` on ``app`` (in the OpenAPI document)."""
    app.extensions["campo_alarms"] = web
    api.register_blueprint(build_blueprint(web))


__all__ = ["AlarmsWeb", "build_blueprint", "init_alarms"]
