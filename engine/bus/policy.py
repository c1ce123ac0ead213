"""The tag-write policy: one pure function that the web side and the runtime both apply.

:func:`check_tag_write` decides from the tag's YAML (``writable``, ``write_roles``, type,
``limits``) and the caller (roles, sites) whether a write may go ahead, and answers with the
HTTP status an API gives when it may not:

========  =============================================================
status    when
========  =============================================================
404       the tag does not exist, or its site is not one of the caller's
403       the tag is not writable, or the caller holds none of its write roles
422       the value has the wrong type or lies outside the write limits (field ``value``)
========  =============================================================

The web process checks before sending a request over the bus (so a refusal is audited and
answered at once); the runtime checks again on arrival (a request from another process is
not trusted) — with the same function, so both answer the same.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from metamodel.tags import Tag

ALL_SITES = "*"


class WriteCaller(Protocol):
    """What the policy needs to know about a caller (a Principal, a :class:`Caller`)."""

    @property
    def roles(self) -> frozenset[str]: ...

    def may_see_site(self, site: str | None) -> bool: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """A writer as it crosses the bus: roles, sites (``*``: all) and who, for the log."""

    roles: frozenset[str]
    sites: frozenset[str] = frozenset({ALL_SITES})
    user: str | None = None
    user_id: int | None = None

    def may_see_site(self, site: str | None) -> bool:
        """Whether the caller may see tags of ``site``."""
        return site is None or ALL_SITES in self.sites or site in self.sites

    @classmethod
    def of(cls, principal: Any) -> Caller:
        """The caller for a signed-in principal (``engine.auth.principal.Principal``)."""
        sites = frozenset({ALL_SITES}) if principal.all_sites else frozenset(principal.sites)
        return cls(frozenset(principal.roles), sites, principal.username, principal.user_id)

    def to_meta(self) -> dict[str, Any]:
        """JSON for a write request's ``meta``."""
        return {"user": self.user, "user_id": self.user_id, "roles": sorted(self.roles),
                "sites": sorted(self.sites)}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Caller:
        """The caller of a write request. Without a ``sites`` key (a peer older than site
        scoping) every site: like the roles, ``meta`` is the sender's claim, and whoever may
        publish write requests on the bus is trusted infrastructure; the web side checks the
        signed-in user's sites before it sends."""
        sites = (frozenset(_strings(meta["sites"])) if "sites" in meta
                 else frozenset({ALL_SITES}))
        return cls(frozenset(_strings(meta.get("roles"))), sites, meta.get("user"),
                   meta.get("user_id"))


def _strings(items: Any) -> Iterable[str]:
    return [i for i in items if isinstance(i, str)] if isinstance(items, (list, tuple)) else []


class WriteRefused(Exception):
    """A write the policy refuses: ``status`` is 404, 403 or 422; ``field`` names the input."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def check_tag_write(tag: Tag | None, path: str, value: Any, caller: WriteCaller) -> Any:
    """The value to send when ``caller`` may write ``value`` to the tag ``path``; else raise
    :class:`WriteRefused` with the status an API answers (see the module docstring)."""
    if tag is None or not caller.may_see_site(tag.site):
        raise WriteRefused(404, f"unknown tag '{path}'")
    if not tag.writable:
        raise WriteRefused(403, f"tag '{path}' is not writable")
    if not (caller.roles & tag.write_roles):
        need = ", ".join(sorted(tag.write_roles)) or "(none)"
        raise WriteRefused(403, f"writing '{path}' needs one of the roles: {need}")
    kind = tag.data_type
    if kind == "bool" or (kind is None and isinstance(value, bool)):
        if not isinstance(value, bool):
            raise WriteRefused(422, f"expected true or false, got {value!r}", "value")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise WriteRefused(422, f"expected a string, got {value!r}", "value")
        if tag.length and len(value) > tag.length:
            raise WriteRefused(422, f"longer than {tag.length} characters", "value")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WriteRefused(422, f"expected a number, got {value!r}", "value")
    if isinstance(value, float) and not math.isfinite(value):
        raise WriteRefused(422, f"expected a finite number, got {value!r}", "value")
    if tag.write_min is not None and value < tag.write_min:
        raise WriteRefused(422, f"{value} is below the write limit {tag.write_min:g}", "value")
    if tag.write_max is not None and value > tag.write_max:
        raise WriteRefused(422, f"{value} is above the write limit {tag.write_max:g}", "value")
    return value


__all__ = ["ALL_SITES", "Caller", "WriteCaller", "WriteRefused", "check_tag_write"]
