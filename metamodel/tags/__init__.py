"""The tag language: devices, scan classes, tag templates and sites (``tags/**/*.yaml``).

Like the module language, it imports nothing from ``engine`` and no device library: the
engine reads the resolved :class:`TagModel` and turns it into poll groups and drivers.

Example::

    from metamodel.tags import load_tags
    model = load_tags(Path("."))
    for tag in model.select("sim_pad.*.pip"):
        print(tag.path, tag.address, tag.unit)
"""

from __future__ import annotations

from .addressing import ModbusAddress, MqttAddress, OpcUaAddress, parse_modbus, width
from .loader import build_tags, load_tags, tag_files
from .model import (
    Binding,
    Device,
    Instance,
    Scaling,
    ScanClass,
    Tag,
    TagModel,
    Template,
    compile_pattern,
)
from .patterns import MAX_PATTERN_LENGTH, PatternError, PatternSet, TagPattern

__all__ = [
    "MAX_PATTERN_LENGTH", "Binding", "Device", "Instance", "ModbusAddress", "MqttAddress",
    "OpcUaAddress", "PatternError", "PatternSet", "ScanClass", "Scaling", "Tag", "TagModel",
    "TagPattern", "Template", "build_tags", "compile_pattern", "load_tags", "parse_modbus",
    "tag_files", "width",
]
