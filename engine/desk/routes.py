"""``/api/desk``: the endpoints the desk needs beyond the generated API.

Each feature module adds its routes with ``register(blp, plugin)``; this module only
creates the blueprint and lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Response, current_app, request
from flask_smorest import Blueprint

from engine.api.errors import ApiError, json_response

from . import account, comments, definition, evaluate, importer, layouts, saved_views
from .context import ctx, identity
from .search import rank, render_title, search_clause, title_fields

if TYPE_CHECKING:
    from .plugin import DeskPlugin

#: features with a ``register(blp, plugin)`` function, in documentation order
FEATURES = (saved_views, evaluate, importer, comments, account, definition, layouts)
SEARCH_LIMIT = 20


def build_blueprint(plugin: DeskPlugin) -> Blueprint:
    """A fresh ``/api/desk`` blueprint (flask-smorest documents it)."""
    blp = Blueprint("desk", __name__, url_prefix="/api/desk",
                    description="The desk (web app): search, saved views, CSV import, "
                                "live rules, timeline, account")

    @blp.route("/config")
    @blp.doc(summary="Site settings the desk needs (time zone, languages)")
    def config() -> Response:
        identity(ctx())
        settings = plugin.settings
        return json_response({"timezone": settings.timezone, "languages": ["es", "en"],
                              # record events over /api/ws (engine.live registers it)
                              "live": bool(current_app.extensions.get("campo_live_records")),
                              "max_upload_bytes": settings.max_upload_bytes,
                              "page_size": settings.default_page_size})

    @blp.route("/search")
    @blp.doc(summary="Search the title fields of every readable entity",
             parameters=[{"in": "query", "name": "q", "required": True,
                          "schema": {"type": "string"}}])
    def search() -> Response:
        c = ctx()
        identity(c)
        q = (request.args.get("q") or "").strip()[:100]
        if not q:
            raise ApiError(400, "q is required", {"query": {"q": ["missing"]}})
        try:
            limit = min(max(int(request.args.get("limit", SEARCH_LIMIT)), 1), 100)
        except ValueError:
            raise ApiError(400, "limit must be an integer",
                           {"query": {"limit": ["not an integer"]}}) from None
        from engine.api import security

        hits: list[dict[str, Any]] = []
        with c.engine.connect() as conn:
            for res in c.resources.values():
                ent = res.entity
                if "read" not in security.allowed_actions(c, ent):
                    continue
                hidden = security.field_rules(c, ent).hidden
                fields = [f for f in title_fields(ent) if f not in hidden]
                where = search_clause(res.table, fields, q)
                if where is None:
                    continue
                scope = c.scope(res)
                cols = [res.table.c.id, *(res.table.c[f] for f in fields)]
                stmt = res.table.select().with_only_columns(*cols).where(where)
                if scope is not None:
                    stmt = stmt.where(scope)
                for row in conn.execute(stmt.limit(limit)):
                    rec = dict(row._mapping)
                    title = render_title(ent.spec.title, rec, f"#{rec['id']}")
                    hits.append({"entity": ent.qualname, "module": ent.module,
                                 "name": ent.name, "id": rec["id"], "title": title})
        hits.sort(key=lambda h: rank(q, h["title"]))
        return json_response({"items": hits[:limit]})

    for feature in FEATURES:
        feature.register(blp, plugin)
    return blp
