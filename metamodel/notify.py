"""The notification language: ``notify/*.yaml`` (channels, routes, rosters, limits, hooks).

Channels say how a message leaves (``webhook``: JSON signed with HMAC-SHA256; ``mqtt``: a
topic; ``email``: SMTP with STARTTLS and a login). Routes say which alarms go where (by
priority and area), to whom (a fixed list or the people on duty in a roster), and where an
alarm still unacknowledged after ``escalate.after`` goes next. Rosters are a simple shift
calendar: daily shifts in the site's time zone, crews taking turns in blocks of days.
Limits hold back notifications past a count per rule and per channel in a window and send
a digest of what was held. Hooks send ERP workflow transitions (``finance.afe`` ``submit``)
through the same channels. Secrets are never in YAML: ``secret_env``/``password_env`` name
environment variables. Errors are reported at ``file:line:col`` like every language here.

Example::

    config = load_notify(Path("."))          # None when there is no notify/ folder
    config.channels["ops_webhook"].url
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, model_validator

from .errors import Problems, expected_one_of
from .source import Document, read_yaml
from .spec import LabelText, Name, Spec
from .validation import problems_from

_DURATION = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$"
Duration = Annotated[float, Field(gt=0)] | Annotated[str, StringConstraints(pattern=_DURATION)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Clock = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def seconds(value: float | str) -> float:
    """A duration in seconds (``'15m'`` -> 900)."""
    if isinstance(value, (int, float)):
        return float(value)
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$", value)
    assert m is not None, value
    return float(m.group(1)) * _UNITS[m.group(2)]


class WebhookChannel(Spec):
    """POST the event as JSON; ``X-Campo-Signature: sha256=<hex HMAC of the body>``."""

    type: Literal["webhook"]
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]
    secret_env: EnvName | None = None
    timeout: Duration = "5s"


class MqttChannel(Spec):
    """Publish the event as JSON on a topic (``{site}``, ``{priority}``, ``{alarm}``)."""

    type: Literal["mqtt"]
    topic: Annotated[str, StringConstraints(min_length=1)]
    #: broker; default: the deployment's CAMPO_MQTT_URL
    broker: Annotated[str, StringConstraints(pattern=r"^mqtts?://\S+$")] | None = None
    qos: Literal[0, 1, 2] = 1


class EmailChannel(Spec):
    """SMTP: STARTTLS (unless ``starttls: false``) and a login when ``username`` is given."""

    type: Literal["email"]
    host: Annotated[str, StringConstraints(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    starttls: bool = True
    username: str | None = None
    password_env: EnvName | None = None
    sender: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")] = Field(
        alias="from")
    to: list[Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")]] = []
    timeout: Duration = "10s"
    #: PEM file of a CA to trust for STARTTLS (a site's own mail relay)
    cafile: str | None = None

    @model_validator(mode="after")
    def _login(self) -> EmailChannel:
        if self.password_env and not self.username:
            raise ValueError("'password_env' needs a 'username'")
        return self


#: the transitions of an alarm (the ``action`` of its events) a route may notify on
ALARM_ACTIONS: tuple[str, ...] = (
    "raise", "realarm", "clear", "ack", "shelve", "unshelve", "shelve_expired",
    "out_of_service", "in_service", "reset", "suppress", "unsuppress")

Channel = Annotated[WebhookChannel | MqttChannel | EmailChannel, Field(discriminator="type")]
Priority = Literal["critical", "high", "medium", "low"]


class Escalation(Spec):
    """Where an alarm still unacknowledged after ``after`` is sent."""

    after: Duration
    channels: list[Name]
    to: list[str] = []
    roster: Name | None = None


class Route(Spec):
    """Alarms of these priorities and areas go to these channels (and people)."""

    priorities: list[Priority] = ["critical", "high", "medium", "low"]
    areas: list[Name] | None = None
    sites: list[Name] | None = None
    channels: list[Name]
    #: email recipients: fixed addresses and/or whoever is on duty in a roster
    to: list[str] = []
    roster: Name | None = None
    #: transitions that notify (default: raise and re-alarm)
    actions: list[str] = ["raise", "realarm"]
    escalate: Escalation | None = None


class Rotation(Spec):
    """Crews take turns in blocks of ``days`` from ``start`` (14x14: two crews, 14 days)."""

    start: dt.date
    days: Annotated[int, Field(ge=1)]
    #: per crew: shift name -> people (emails)
    crews: list[dict[Name, list[str]]]


class Roster(Spec):
    """Who is on duty: daily shifts (local time) and a rotation of crews."""

    timezone: str = "UTC"
    shifts: dict[Name, dict[Literal["start", "end"], Clock]]
    rotation: Rotation


class Limit(Spec):
    """At most ``count`` notifications per ``per``."""

    count: Annotated[int, Field(ge=1)]
    per: Duration


class Limits(Spec):
    """Rate limits; what they hold back goes out as one digest per channel."""

    per_rule: Limit | None = None
    per_channel: Limit | None = None
    digest_every: Duration = "10m"


class Hook(Spec):
    """An ERP workflow transition that notifies (``entity``'s ``action``)."""

    entity: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
    action: Name
    channels: list[Name]
    to: list[str] = []
    roster: Name | None = None
    message: LabelText | None = None


class NotifyFile(Spec):
    """One ``notify/*.yaml`` file (any of the sections)."""

    channels: dict[Name, Channel] = {}
    routes: dict[Name, Route] = {}
    rosters: dict[Name, Roster] = {}
    limits: Limits | None = None
    hooks: dict[Name, Hook] = {}
    #: attempts before a notification is given up (dead), and the backoff between them
    max_attempts: Annotated[int, Field(ge=1)] = 20
    retry_base: Duration = "2s"
    retry_max: Duration = "10m"


def load_notify(root: Path) -> NotifyFile | None:
    """Read and check ``root/notify/*.yaml`` into one config (DefinitionError on mistakes)."""
    problems = Problems()
    config, _docs = collect_notify(root, problems)
    problems.raise_if_any()
    return config


NotifyDocs = list[tuple[Document, "NotifyFile"]]


def collect_notify(root: Path, problems: Problems) -> tuple[NotifyFile | None, NotifyDocs]:
    """Like :func:`load_notify`, but add the problems to ``problems`` and return what is sound
    with the files it was merged from (each with its document, to locate names). The config
    is None without a ``notify/`` folder, or when a file's shape is broken (its names then
    cannot be checked without follow-on errors)."""
    folder = root / "notify"
    if not folder.is_dir():
        return None, []
    before = len(problems.items)
    merged: dict[str, dict[str, object]] = {k: {} for k in
                                            ("channels", "routes", "rosters", "hooks")}
    other: dict[str, object] = {}
    docs: list[tuple[Document, NotifyFile]] = []
    for path in sorted(folder.glob("*.y*ml")):
        doc = read_yaml(path, f"notify/{path.name}", problems)
        if doc is None:
            continue
        try:
            f = NotifyFile.model_validate(doc.value or {})
        except ValidationError as exc:
            problems.extend(problems_from(exc, NotifyFile, doc))
            continue
        docs.append((doc, f))
        for key in merged:
            merged[key].update(getattr(f, key))
        for key in ("limits", "max_attempts", "retry_base", "retry_max"):
            if key in (doc.value or {}):
                other[key] = getattr(f, key)
    if len(problems.items) > before:
        return None, []
    construct: Any = NotifyFile.model_construct  # kwargs of mixed types, validated above
    config: NotifyFile = construct(**merged, **{
        "limits": other.get("limits"), "max_attempts": other.get("max_attempts", 20),
        "retry_base": other.get("retry_base", "2s"), "retry_max": other.get("retry_max", "10m")})
    for doc, f in docs:
        _cross(doc, f, config, problems)
    return config, docs


def _cross(doc: Document, f: NotifyFile, config: NotifyFile, problems: Problems) -> None:
    def channel(names: list[str], path: tuple[object, ...]) -> None:
        for i, n in enumerate(names):
            if n not in config.channels:
                problems.add(doc.where(path + (i,)), ".".join(map(str, path)) + f"[{i}]",
                             f"unknown channel '{n}'", expected_one_of(n, config.channels))

    def roster(name: str | None, path: tuple[object, ...]) -> None:
        if name is not None and name not in config.rosters:
            problems.add(doc.where(path), ".".join(map(str, path)), f"unknown roster '{name}'",
                         expected_one_of(name, config.rosters) if config.rosters else
                         "declare it under 'rosters:'")

    def recipients(to: list[str], path: tuple[object, ...]) -> None:
        for i, who in enumerate(to):
            if not _EMAIL.match(who):
                problems.add(doc.where(path + (i,)), ".".join(map(str, path)) + f"[{i}]",
                             f"'{who}' is not an email address",
                             "recipients are email addresses; to reach whoever is on duty "
                             "(a role, a crew), name a roster: 'roster: <name>'")

    for name, r in f.routes.items():
        channel(r.channels, ("routes", name, "channels"))
        recipients(r.to, ("routes", name, "to"))
        for i, a in enumerate(r.actions):
            if a not in ALARM_ACTIONS:
                problems.add(doc.where(("routes", name, "actions", i)),
                             f"routes.{name}.actions[{i}]",
                             f"unknown alarm transition '{a}'", expected_one_of(a, ALARM_ACTIONS))
        roster(r.roster, ("routes", name, "roster"))
        if r.escalate is not None:
            channel(r.escalate.channels, ("routes", name, "escalate", "channels"))
            recipients(r.escalate.to, ("routes", name, "escalate", "to"))
            roster(r.escalate.roster, ("routes", name, "escalate", "roster"))
    for name, h in f.hooks.items():
        channel(h.channels, ("hooks", name, "channels"))
        recipients(h.to, ("hooks", name, "to"))
        roster(h.roster, ("hooks", name, "roster"))
    for name, ro in f.rosters.items():
        for i, crew in enumerate(ro.rotation.crews):
            for shift in crew:
                if shift not in ro.shifts:
                    path = ("rosters", name, "rotation", "crews", i, shift)
                    problems.add(doc.where_key(path), ".".join(map(str, path)),
                                 f"unknown shift '{shift}'", expected_one_of(shift, ro.shifts))


__all__ = ["ALARM_ACTIONS", "EmailChannel", "Hook", "Limits", "MqttChannel", "NotifyFile",
           "Roster", "Route", "WebhookChannel", "collect_notify", "load_notify",
           "seconds"]
