"""The notification service: a persistent outbox delivered to webhooks, MQTT and email.

Alarm transitions and ERP workflow hooks are *accepted* by writing outbox rows in the same
transaction as the change that caused them (:meth:`NotificationService.enqueue`), so a
notification accepted is delivered after a restart. A dispatcher thread delivers due rows,
records every attempt, and retries with exponential backoff; a dead receiver only delays its
own rows and never the alarm evaluation. Routing (priority, area, site, roster), rate limits
per rule and per channel (with a digest of what was held back) and escalation of alarms left
unacknowledged are configured in ``notify/*.yaml`` (:mod:`metamodel.notify`). See
``docs/alarms.md``.
"""

from __future__ import annotations

from .service import NotificationService

__all__ = ["NotificationService"]
