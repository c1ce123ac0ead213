"""Logging set-up of the entry points: JSON lines on stderr (ARCHITECTURE: JSON logs).

A leaf module (standard library only): :mod:`engine.cli` calls it, and so does the lean
gunicorn master of ``campo serve`` (:mod:`engine.wiring.master`), which must not import
the rest of the engine.
"""

from __future__ import annotations

import json
import logging


class JsonFormatter(logging.Formatter):
    """One JSON object per line on stderr (ARCHITECTURE: JSON logs)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": self.formatTime(record), "level": record.levelname,
               "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


#: chatty libraries: their INFO lines are per request or per notification
QUIET_LOGGERS = ("asyncua", "pymodbus", "urllib3", "werkzeug")


def configure_logging(verbose: bool = False) -> None:
    """JSON lines to stderr; libraries' per-message INFO logging kept out unless verbose."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


__all__ = ["QUIET_LOGGERS", "JsonFormatter", "configure_logging"]
