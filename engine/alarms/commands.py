"""``campo alarms check`` and ``campo alarms replay``.

``check`` loads ``tags/``, compiles every alarm and prints the counts per site, kind and
priority, then the warnings (the priority mix). ``replay --from --to`` runs the rules over
the history the historian stored (its database: ``--database-url``, else the settings') and
prints the ISA-18.2 KPIs they would have produced, with a progress bar; ``--site`` keeps one
site's rules, ``--input FILE`` reads a CSV instead of the historian, ``--overlay DIR``
replays a proposed change too (``DIR/tags/`` files replacing or adding to the project's) and
prints both side by side.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.rules import CompiledProject
from engine.rules.loading import collect_compiled
from engine.settings import Settings
from metamodel import DefinitionError
from metamodel.errors import Problems
from metamodel.spec import BUILTIN_ROLES
from metamodel.tags import TagModel
from metamodel.tags.loader import collect_tags

from .compile import CompiledAlarms, collect_alarms
from .kpi import format_kpis
from .replay import CsvReader, HistorianReader, HistoryReader, replay


def register(subparsers: Any) -> None:
    """Add ``campo alarms``."""
    p = subparsers.add_parser("alarms", help="check alarm rules, replay them over history")
    sub = p.add_subparsers(dest="alarms_command", required=True)
    c = sub.add_parser("check", help="compile every alarm rule and print counts and warnings")
    c.add_argument("--project", type=Path, default=None)
    c.set_defaults(handler=check_command)
    r = sub.add_parser("replay", help="run the alarm rules over stored history; print KPIs",
                       description="Replay the rules over history between --from and --to "
                                   "and print the ISA-18.2 KPIs they would have produced.")
    r.add_argument("--project", type=Path, default=None)
    r.add_argument("--from", dest="start", required=True, help="ISO time (UTC if no offset)")
    r.add_argument("--to", dest="end", required=True, help="ISO time (UTC if no offset)")
    r.add_argument("--input", type=Path, default=None,
                   help="read history from a CSV file with the header ts,tag,value,quality "
                        "instead of the historian")
    r.add_argument("--database-url", default=None,
                   help="the historian's database (default: CAMPO_HISTORY_DATABASE_URL, "
                        "else the main database, CAMPO_DATABASE_URL)")
    r.add_argument("--site", default=None, help="only this site's rules and tags")
    r.add_argument("--overlay", dest="proposed", type=Path, default=None, metavar="DIR",
                   help="a proposed change: DIR/tags/ files over the project's")
    r.add_argument("--operators", type=int, default=None,
                   help="operators on duty, for the KPIs per operator (default: the sites' "
                        "alarm_settings.operators, as GET /api/alarms/kpi)")
    r.set_defaults(handler=replay_command)


def check_project(settings: Settings, environ: Mapping[str, str] | None = None
                  ) -> tuple[CompiledProject, CompiledAlarms | None]:
    """Every language of the project checked together, alarm expressions included, or
    :class:`UserError` listing every problem at once (``campo validate``)."""
    try:
        cp, problems = collect_compiled(settings.project, settings.overlays, environ=environ)
    except DefinitionError as err:  # a file the loader could not read at all
        raise UserError(err.report()) from None
    alarms = collect_alarms(cp.tags, problems) if cp.tags is not None else None
    try:
        problems.raise_if_any()
    except DefinitionError as err:
        raise UserError(err.report()) from None
    return cp, alarms


def _project(args: argparse.Namespace) -> Path:
    from engine.options import settings_from

    return Path(args.project) if args.project else settings_from(args).project


def _roles(root: Path) -> frozenset[str] | None:
    """The project's roles (its modules' plus the built-in ones) that alarm rules may name;
    None (roles not checked here) when the modules have problems of their own: ``campo
    validate`` reports those with everything else."""
    if not (root / "modules").is_dir():
        return frozenset(BUILTIN_ROLES)
    from metamodel.loader import collect

    model, problems = collect(root)
    return None if problems else frozenset(model.roles)


def _load(root: Path, roles_from: Path | None = None) -> tuple[TagModel, CompiledAlarms]:
    """The tags of ``root`` and their compiled alarms, or UserError with every problem of
    both (the tag language's and the alarm expressions')."""
    problems = Problems()
    try:
        roles = _roles(roles_from or root)
        tags = collect_tags(root, problems, None, dict(os.environ), roles=roles)
        compiled = collect_alarms(tags, problems)
        problems.raise_if_any()
    except DefinitionError as err:
        raise UserError(err.report()) from None
    return tags, compiled


def check_command(args: argparse.Namespace) -> int:
    """Handler of ``campo alarms check``."""
    _tags, compiled = _load(_project(args))
    by_site: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for ca in compiled.alarms.values():
        by_site[ca.rule.site][ca.rule.priority] += 1
        by_site[ca.rule.site][f"kind:{ca.rule.kind}"] += 1
    for site, counts in sorted(by_site.items()):
        prio = ", ".join(f"{p} {counts[p]}" for p in ("critical", "high", "medium", "low"))
        kinds = ", ".join(f"{k[5:]} {n}" for k, n in sorted(counts.items())
                          if k.startswith("kind:"))
        total = sum(n for k, n in counts.items() if not k.startswith("kind:"))
        print(f"{site}: {total} alarms ({prio}; {kinds})")
    for w in compiled.warnings:
        print(w.format())
    print(f"ok: {len(compiled.alarms)} alarms")
    return 0


def _time(text: str, flag: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{flag}: '{text}' is not an ISO time such as 2026-03-01T00:00") \
            from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _bar(label: str) -> Any:
    def show(done: float) -> None:
        width = 40
        n = int(done * width)
        sys.stderr.write(f"\r{label} [{'#' * n}{'.' * (width - n)}] {100 * done:5.1f}%")
        if done >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def _historian(args: argparse.Namespace) -> tuple[HistoryReader, Any]:
    """The historian's store as a replay source, and its engine (to dispose)."""
    import sqlalchemy as sa

    from engine.db import create_engine_for
    from engine.historian import open_store
    from engine.historian.tables import TAG_TABLE
    from engine.options import settings_from

    if args.database_url:
        url = args.database_url
    else:
        url = settings_from(argparse.Namespace(project=args.project)).resolved_history_url()
    made = sa.engine.make_url(url)
    if made.get_backend_name() == "sqlite" and not Path(made.database or "").is_file():
        raise UserError(f"no history database at {made.database}: give --database-url, or "
                        "--input FILE.csv")
    db = create_engine_for(url)
    try:
        if not sa.inspect(db).has_table(TAG_TABLE):
            raise UserError(f"{made.render_as_string(hide_password=True)} holds no history "
                            "(no campo_history_tag table): is the historian on?")
        return HistorianReader(open_store(db)), db
    except sa.exc.OperationalError as err:
        db.dispose()
        raise UserError(f"cannot read the history database: {err.orig}") from None
    except UserError:
        db.dispose()
        raise


def _only_site(compiled: CompiledAlarms, site: str | None) -> CompiledAlarms:
    if site is None:
        return compiled
    sites = sorted({ca.rule.site for ca in compiled.alarms.values()})
    if site not in sites:
        raise UserError(f"--site {site}: no alarm rule of that site; sites with alarms: "
                        + (", ".join(sites) or "none"))
    alarms = {p: ca for p, ca in compiled.alarms.items() if ca.rule.site == site}
    by_tag: dict[str, list[Any]] = {}
    for ca in alarms.values():
        for t in ca.inputs:
            by_tag.setdefault(t, []).append(ca)
    return CompiledAlarms(alarms, by_tag, compiled.warnings)


def replay_command(args: argparse.Namespace) -> int:
    """Handler of ``campo alarms replay``."""
    root = _project(args)
    start, end = _time(args.start, "--from"), _time(args.end, "--to")
    if start >= end:
        raise UserError("--from must be before --to")
    db: Any = None
    if args.input is not None:
        if not args.input.is_file():
            raise UserError(f"--input {args.input}: no such file")
        reader: HistoryReader = CsvReader(args.input)
        source = f"--input {args.input}"
    tags, current = _load(root)
    current = _only_site(current, args.site)
    if args.operators is not None and args.operators < 1:
        raise UserError("--operators must be 1 or more")
    operators = args.operators or sum(
        getattr(st, "operators", 1) for site, st in tags.alarm_settings.items()
        if args.site is None or site == args.site) or 1
    if args.input is None:
        reader, db = _historian(args)
        source = "the history database"
    runs = [("current", current)]
    tmp: str | None = None
    if args.proposed is not None:
        if not (args.proposed / "tags").is_dir():
            raise UserError(f"--overlay {args.proposed}: no tags/ folder there")
        tmp = tempfile.mkdtemp(prefix="campo-replay-")
        shutil.copytree(root / "tags", Path(tmp) / "tags")
        shutil.copytree(args.proposed / "tags", Path(tmp) / "tags", dirs_exist_ok=True)
        runs.append(("proposed", _only_site(_load(Path(tmp), roles_from=root)[1], args.site)))
    try:
        results = [(name, replay(compiled, reader, start, end, operators=operators,
                                 progress=_bar(name)))
                   for name, compiled in runs]
    except (ValueError, KeyError) as exc:
        raise UserError(f"{source}: {exc}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if db is not None:
            db.dispose()
    missing = getattr(reader, "missing", None)
    if missing:
        print(f"warning: {len(missing)} tag(s) the rules read have no stored history: "
              + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""), file=sys.stderr)
    for name, res in results:
        print(f"== {name}: {res.samples} samples, {res.transitions} transitions, "
              f"{res.wall_seconds:.2f} s ({res.speedup:,.0f}x real time)")
        print(format_kpis(res.kpis))
    return 0
