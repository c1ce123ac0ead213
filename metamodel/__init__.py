"""Campo's YAML language: typed definitions, a located loader and its checks.

This package imports nothing from ``engine`` and no web, database or device library.
"""

from __future__ import annotations

from .errors import DefinitionError, Location, Problem
from .loader import load
from .model import Entity, Model, Module, Role

__all__ = ["DefinitionError", "Entity", "Location", "Model", "Module", "Problem", "Role", "load"]
