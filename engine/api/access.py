"""Who is asking and what they may do: the two functions authentication will replace.

Every generated view calls ``authorize(entity, action)`` before it touches the database
(``action`` is one of ``read``, ``create``, ``update``, ``delete``) and records
``current_user()`` in ``created_by``/``updated_by``. Until authentication exists everyone may
do everything and the user is unknown (``None``). A later issue passes real functions to
:func:`engine.api.create_app`; the views do not change.
"""

from __future__ import annotations

from collections.abc import Callable

from metamodel import Entity

#: ``authorize(entity, action) -> bool``; False answers 403.
Authorize = Callable[[Entity, str], bool]
#: ``current_user() -> name or None``; called once per write, inside the request.
CurrentUser = Callable[[], str | None]


def allow_all(entity: Entity, action: str) -> bool:
    """Allow every action (no authentication yet)."""
    return True


def no_user() -> str | None:
    """No user is known (no authentication yet)."""
    return None
