"""``GET /api/history`` and ``GET /api/history/status``.

- ``/api/history?tags=pad7.*.pip,pad7.w1.thp&from=now-1h&to=now``: raw samples;
- ``&bucket=1m&agg=avg,min,max,first,last,count,twa``: buckets (from the rollups when the
  bucket is whole minutes or hours);
- ``&points=500``: buckets again, at most 500 per tag (a trend: the widest range reads
  hour rollups);
- ``&interpolate=previous|linear&interval=10s``: values at fixed times;
- ``format=csv`` or ``Accept: text/csv``: CSV (``tag,ts,...``) instead of JSON;
- ``limit``: at most this many points (and never more than ``CAMPO_HISTORY_MAX_POINTS``);
  a larger answer is a 400 saying how to narrow the query.

Only tags of the caller's sites are answered (an explicit tag outside them is a 404, as if it
did not exist). ``/api/history/status`` shows each writer's backlog: spool bytes, oldest
unstored sample, last flush, rows per second, dropped samples.

Registered by the wiring (:mod:`engine.wiring.history`) like ``/api/tags``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from engine.auth import current_principal
from engine.auth.errors import fail
from engine.historian import Catalog, History, QueryError, Store
from engine.historian.query import Series, format_duration, parse_duration, parse_time
from engine.historian.samples import QUALITY_NAMES, iso, to_us

from .access import PatternRefused, parse_patterns, tag_visible

log = logging.getLogger(__name__)

#: how long the tag catalogue of the web process is trusted before it is read again
CATALOG_SECONDS = 30.0


class HistoryArgs(Schema):
    """Query string of ``GET /api/history``."""

    tags = fields.String(required=True, metadata={
        "description": "tag paths or patterns, comma-separated (* one segment, ** any)"})
    from_ = fields.String(data_key="from", load_default="now-1h", metadata={
        "description": "ISO 8601 instant, 'now' or 'now-6h' (default now-1h)"})
    to = fields.String(load_default="now", metadata={"description": "as 'from' (default now)"})
    bucket = fields.String(metadata={"description": "bucket width, e.g. 1m, 15m, 1h, 1d"})
    agg = fields.String(load_default="avg,min,max", metadata={
        "description": "with bucket: any of avg,min,max,first,last,count,twa"})
    points = fields.Integer(metadata={
        "description": "instead of bucket: at most this many buckets per tag (a trend); the "
                       "bucket is whole minutes, or whole hours for long ranges"})
    interpolate = fields.String(metadata={"description": "previous or linear"})
    interval = fields.String(metadata={"description": "with interpolate: step, e.g. 10s"})
    format = fields.String(metadata={"description": "json (default) or csv"})
    limit = fields.Integer(metadata={"description": "most points in the answer"})


def _json_doc(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_SERIES = {"type": "object", "description": "one tag's rows; 'columns' names their items",
           "properties": {"tag": {"type": "string"}, "site": {"type": "string"},
                          "unit": {"type": "string", "nullable": True},
                          "type": {"type": "string"}, "retired": {"type": "boolean"},
                          "columns": {"type": "array", "items": {"type": "string"}},
                          "rows": {"type": "array", "items": {"type": "array", "items": {}}}},
           "additionalProperties": True}
#: documented answers (OpenAPI; documentation only)
_DOCS: dict[str, dict[str, Any]] = {
    "history": {
        "200": {"description": "the series (JSON, or CSV with format=csv / Accept: text/csv)",
                "content": {
                    "application/json": {"schema": {
                        "type": "object", "additionalProperties": True, "properties": {
                            "mode": {"type": "string"}, "from": {"type": "string"},
                            "to": {"type": "string"}, "points": {"type": "integer"},
                            "series": {"type": "array", "items": _SERIES}}}},
                    "text/csv": {"schema": {"type": "string"}}}},
        "400": {"description": "a parameter to change (named in errors.json)"},
        "404": {"description": "a named tag unknown, or not on the caller's sites"}},
    "status": {"200": _json_doc("each historian writer's figures", {
        "type": "object", "properties": {
            "backend": {"type": "string"},
            "writers": {"type": "array", "items": {"type": "object",
                                                   "additionalProperties": True}}}})},
}


class HistoryService:
    """What the views need: queries over the history database, and the writers' figures."""

    def __init__(self, make_store: Callable[[], Store], max_points: int = 100_000,
                 rollup_1m_days: float = 35.0,
                 live_status: Callable[[], dict[str, Any]] | None = None,
                 owns_engine: bool = True) -> None:
        self._make_store = make_store
        self.owns_engine = owns_engine
        self.max_points = max_points
        self.rollup_1m_days = rollup_1m_days
        #: this process's writer, when it runs one
        self.live_status = live_status
        self._history: History | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def history(self) -> History:
        """The query object (the store is opened on first use)."""
        with self._lock:
            if self._history is None:
                store = self._make_store()
                store.create()
                catalog = Catalog(store)
                catalog.load()
                self._history = History(store, catalog, self.max_points, self.rollup_1m_days)
                self._loaded_at = time.monotonic()
            elif time.monotonic() - self._loaded_at > CATALOG_SECONDS:
                self._history.catalog.load()
                self._loaded_at = time.monotonic()
            return self._history

    def status(self) -> dict[str, Any]:
        """Every writer's last figures (this process's live, others' as saved)."""
        writers: dict[str, dict[str, Any]] = {}
        history = self.history()
        for saved in history.store.load_status():
            age = (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(saved["saved_at"]))
            saved["stale"] = age.total_seconds() > 30
            writers[saved["node"]] = saved
        if self.live_status is not None:
            live = self.live_status()
            writers[live["node"]] = {**live, "stale": False}
        return {"backend": history.store.kind, "writers": list(writers.values())}

    def close(self) -> None:
        """Close the connections the service opened (not a shared engine's)."""
        if self._history is not None and self.owns_engine:
            self._history.store.engine.dispose()


def _answer(series: list[Series], head: dict[str, Any], want_csv: bool) -> Any:
    points = sum(len(s.rows) for s in series)
    quality_col = {i for s in series[:1] for i, c in enumerate(s.columns) if c == "quality"}

    def cell(i: int, v: Any) -> Any:
        if i == 0:
            return iso(v)
        if i in quality_col:
            return None if v is None else QUALITY_NAMES.get(v, str(v))
        return v

    if want_csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["tag", *(series[0].columns if series else ("ts", "value", "quality"))])
        for s in series:
            for row in s.rows:
                w.writerow([s.tag.path, *("" if v is None else cell(i, v)
                                          for i, v in enumerate(row))])
        return Response(buf.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "inline; filename=history.csv"})
    return {**head, "points": points, "series": [
        {"tag": s.tag.path, "site": s.tag.site, "unit": s.tag.unit, "type": s.tag.kind,
         "retired": s.tag.retired, "columns": list(s.columns),
         "rows": [[cell(i, v) for i, v in enumerate(row)] for row in s.rows]}
        for s in series]}


def build_blueprint(service: HistoryService) -> Blueprint:
    """The ``/api/history`` blueprint."""
    blp = Blueprint("history", __name__, url_prefix="/api/history",
                    description="Tag history: raw samples, buckets, interpolated values")

    @blp.route("")
    @blp.arguments(HistoryArgs, location="query")
    @blp.doc(responses=_DOCS["history"])
    def get_history(args: dict[str, Any]) -> Any:
        """Raw, aggregated or interpolated history of the tags you may read."""
        p = current_principal()
        fmt = args.get("format")
        want_csv = fmt == "csv" or (fmt is None and request.accept_mimetypes.best_match(
            ["application/json", "text/csv"]) == "text/csv")
        if fmt not in (None, "json", "csv"):
            fail(400, "format is json or csv", field="format")
        try:
            return _query(service, args, lambda t: tag_visible(p, t), want_csv)
        except (QueryError, PatternRefused) as err:
            fail(err.status, err.message, field=err.field)

    @blp.route("/status")
    @blp.doc(responses=_DOCS["status"])
    def get_status() -> dict[str, Any]:
        """The historian's backlog: spool bytes, oldest unstored sample, last flush, rows/s."""
        current_principal()
        return service.status()

    return blp


def _query(service: HistoryService, args: dict[str, Any], may_read: Callable[[Any], bool],
           want_csv: bool) -> Any:
    history = service.history()
    now = to_us(dt.datetime.now(dt.UTC))
    start = parse_time(args["from_"], "from", now)
    end = parse_time(args["to"], "to", now)
    if end <= start:
        raise QueryError("'to' must be after 'from'", "to")
    patterns = [p.strip() for raw in request.args.getlist("tags") for p in raw.split(",")
                if p.strip()]
    parse_patterns(patterns, field="tags")  # bounds and syntax, as /api/tags and /api/ws
    tags = history.resolve(patterns, may_read)
    head: dict[str, Any] = {"from": iso(start), "to": iso(end)}
    limit = args.get("limit")
    if args.get("bucket") and args.get("interpolate"):
        raise QueryError("ask for either bucket or interpolate", "interpolate")
    if args.get("bucket") or args.get("points"):
        if args.get("bucket"):
            bucket = parse_duration(args["bucket"], "bucket")
        else:
            bucket = history.bucket_for(start, end, int(args["points"]))
        if bucket % 1_000_000:
            raise QueryError("a bucket is a whole number of seconds", "bucket")
        aggs = [a.strip() for a in args["agg"].split(",") if a.strip()]
        series, source = history.aggregate(tags, start, end, bucket, aggs, limit)
        head.update(mode="aggregate", bucket=format_duration(bucket), source=source)
    elif args.get("interpolate"):
        if not args.get("interval"):
            raise QueryError("interpolate needs an interval, e.g. interval=10s", "interval")
        interval = parse_duration(args["interval"], "interval")
        series = history.interpolate(tags, start, end, interval, args["interpolate"], limit)
        head.update(mode="interpolate", method=args["interpolate"],
                    interval=format_duration(interval))
    else:
        series = history.raw(tags, start, end, limit)
        head.update(mode="raw")
    return _answer(series, head, want_csv)
