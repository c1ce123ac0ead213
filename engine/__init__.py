"""Campo's engine: compiles a :class:`metamodel.Model` into tables, a REST API and scan jobs."""

from __future__ import annotations

__version__ = "0.1.0"
