"""``campo history rollup|status|maintain``.

- ``rollup --from 2024-05-01 --to 2024-05-31 [--rule module.rule]``: recompute the ERP
  rollup records of a range of production days (a progress bar on stderr; re-running a day
  replaces its records, never duplicates them);
- ``status``: the historian writers' figures (JSON), as ``GET /api/history/status``;
- ``maintain``: run retention (and on PostgreSQL partition creation and compaction) now.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from engine.errors import UserError
from engine.options import add_database_option, add_project_option, settings_from
from engine.rules import load_model
from metamodel import DefinitionError


def register(subparsers: Any) -> None:
    """Add ``campo history ...``."""
    top = subparsers.add_parser("history", help="the historian: ERP rollups, status, upkeep")
    sub = top.add_subparsers(dest="history_command", metavar="SUBCOMMAND")
    p = sub.add_parser("rollup", help="recompute ERP rollup records for a range of days",
                       description="Compute the records of the modules' history_rollups for "
                                   "every production day from --from to --to (inclusive); a "
                                   "day already computed is replaced, never duplicated.")
    add_project_option(p)
    add_database_option(p)
    p.add_argument("--from", dest="first", required=True, type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="last", required=True, type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--rule", action="append", default=None, metavar="MODULE.RULE",
                   help="only this rule (repeatable)")
    p.set_defaults(handler=rollup_command)
    p = sub.add_parser("status", help="the historian writers' backlog and figures (JSON)")
    add_project_option(p)
    add_database_option(p)
    p.set_defaults(handler=status_command)
    p = sub.add_parser("maintain", help="run retention and compaction now")
    add_project_option(p)
    add_database_option(p)
    p.set_defaults(handler=maintain_command)
    top.set_defaults(handler=lambda args: (top.print_help(), 2)[1])


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date such as 2024-05-01") from None


def _bar(done: int, total: int, day: dt.date) -> None:
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\r{day.isoformat()} [{'#' * filled}{'.' * (width - filled)}] "
                     f"{done}/{total} day(s)")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def rollup_command(args: argparse.Namespace) -> int:
    """Handler of ``campo history rollup``."""
    from engine.db import create_engine_for
    from engine.wiring.edge import load_site_tags
    from engine.wiring.history_erp import RollupWriteError, make_rollups
    from engine.wiring.startup import prepare_database

    if args.last < args.first:
        raise UserError(f"--to {args.last} is before --from {args.first}")
    settings = settings_from(args)
    model = load_model(settings)
    try:
        tags = load_site_tags(settings.project, model)
    except DefinitionError as err:
        raise UserError(err.report()) from None
    if tags is None:
        raise UserError(f"{settings.project}: no tags/ folder, so no history to roll up")
    engine = create_engine_for(settings.resolved_database_url())
    try:
        prepare_database(engine, model, settings.project)
        try:
            rollups = make_rollups(settings, model, tags, engine)
        except DefinitionError as err:
            raise UserError(err.report()) from None
        if rollups is None:
            raise UserError("no module declares history_rollups (docs/historian.md)")
        rules = rollups.rules
        if args.rule:
            unknown = [r for r in args.rule if r not in {x.name for x in rules}]
            if unknown:
                raise UserError(f"unknown rule '{unknown[0]}'; the rules are: "
                                + ", ".join(r.name for r in rules))
            rules = [r for r in rules if r.name in args.rule]
        try:
            outcomes = rollups.run_days(args.first, args.last, rules,
                                        progress=_bar)
        except RollupWriteError as err:
            raise UserError(f"the API refused a record: {err}") from None
    finally:
        engine.dispose()
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.action] = counts.get(o.action, 0) + 1
    print(", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing to do")
    for o in outcomes:
        if o.action == "skipped":
            print(f"skipped {o.rule} {o.instance} {o.day}: {o.reason}", file=sys.stderr)
    return 0


def status_command(args: argparse.Namespace) -> int:
    """Handler of ``campo history status``."""
    from engine.wiring.history import history_service

    service = history_service(settings_from(args))
    try:
        print(json.dumps(service.status(), indent=2))
    finally:
        service.close()
    return 0


def maintain_command(args: argparse.Namespace) -> int:
    """Handler of ``campo history maintain``."""
    from engine.db import create_engine_for
    from engine.historian import Catalog, open_store

    settings = settings_from(args)
    engine = create_engine_for(settings.resolved_history_url())
    try:
        store = open_store(engine)
        store.create()
        catalog = Catalog(store)
        tags = list(catalog.load().values())
        now = round(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
        report = store.maintain(tags, now)
        gone = store.apply_retention(tags, now, settings.history_rollup_1m_days)
    finally:
        engine.dispose()
    print(f"retention removed {gone} sample(s); compacted "
          f"{report.get('compacted', 0)} sample(s)")
    return 0
