"""Alarm events: what the WebSocket, MQTT, the notification service and the API are told.

One JSON-ready dict per transition (or per alarm, for the active list): the alarm's
identity and binding (site, area, asset, tag), its priority, the state it left and entered,
the action, when, the value and limit, who and why, and the message and guidance in Spanish
and English with ``{value}``, ``{unit}``, ``{limit}``... filled in.
"""

from __future__ import annotations

import string
from typing import Any

from metamodel.spec import Labels
from metamodel.tags.alarms import AlarmRule

from .state import AlarmState, State, Transition

#: priority order for sorting (critical first)
PRIORITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
_LEVEL_WORDS = {"es": {"hihi": "muy alta", "hi": "alta", "lo": "baja", "lolo": "muy baja"},
                "en": {"hihi": "high high", "hi": "high", "lo": "low", "lolo": "low low"}}


def show(value: Any) -> str:
    """A value as a message shows it (numbers to 6 significant digits)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


Parts = list[tuple[str, str | None, str]]
_PARTS: dict[str, Parts] = {}


def _parts(text: str) -> Parts:
    """A message template split once into (literal, field, format spec) parts (cached)."""
    got = _PARTS.get(text)
    if got is None:
        try:
            got = [(lit, name, spec or "") for lit, name, spec, _ in
                   string.Formatter().parse(text)]
        except ValueError:
            got = [(text, None, "")]
        if len(_PARTS) < 100_000:
            _PARTS[text] = got
    return got


def _fill(text: str, fields: dict[str, Any]) -> str:
    out = []
    for lit, name, spec in _parts(text):
        out.append(lit)
        if name is not None:
            value = fields.get(name, "{" + name + "}")
            try:
                out.append(format(value, spec) if spec else str(value))
            except (ValueError, TypeError):
                out.append(str(value))
    return " ".join("".join(out).split())


def render(template: Labels | None, rule: AlarmRule, value: Any, limit: Any
           ) -> dict[str, str] | None:
    """A message template in both languages with the run-time fields filled in."""
    if template is None:
        return None
    shown_value, shown_limit = show(value), show(limit)
    out: dict[str, str] = {}
    for lang in ("es", "en"):
        label = rule.label.get(lang) if rule.label is not None else (rule.tag or rule.path)
        fields = {"value": shown_value, "limit": shown_limit, "unit": rule.unit or "",
                  "tag": rule.tag or "", "label": label, "site": rule.site,
                  "asset": rule.asset or "", "alarm": rule.path, "priority": rule.priority,
                  "level": _LEVEL_WORDS[lang].get(rule.level or "", rule.level or "")}
        out[lang] = _fill(template.get(lang), fields)
    return out


def event_of(t: Transition | None, rule: AlarmRule, st: AlarmState) -> dict[str, Any]:
    """The event of transition ``t`` (or the alarm's current state when ``t`` is None)."""
    value = t.value if t is not None else st.value
    limit = t.limit if t is not None else st.limit
    to = t.to_state if t is not None else st.state
    ts = t.ts if t is not None else st.since
    return {
        "type": "alarm", "alarm": rule.path, "rule": rule.rule, "level": rule.level,
        "kind": rule.kind, "site": rule.site, "area": rule.area, "asset": rule.asset,
        "instance": rule.instance, "tag": rule.tag, "priority": rule.priority,
        "state": to.value, "from": t.from_state.value if t is not None else None,
        "action": t.action if t is not None else None,
        "ts": ts.isoformat() if ts is not None else None,
        "value": value, "limit": limit, "unit": rule.unit,
        "user": t.user if t is not None else None,
        "comment": t.comment if t is not None else None,
        "active": st.active, "acked": to not in (State.UNACK, State.RTN_UNACK) and (
            to is not State.LATCHED or st.acked),
        "message": render(rule.message, rule, value, limit),
        "guidance": render(rule.guidance, rule, value, limit),
        "shelved_until": st.shelved_until.isoformat() if st.shelved_until else None,
        "shelve_reason": st.shelve_reason,
        "raised_at": st.raised_at.isoformat() if st.raised_at else None,
    }


def sort_key(event: dict[str, Any]) -> tuple[int, str]:
    """Priority first (critical first), then the oldest first."""
    return PRIORITY_RANK.get(event.get("priority") or "low", 9), event.get("raised_at") or \
        event.get("ts") or ""


__all__ = ["PRIORITY_RANK", "event_of", "render", "show", "sort_key"]
