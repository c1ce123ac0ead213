"""Nothing but the write gate (``engine.api.gate``) runs the raw write statements, so a new
write path cannot skip row scope, field rules, link checks or the audit row."""

from __future__ import annotations

import ast
from pathlib import Path

import engine

RAW_WRITES = {"insert_records", "update_record", "delete_record"}


def test_only_the_gate_calls_the_raw_write_statements() -> None:
    root = Path(engine.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in ("api/gate.py", "api/writes.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = None
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.alias):
                name = node.name
            if name in RAW_WRITES:
                offenders.append(f"{rel}:{getattr(node, 'lineno', '?')}: {name}")
    assert offenders == []
