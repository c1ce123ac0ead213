"""The OpenAPI document, built when it is first asked for.

flask-smorest documents each blueprint as it is registered: every operation's schemas are
converted and every per-entity schema made at start-up, although a running site is asked
for its document rarely (an integrator, the docs page). For the demo project that is a few
MB of every web process. :class:`Api` registers the routes at once and the documentation
on the first request of ``/api/openapi.json`` (or :meth:`Api.document`); :func:`doc_later`
is ``Blueprint.doc`` whose arguments are made then too (the generated operations' docs,
:func:`engine.api.openapi.resource_docs`, with their page, bulk and patch schemas).

The document is the same either way: the tests compare it with the OpenAPI validator and
fuzz the API with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from copy import deepcopy
from typing import Any, TypeVar

import flask
import flask_smorest
from flask_smorest.utils import deepupdate

F = TypeVar("F", bound=Callable[..., Any])


class LazyDoc(dict[str, Any]):
    """A view's ``_apidoc`` whose ``Blueprint.doc`` arguments ``factory()`` makes when the
    document is built (flask-smorest deep-copies ``_apidoc`` per route: the copy keeps the
    factory)."""

    def __init__(self, factory: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self.factory = factory

    def __deepcopy__(self, memo: dict[int, Any]) -> LazyDoc:
        out = LazyDoc(self.factory)
        out.update(deepcopy(dict(self), memo))
        return out


def doc_later(factory: Callable[[], dict[str, Any]]) -> Callable[[F], F]:
    """``Blueprint.doc(**factory())``, ``factory`` called when the document is built."""

    def decorate(func: F) -> F:
        func._apidoc = LazyDoc(factory)  # type: ignore[attr-defined]
        return func

    return decorate


class Api(flask_smorest.Api):  # type: ignore[misc]
    """flask-smorest's ``Api`` documenting its blueprints on first demand."""

    def __init__(self, app: flask.Flask | None = None, **kwargs: Any) -> None:
        self._pending: list[tuple[Any, str, Any]] = []
        self._doc_lock = threading.Lock()
        super().__init__(app, **kwargs)

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        """Register ``blp``'s routes now and its documentation with the document."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        with self._doc_lock:
            self._pending.append((blp, name, parameters))

    def document(self) -> None:
        """Document the blueprints registered so far (once each) in ``self.spec``."""
        with self._doc_lock:
            pending, self._pending = self._pending, []
            for blp, name, parameters in pending:
                for methods in blp._docs.values():
                    for info in methods.values():
                        if isinstance(info, LazyDoc):
                            info["manual_doc"] = deepupdate(info.get("manual_doc", {}),
                                                            info.factory())
                blp.register_views_in_doc(self, self._app, self.spec, name=name,
                                          parameters=parameters)
                self.spec.tag({"name": name, "description": blp.description})

    def _openapi_json(self) -> flask.Response:
        self.document()
        return super()._openapi_json()  # type: ignore[no-any-return]
