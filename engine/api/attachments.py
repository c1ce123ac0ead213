"""Upload and download of ``type: attachment`` fields (docs/api.md, "Attachments").

``POST /api/<module>/<entity>/<id>/files/<field>?name=<file name>[&version=<n>]`` takes the
file as the raw request body (any ``Content-Type``; the server looks at the bytes), and
``GET`` on the same URL sends it back. One route pair per attachment field, so the OpenAPI
document lists them and nothing from the URL is used as a path.

An upload is a write like a PATCH: ``update`` permission, then the file is received into a
temporary file under ``<data_dir>/files`` (413 above the field's limit, 415 when its
content is not accepted), then :func:`engine.api.gate.write` sets the field to the file's
metadata (row scope, read-only fields, optimistic ``version``, rules, audit row, record
event) and the file is moved to its content address before the transaction commits.

A download answers exactly as ``GET …/<id>`` would decide: ``read`` permission
(``ctx.check``), the record inside the caller's row scope and the field not hidden from
them (:func:`engine.api.security.get_visible`, which strips hidden fields), else 404.
"""

from __future__ import annotations

import functools
import http
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, request, send_file
from flask_smorest import Blueprint

from . import bounds, filestore, gate, security
from .docs import doc_later
from .errors import ApiError, json_response
from .openapi import ID_PARAMETER, operation_id
from .writes import explain_integrity

if TYPE_CHECKING:
    from .context import ApiContext
    from .resource import Resource

log = logging.getLogger(__name__)

NAME_PARAMETER: dict[str, Any] = {
    "in": "query", "name": "name", "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": filestore.MAX_NAME},
    "description": "the file's name (its folders are dropped); its extension must agree "
                   "with the content when the field's accept list names extensions"}
VERSION_PARAMETER: dict[str, Any] = {
    "in": "query", "name": "version", "required": False,
    "schema": {"type": "integer", "minimum": 1},
    "description": "refuse (409) unless this is the record's current version"}


def files_root(ctx: ApiContext) -> Path:
    """``<data_dir>/files``: where attachment files are stored."""
    return ctx.settings.resolved_data_dir() / "files"


def limit_of(ctx: ApiContext, f: Any) -> int:
    """The largest file field ``f`` takes: its ``max_size`` or the ``max_upload_bytes``
    setting, never more than ``max_body_bytes`` (no larger request body is read)."""
    wanted = f.max_bytes if f.max_bytes is not None else ctx.settings.max_upload_bytes
    return min(wanted, ctx.settings.max_body_bytes)


def _field_error(status: int, field: str, message: str) -> ApiError:
    return ApiError(status, f"{field}: {message}", {"json": {field: [message]}})


def _not_found(res: Resource, record_id: int, field: str) -> ApiError:
    return ApiError(404, f"{res.qualname} {record_id} has no file in '{field}'",
                    {"path": {"field": [f"no file in '{field}'"]}})


def _check_field_visible(ctx: ApiContext, res: Resource, record_id: int, field: str) -> None:
    """A field hidden from the caller answers as a record without that file (404)."""
    if field in security.field_rules(ctx, res.entity).hidden:
        raise _not_found(res, record_id, field)


def _file_name() -> str:
    values = request.args.getlist("name")
    if len(values) != 1:
        raise ApiError(400, "give the file's name once as ?name=",
                       {"query": {"name": ["required once"]}})
    name = filestore.clean_name(values[0])
    if not name:
        raise ApiError(400, "the file's name is empty once cleaned",
                       {"query": {"name": ["empty"]}})
    return name


def upload(ctx: ApiContext, res: Resource, record_id: int, field: str) -> Response:
    """``POST …/<id>/files/<field>``: store the body as the field's file (see module doc)."""
    ctx.check(res, "update")
    _check_field_visible(ctx, res, record_id, field)
    for param in request.args:
        if param not in ("name", "version"):
            raise ApiError(400, f"unknown parameter '{param}' (an upload takes name and "
                           "version)", {"query": {param: ["unknown parameter"]}})
    name = _file_name()
    values = request.args.getlist("version")
    if len(values) > 1:
        raise ApiError(400, "'version' is given more than once",
                       {"query": {"version": ["given more than once"]}})
    version = bounds.bounded("version", values[0] if values else None, *bounds.INT32)
    f = res.entity.fields[field]
    limit = limit_of(ctx, f)
    if request.content_length is not None and request.content_length > limit:
        raise _field_error(413, field, f"the file is larger than {limit} bytes")
    try:
        pending = filestore.receive(files_root(ctx), request.stream, limit)
    except filestore.TooLarge:
        raise _field_error(413, field, f"the file is larger than {limit} bytes") from None
    try:
        if pending.size == 0:
            raise _field_error(422, field, "the file is empty")
        ctype, exts = filestore.sniff(pending.head, name)
        if not filestore.accepted(f.accept, ctype, exts, name):
            raise _field_error(415, field, f"'{name}' ({ctype}) is not accepted; accepted: "
                               + ", ".join(f.accept or ()))
        meta = {"name": name, "size": pending.size, "type": ctype, "sha256": pending.sha256,
                "key": filestore.key_of(pending.sha256)}
        data: dict[str, Any] = {field: meta}
        if version is not None:
            data["version"] = version
        try:
            with ctx.engine.begin() as conn:
                item, = gate.write(ctx, conn, res, gate.Write(
                    "update", [data], record_id=record_id, partial=True,
                    user=ctx.current_user(), uploaded=frozenset({field})))
                pending.keep()  # in place before the record names it (commit)
        except sa.exc.IntegrityError as err:
            raise explain_integrity(ctx.engine, res, err, [data], bulk=False) from None
        except security.Denied as err:
            security.deny(ctx, res, err)
    finally:
        pending.discard()
    security.strip(ctx, res, [item])
    return json_response(item)


def download(ctx: ApiContext, res: Resource, record_id: int, field: str) -> Response:
    """``GET …/<id>/files/<field>``: the file, under the same rules as ``GET …/<id>``."""
    ctx.check(res, "read")
    _check_field_visible(ctx, res, record_id, field)
    for param in request.args:
        raise ApiError(400, f"unknown parameter '{param}' (a download takes none)",
                       {"query": {param: ["unknown parameter"]}})
    with ctx.engine.connect() as conn:
        item = security.get_visible(ctx, conn, res, record_id)  # scope, hidden fields
    if item is None:
        raise ApiError(404, f"{res.qualname} {record_id} not found")
    meta = item.get(field)
    if not filestore.is_meta(meta):
        raise _not_found(res, record_id, field)
    path = filestore.path_of(files_root(ctx), meta["sha256"])
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        size = -1
    if size != meta["size"]:
        log.error("attachment %s %s.%s: file %s is %s (expected %s bytes)", res.qualname,
                  record_id, field, path, "missing" if size < 0 else f"{size} bytes",
                  meta["size"])
        raise ApiError(404, f"the file of '{field}' is missing from the server's store; "
                       "ask an administrator to restore it",
                       {"path": {"field": [f"the file of '{field}' is missing"]}})
    resp = send_file(path, mimetype=meta["type"], as_attachment=True,
                     download_name=meta["name"], etag=meta["sha256"], conditional=True,
                     max_age=None)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


def _docs(res: Resource, field: str, f: Any, limit_note: str) -> dict[str, dict[str, Any]]:
    label = res.entity.labels.get("en")
    tags = [res.entity.module]
    accept = ", ".join(f.accept) if f.accept else "any file"
    return {
        "upload": {
            "summary": f"Upload the file of '{field}' of a {label} record", "tags": tags,
            "operationId": operation_id(res, f"upload_{field}"),
            "description": f"The request body is the file itself (any Content-Type: the "
                           f"server detects the type from the content). Accepted: {accept}; "
                           f"largest: {limit_note}. Replaces the field's previous file; "
                           "PATCH the field to null to remove it.",
            "parameters": [NAME_PARAMETER, VERSION_PARAMETER],
            "requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}},
            "responses": {"200": {"description": "the record with the field's new metadata",
                                  "content": {"application/json": {
                                      "schema": res.output_schema}}},
                          **{str(c): _status(c) for c in (400, 403, 404, 409, 413, 415, 422)}},
        },
        "download": {
            "summary": f"Download the file of '{field}' of a {label} record", "tags": tags,
            "operationId": operation_id(res, f"download_{field}"),
            "description": "Sent as an attachment (Content-Disposition), with the content "
                           "type detected at upload and ETag = the file's SHA-256.",
            "responses": {"200": {"description": "the file", "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}},
                          "304": {"description": "not modified (If-None-Match)"},
                          **{str(c): _status(c) for c in (400, 403, 404)}},
        },
    }


def _status(code: int) -> str:
    return http.HTTPStatus(code).name


def add_attachment_routes(ctx: ApiContext, res: Resource, blp: Blueprint) -> None:
    """One upload and one download route per attachment field of ``res``."""
    name = res.entity.name
    fields = {n: f for n, f in res.entity.stored_fields().items() if f.type == "attachment"}
    if fields:
        gone = filestore.sweep(files_root(ctx))
        if gone:
            log.warning("removed %d unfinished upload(s) older than a day from %s", gone,
                        files_root(ctx))
    for field, f in fields.items():
        limit = limit_of(ctx, f)
        docs = functools.cache(  # made with the OpenAPI document
            lambda field=field, f=f, limit=limit: _docs(res, field, f, f"{limit} bytes"))

        def post(record_id: int, field: str = field) -> Response:
            return upload(ctx, res, record_id, field)

        def get(record_id: int, field: str = field) -> Response:
            return download(ctx, res, record_id, field)

        blp.route(f"/{name}/<id:record_id>/files/{field}", endpoint=f"{name}_{field}_upload",
                  methods=["POST"], parameters=[ID_PARAMETER])(
            doc_later(lambda docs=docs: docs()["upload"])(post))
        blp.route(f"/{name}/<id:record_id>/files/{field}",
                  endpoint=f"{name}_{field}_download", methods=["GET"],
                  parameters=[ID_PARAMETER])(doc_later(lambda docs=docs: docs()["download"])(get))
