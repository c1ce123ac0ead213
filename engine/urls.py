"""The engine's own first URL segments under ``/api/``: no module may be named like one.

One registry, owned by the engine (not the YAML language): the loader receives it
(:func:`engine.rules.load_project` passes it to :func:`metamodel.loader.collect`) and
:func:`engine.api.create_app` refuses a model that reaches it another way. It reserves ahead
for what is coming, so that a new built-in URL never invalidates a project that loaded
yesterday: adding a name here is a breaking change for projects with such a module, so
reserve before building. A leaf module: it imports nothing.
"""

from __future__ import annotations

#: served today
SERVED: frozenset[str] = frozenset({
    "auth", "audit", "docs", "health", "meta", "openapi.json", "tags", "ws",
})

#: reserved for built-ins that are planned or likely (alarms, historian, HMI, the desk...)
PLANNED: frozenset[str] = frozenset({
    "admin", "alarms", "api", "apikeys", "attachments", "backup", "backups",
    "bus", "comments", "config", "dashboards", "desk", "devices", "events", "export", "files",
    "history", "hmi", "import", "jobs", "live", "login", "logout", "me", "metrics",
    "notifications", "plugins", "reports", "roles", "scada", "screens", "search", "sessions",
    "settings", "sites", "static", "status", "system", "timeline", "trends", "ui", "update",
    "updates", "users", "version", "views", "webhooks",
})

#: every first segment under ``/api/`` a module may not take
BUILTIN_SEGMENTS: frozenset[str] = SERVED | PLANNED
