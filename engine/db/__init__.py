"""Database compiler: model -> SQLAlchemy Core tables; plan and apply migrations."""

from __future__ import annotations

from .tables import build_metadata, create_engine_for

__all__ = ["build_metadata", "create_engine_for"]
