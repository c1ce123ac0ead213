"""Generated views: one flask-smorest Blueprint per module, two MethodViews per entity.

``/api/<module>/<entity>`` (GET list, POST create), ``/api/<module>/<entity>/<id>`` (GET,
PUT, PATCH, DELETE) and ``/api/<module>/<entity>/bulk`` (POST a list). The classes are built
with ``type()`` when the app is built; their methods close over a compiled
:class:`~engine.api.resource.Resource`, so a request does no model lookups.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.datastructures import MultiDict

from metamodel import Model

from . import bounds, gate, openapi, security
from .aggregate import add_aggregate_route
from .allocation import add_allocation_routes
from .attachments import add_attachment_routes
from .body import read_json, validate
from .context import ApiContext
from .docs import doc_later
from .errors import ApiError, json_response
from .export import add_export_route
from .prepare import attach_behaviour
from .query import QueryError
from .reads import list_page
from .resource import Resource
from .templates import add_template_export_routes
from .workflow import add_workflow_routes
from .writes import Referrer, explain_integrity, restricting_references

log = logging.getLogger(__name__)

#: query parameters of ``GET /<entity>/<id>``
ONE_RECORD_PARAMS = ("fields", "expand")


def _query_error(err: QueryError) -> ApiError:
    return ApiError(400, err.message, {"query": {err.param: [err.message]}})


def _version_arg() -> int | None:
    """DELETE's ``?version=``: absent, or given once as an integer a version can hold."""
    values = request.args.getlist("version")
    if len(values) > 1:
        raise ApiError(400, f"'version' is given {len(values)} times; give it once",
                       {"query": {"version": ["given more than once"]}})
    return bounds.bounded("version", values[0] if values else None, *bounds.INT32)


def make_views(ctx: ApiContext, res: Resource) -> tuple[type[MethodView], type[MethodView],
                                                       type[MethodView]]:
    """The collection, item and bulk MethodViews of one resource."""
    engine = ctx.engine
    settings = ctx.settings

    def list_records(self: MethodView) -> Response:
        ctx.check(res, "read")
        q = security.list_query(ctx, res, request.args)  # field rules, row scope
        for name in q.expand:
            ctx.check(ctx.resources[res.links[name]], "read")
        with engine.connect() as conn:
            page = list_page(conn, res, q, ctx.resources)
            security.shape(ctx, conn, res, page["items"])
        return json_response(page)

    def create_record(self: MethodView) -> Response:
        ctx.check(res, "create")
        data = validate(res, security.check_body(ctx, res, read_json()))
        items = _insert(ctx, res, [data], bulk=False)
        resp = json_response(items[0], 201)
        resp.headers["Location"] = f"{res.url}/{items[0]['id']}"
        return resp

    def bulk_create(self: MethodView) -> Response:
        ctx.check(res, "create")
        body = read_json()
        if not isinstance(body, list):
            raise ApiError(422, "a bulk create takes a JSON list of records",
                           {"json": {"_schema": ["Not a list."]}})
        if len(body) > settings.max_page_size:
            raise ApiError(400, f"at most {settings.max_page_size} records per bulk request "
                           f"(got {len(body)})")
        rows, errors = [], {}
        for i, item in enumerate(body):
            try:
                rows.append(validate(res, security.check_body(ctx, res, item)))
            except ApiError as err:
                errors[i] = (err.errors or {}).get("json")
        if errors:
            raise ApiError(422, f"{len(errors)} of {len(body)} records are invalid; "
                           "nothing was created", {"json": errors})
        items = _insert(ctx, res, rows, bulk=True) if rows else []
        return json_response({"items": items}, 201)

    def get_one(self: MethodView, record_id: int) -> Response:
        ctx.check(res, "read")
        args = request.args
        for param in args:
            if param not in ONE_RECORD_PARAMS:
                message = (f"unknown parameter '{param}' (a single record takes "
                           f"{' and '.join(ONE_RECORD_PARAMS)})")
                raise ApiError(400, message, {"query": {param: [message]}})
        if not args:
            with engine.connect() as conn:
                item = security.get_visible(ctx, conn, res, record_id)  # scope, hidden
        else:  # fields= / expand=: the list's machinery, on this one record
            chosen: MultiDict[str, str] = MultiDict(args.items(multi=True))
            chosen.add("id", str(record_id))
            q = security.list_query(ctx, res, chosen)
            for name in q.expand:
                ctx.check(ctx.resources[res.links[name]], "read")
            if q.fields is None:
                q.tables = list(dict.fromkeys([*q.tables, *res.children]))
            with engine.connect() as conn:
                items = list_page(conn, res, q, ctx.resources)["items"]
                security.shape(ctx, conn, res, items)
            item = items[0] if items else None
        if item is None:
            raise ApiError(404, f"{res.qualname} {record_id} not found")
        return json_response(item)

    def replace(self: MethodView, record_id: int) -> Response:
        return _update(ctx, res, record_id, partial=False)

    def patch(self: MethodView, record_id: int) -> Response:
        return _update(ctx, res, record_id, partial=True)

    def delete(self: MethodView, record_id: int) -> Response:
        ctx.check(res, "delete")
        expected = _version_arg()
        try:
            with engine.begin() as conn:
                gate.write(ctx, conn, res, gate.Write("delete", record_id=record_id,
                                                      expected=expected))
        except sa.exc.IntegrityError:
            with engine.connect() as conn:
                refs = restricting_references(conn, record_id, ctx.referrers.get(res.qualname,
                                                                                 []))
            named = "; ".join(f"{q} {', '.join(map(str, ids))}" for q, ids in refs.items())
            raise ApiError(409, f"{res.qualname} {record_id} is still referenced"
                           + (f" by {named}" if named else " by other records")
                           + "; delete or change those first",
                           {"references": refs}) from None
        return Response(status=204)

    docs = functools.cache(lambda: openapi.resource_docs(res))  # made with the document

    def doc(op: str) -> Callable[[Any], Any]:
        return doc_later(lambda: docs()[op])

    base = _class_name(res)
    collection = type(f"{base}Collection", (MethodView,), {
        "get": doc("list")(list_records),
        "post": doc("create")(create_record),
    })
    item = type(f"{base}Item", (MethodView,), {
        "get": doc("get")(get_one),
        "put": doc("put")(replace),
        "patch": doc("patch")(patch),
        "delete": doc("delete")(delete),
    })
    bulk = type(f"{base}Bulk", (MethodView,), {
        "post": doc("bulk")(bulk_create),
    })
    return collection, item, bulk


def _class_name(res: Resource) -> str:
    return "".join(p.capitalize() for p in res.entity.name.split("_"))


def _insert(ctx: ApiContext, res: Resource, rows: Sequence[Mapping[str, Any]], *, bulk: bool
            ) -> list[dict[str, Any]]:
    user = ctx.current_user()
    try:
        with ctx.engine.begin() as conn:
            items = gate.write(ctx, conn, res, gate.Write("create", rows, bulk=bulk, user=user))
    except sa.exc.IntegrityError as err:
        raise explain_integrity(ctx.engine, res, err, rows, bulk=bulk) from None
    except security.Denied as err:
        security.deny(ctx, res, err)
    security.strip(ctx, res, items)
    return items


def _update(ctx: ApiContext, res: Resource, record_id: int, *, partial: bool) -> Response:
    ctx.check(res, "update")
    body = security.update_body(ctx, res, read_json(), record_id, partial=partial)
    data = validate(res, body, partial=partial)
    user = ctx.current_user()
    try:
        with ctx.engine.begin() as conn:
            item, = gate.write(ctx, conn, res, gate.Write("update", [data], record_id=record_id,
                                                          partial=partial, user=user))
    except sa.exc.IntegrityError as err:
        raise explain_integrity(ctx.engine, res, err, [data], bulk=False) from None
    except security.Denied as err:
        security.deny(ctx, res, err)
    security.strip(ctx, res, [item])
    return json_response(item)


def module_blueprints(ctx: ApiContext) -> list[Blueprint]:
    """One Blueprint per module that has top-level entities."""
    blueprints = []
    for module in ctx.model.modules.values():
        resources = [r for r in ctx.resources.values() if r.entity.module == module.name]
        if not resources:
            continue
        blp = Blueprint(module.name, __name__, url_prefix=f"/api/{module.name}",
                        description=module.labels.get("en"))
        for res in resources:
            attach_behaviour(ctx, res)  # the model's rules (engine.api.prepare)
            collection, item, bulk = make_views(ctx, res)
            name = res.entity.name
            blp.route(f"/{name}", endpoint=f"{name}_collection")(collection)
            blp.route(f"/{name}/<id:record_id>", endpoint=f"{name}_item",
                      parameters=[openapi.ID_PARAMETER])(item)
            blp.route(f"/{name}/bulk", endpoint=f"{name}_bulk")(bulk)
            add_aggregate_route(ctx, res, blp)
            add_export_route(ctx, res, blp)
            add_workflow_routes(ctx, res, blp)
            add_allocation_routes(ctx, res, blp)
            add_template_export_routes(ctx, res, blp)
            add_attachment_routes(ctx, res, blp)
        blueprints.append(blp)
    return blueprints


def delete_referrers(model: Model, metadata: sa.MetaData) -> dict[str, list[Referrer]]:
    """For each entity, the ``on_delete: restrict`` links that point at it."""
    out: dict[str, list[Referrer]] = {}
    for ent in model.entities.values():
        for name, f in ent.stored_fields().items():
            if f.type != "link" or f.on_delete != "restrict":
                continue
            table = metadata.tables[ent.table]
            if ent.parent is not None:
                ref: Referrer = (table, name, ent.parent[0], "parent_id")
            else:
                ref = (table, name, ent.qualname, "id")
            out.setdefault(ent.targets[name], []).append(ref)
    return out
