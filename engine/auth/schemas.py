"""Marshmallow schemas of the auth endpoints (request bodies, replies, query arguments)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from engine.api.bounds import ID, PAGE, IntField

from .passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH


class LoginSchema(ma.Schema):
    username = ma.fields.String(required=True, validate=validate.Length(1, 150))
    password = ma.fields.String(required=True, load_only=True,
                                validate=validate.Length(1, MAX_PASSWORD_LENGTH))


class TokenSchema(ma.Schema):
    access_token = ma.fields.String()
    refresh_token = ma.fields.String()
    token_type = ma.fields.String()
    expires_in = ma.fields.Integer(metadata={"description": "access token lifetime, seconds"})
    refresh_expires_in = ma.fields.Integer()
    session_id = ma.fields.String()


class PasswordChangeSchema(ma.Schema):
    current_password = ma.fields.String(required=True, load_only=True,
                                        validate=validate.Length(1, MAX_PASSWORD_LENGTH))
    new_password = ma.fields.String(required=True, load_only=True,
                                    validate=validate.Length(MIN_PASSWORD_LENGTH,
                                                             MAX_PASSWORD_LENGTH))


class UserSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    username = ma.fields.String(required=True, validate=validate.Length(1, 150))
    display_name = ma.fields.String(allow_none=True, validate=validate.Length(max=200))
    email = ma.fields.Email(allow_none=True, validate=validate.Length(max=254))
    is_service = ma.fields.Boolean(load_default=False)
    disabled = ma.fields.Boolean(dump_only=True)
    roles = ma.fields.List(ma.fields.String(), load_default=list)
    sites = ma.fields.List(ma.fields.String(), load_default=list)
    password = ma.fields.String(load_only=True, allow_none=True,
                                validate=validate.Length(MIN_PASSWORD_LENGTH,
                                                         MAX_PASSWORD_LENGTH))
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)
    password_changed_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    last_login_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)


class UserPatchSchema(ma.Schema):
    display_name = ma.fields.String(allow_none=True, validate=validate.Length(max=200))
    email = ma.fields.Email(allow_none=True, validate=validate.Length(max=254))
    disabled = ma.fields.Boolean()
    roles = ma.fields.List(ma.fields.String())
    sites = ma.fields.List(ma.fields.String())
    password = ma.fields.String(load_only=True, validate=validate.Length(MIN_PASSWORD_LENGTH,
                                                                         MAX_PASSWORD_LENGTH))


class MeSchema(ma.Schema):
    user = ma.fields.Nested(UserSchema)
    roles = ma.fields.List(ma.fields.String(),
                           metadata={"description": "effective roles, with inherited ones"})
    assigned_roles = ma.fields.List(ma.fields.String())
    sites = ma.fields.List(ma.fields.String())
    is_service = ma.fields.Boolean()
    session_id = ma.fields.String(allow_none=True)
    permissions = ma.fields.Dict(keys=ma.fields.String(),
                                 values=ma.fields.List(ma.fields.String()),
                                 metadata={"description": "entity -> allowed actions"})


class SessionSchema(ma.Schema):
    id = ma.fields.String()
    user_id = ma.fields.Integer()
    username = ma.fields.String()
    created_at = ma.fields.AwareDateTime()
    last_seen_at = ma.fields.AwareDateTime()
    expires_at = ma.fields.AwareDateTime()
    revoked_at = ma.fields.AwareDateTime(allow_none=True)
    revoked_reason = ma.fields.String(allow_none=True)
    ip = ma.fields.String(allow_none=True)
    user_agent = ma.fields.String(allow_none=True)
    active = ma.fields.Boolean()


class PageArgsSchema(ma.Schema):
    page = IntField(*PAGE, load_default=1)
    page_size = IntField(1, 1000, load_default=50)


class SessionQuerySchema(PageArgsSchema):
    user_id = IntField(*ID)
    active = ma.fields.Boolean()


class SessionPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SessionSchema))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()
