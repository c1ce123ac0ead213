"""``campo user``, ``campo role`` and ``campo apikey``: identity administration from a shell.

Passwords are read from a prompt (twice) or, with ``--password-stdin``, from the first line
of standard input — never from the command line, where ``ps`` and shell history see them.
Every change is written to the audit trail as ``cli:<os user>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import logging
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import sqlalchemy as sa

from engine.audit import record
from engine.db import create_engine_for
from engine.errors import UserError
from engine.options import add_database_option, add_project_option, settings_from
from engine.rules import load_model

from .apikeys import ApiKeyError, create_api_key, list_api_keys, revoke_api_key
from .lockout import UNLOCK
from .passwords import PasswordPolicyError, Passwords, check_password_policy
from .sessions import revoke_user_sessions
from .tables import ensure_platform_tables, user_role_table
from .users import IdentityError, create_user, find_user, get_user, list_users, update_user

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (containers)
        return "cli"


def _engine(args: argparse.Namespace) -> sa.Engine:
    engine: sa.Engine | None = getattr(args, "_engine", None)
    if engine is None:
        engine = create_engine_for(settings_from(args).resolved_database_url())
        ensure_platform_tables(engine)
        args._engine = engine
    return engine


def _disposing(handler: Callable[[argparse.Namespace], int]
               ) -> Callable[[argparse.Namespace], int]:
    """Run a command and close its database connections, whatever happens."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        finally:
            engine = getattr(args, "_engine", None)
            if engine is not None:
                engine.dispose()

    return run


def _read_password(args: argparse.Namespace, username: str) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"New password for {username}: ")
        if getpass.getpass("Repeat it: ") != password:
            raise UserError("the passwords do not match; nothing changed")
    try:
        check_password_policy(password, username)
    except PasswordPolicyError as err:
        raise UserError(f"{err}; nothing changed") from None
    return password


def _user_id(conn: sa.Connection, username: str) -> int:
    row = find_user(conn, username)
    if row is None:
        raise UserError(f"no user named {username!r} (see: campo user list)")
    return int(row.id)


def _audit(conn: sa.Connection, action: str, user_id: int, **kw: Any) -> None:
    record(conn, action=action, entity="campo_user", record_id=user_id, user_id=None,
           username=_actor(), source_ip=None, request_id=None, **kw)


def _user_create(args: argparse.Namespace) -> int:
    model = load_model(settings_from(args))
    engine = _engine(args)
    if args.if_missing:
        with engine.connect() as conn:
            if find_user(conn, args.username) is not None:
                print(f"user {args.username} exists already; nothing to do")
                return 0
    pw_hash = None
    if not args.service:
        pw_hash = Passwords().hash(_read_password(args, args.username))
    try:
        with engine.begin() as conn:
            uid = create_user(conn, model, username=args.username, now=_now(),
                              password_hash=pw_hash, roles=args.role, sites=args.site,
                              display_name=args.display_name, email=args.email,
                              is_service=args.service)
            user = get_user(conn, uid)
            assert user is not None
            _audit(conn, "create", uid, after={k: user[k] for k in
                                               ("username", "roles", "sites", "is_service")})
    except IdentityError as err:
        raise UserError(f"{err.field}: {err}") from None
    kind = "service account" if args.service else "user"
    print(f"created {kind} {user['username']} (id {uid}) with roles "
          f"{', '.join(user['roles']) or '(none)'}")
    if args.service:
        print(f"give it a key with: campo apikey create {user['username']}")
    return 0


def _user_passwd(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with engine.connect() as conn:
        uid = _user_id(conn, args.username)
        if get_user(conn, uid)["is_service"]:  # type: ignore[index]
            raise UserError(f"{args.username} is a service account: it uses API keys")
    pw_hash = Passwords().hash(_read_password(args, args.username))
    model = load_model(settings_from(args))
    now = _now()
    with engine.begin() as conn:
        update_user(conn, model, uid, now, password_hash=pw_hash)
        n = revoke_user_sessions(conn, uid, now, "password reset")
        _audit(conn, "update", uid, detail={"password_changed": True, "sessions_revoked": n})
    print(f"password of {args.username} changed; {n} session(s) revoked")
    return 0


def _user_set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    model = load_model(settings_from(args))
    engine = _engine(args)
    now = _now()
    try:
        with engine.begin() as conn:
            uid = _user_id(conn, args.username)
            update_user(conn, model, uid, now, disabled=disabled)
            n = revoke_user_sessions(conn, uid, now, "user disabled") if disabled else 0
            _audit(conn, "update", uid, before={"disabled": not disabled},
                   after={"disabled": disabled}, detail={"sessions_revoked": n})
    except IdentityError as err:
        raise UserError(str(err)) from None
    print(f"{args.username} {'disabled' if disabled else 'enabled'}"
          + (f"; {n} session(s) revoked" if disabled else ""))
    return 0


def _user_unlock(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with engine.begin() as conn:
        uid = _user_id(conn, args.username)
        _audit(conn, UNLOCK, uid)
    print(f"{args.username} unlocked")
    return 0


def _user_list(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with engine.connect() as conn:
        users = list_users(conn)
    if args.json:
        print(json.dumps(users, default=str, indent=2))
        return 0
    print(f"{'USER':20} {'ROLES':28} {'SITES':20} STATE")
    for u in users:
        state = "disabled" if u["disabled"] else "service" if u["is_service"] else "active"
        print(f"{u['username']:20} {','.join(u['roles']) or '-':28} "
              f"{','.join(u['sites']) or '-':20} {state}")
    return 0


def _role_list(args: argparse.Namespace) -> int:
    model = load_model(settings_from(args))
    engine = _engine(args)
    with engine.connect() as conn:
        counts = {role: n for role, n in conn.execute(
            sa.select(user_role_table.c.role, sa.func.count()).group_by(user_role_table.c.role))}
    print(f"{'ROLE':16} {'KIND':8} {'INHERITS':24} {'USERS':>5}  LABEL")
    for name, role in model.roles.items():
        label = " / ".join(dict.fromkeys(t for t in (role.labels.en, role.labels.es) if t))
        print(f"{name:16} {'builtin' if role.builtin else 'custom':8} "
              f"{','.join(role.inherits) or '-':24} {counts.get(name, 0):>5}  {label}")
    return 0


def _apikey_create(args: argparse.Namespace) -> int:
    engine = _engine(args)
    now = _now()
    expires = now + dt.timedelta(days=args.expires_days) if args.expires_days else None
    with engine.begin() as conn:
        uid = _user_id(conn, args.username)
        try:
            key_id, key = create_api_key(conn, uid, args.name, now, expires)
        except ApiKeyError as err:
            raise UserError(str(err)) from None
        record(conn, action="apikey.create", entity="campo_api_key", record_id=key_id,
               user_id=None, username=_actor(), source_ip=None, request_id=None,
               detail={"user": args.username, "name": args.name, "expires_at": expires})
    print(f"API key {key_id} for {args.username} (shown once; store it in the device's "
          f"secret store):\n{key}")
    return 0


def _apikey_revoke(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with engine.begin() as conn:
        if not revoke_api_key(conn, args.key_id, _now()):
            raise UserError(f"no live API key with id {args.key_id} (see: campo apikey list)")
        record(conn, action="apikey.revoke", entity="campo_api_key", record_id=args.key_id,
               user_id=None, username=_actor(), source_ip=None, request_id=None)
    print(f"API key {args.key_id} revoked")
    return 0


def _apikey_list(args: argparse.Namespace) -> int:
    engine = _engine(args)
    with engine.connect() as conn:
        uid = _user_id(conn, args.user) if args.user else None
        keys = list_api_keys(conn, uid)
    print(f"{'ID':>5} {'USER':20} {'NAME':24} {'PREFIX':14} STATE")
    now = _now()
    for k in keys:
        expired = k["expires_at"] is not None and k["expires_at"] <= now  # type: ignore[operator]
        state = "revoked" if k["revoked_at"] else "expired" if expired else "live"
        print(f"{k['id']:>5} {k['username']!s:20} {k['name']!s:24} {k['prefix']!s:14} {state}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    add_project_option(p)
    add_database_option(p)


def _password_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")


def register(subparsers: Any) -> None:
    """Add ``user``, ``role`` and ``apikey`` commands."""
    user = subparsers.add_parser("user", help="manage users (create, passwd, disable, list)")
    us = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    p = us.add_parser("create", help="create a user (the first admin: --role admin)")
    p.add_argument("username")
    p.add_argument("--role", action="append", default=[], help="role (repeatable)")
    p.add_argument("--if-missing", action="store_true",
                   help="do nothing (exit 0) when the user exists already")
    p.add_argument("--site", action="append", default=[], help="site code, * = all (repeatable)")
    p.add_argument("--display-name", default=None)
    p.add_argument("--email", default=None)
    p.add_argument("--service", action="store_true",
                   help="service account for devices: no password, signs in with API keys")
    _password_option(p)
    _common(p)
    p.set_defaults(handler=_disposing(_user_create))
    p = us.add_parser("passwd", help="set a user's password (revokes their sessions)")
    p.add_argument("username")
    _password_option(p)
    _common(p)
    p.set_defaults(handler=_disposing(_user_passwd))
    for name, disabled, text in (("disable", True, "disable a user and revoke their sessions"),
                                 ("enable", False, "enable a disabled user")):
        p = us.add_parser(name, help=text)
        p.add_argument("username")
        _common(p)
        p.set_defaults(handler=_disposing(partial(_user_set_disabled, disabled=disabled)))
    p = us.add_parser("unlock", help="lift a login lockout")
    p.add_argument("username")
    _common(p)
    p.set_defaults(handler=_disposing(_user_unlock))
    p = us.add_parser("list", help="list users with roles and sites")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(handler=_disposing(_user_list))

    role = subparsers.add_parser("role", help="list roles (built-in and from YAML)")
    rs = role.add_subparsers(dest="role_command", metavar="ACTION", required=True)
    p = rs.add_parser("list", help="roles, what they inherit and how many users hold them")
    _common(p)
    p.set_defaults(handler=_disposing(_role_list))

    key = subparsers.add_parser("apikey", help="API keys of service accounts")
    ks = key.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    p = ks.add_parser("create", help="create a key for a user (printed once)")
    p.add_argument("username")
    p.add_argument("--name", default="default", help="what the key is for")
    p.add_argument("--expires-days", type=int, default=None)
    _common(p)
    p.set_defaults(handler=_disposing(_apikey_create))
    p = ks.add_parser("revoke", help="revoke a key by id")
    p.add_argument("key_id", type=int)
    _common(p)
    p.set_defaults(handler=_disposing(_apikey_revoke))
    p = ks.add_parser("list", help="list keys (never their secrets)")
    p.add_argument("--user", default=None)
    _common(p)
    p.set_defaults(handler=_disposing(_apikey_list))
