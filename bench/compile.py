"""Benchmark: compile a large model (200 entities x 20 fields) from YAML to SQLAlchemy tables.

Generates ten modules of twenty entities each (mixed field types, links within and across
modules, child tables, unique_together, indexes, permissions) into a temporary project,
then times ``metamodel.load`` + ``engine.db.build_metadata`` (the compile step every
``campo`` command runs first). The baseline, timed in the same run on the same files, is
plain ``yaml.safe_load`` of every file: the cost of merely reading the YAML, with no
locations, validation or checks. Goal: compile < 2 s.

Run: ``python bench/compile.py`` (no arguments; about 15 s).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from engine.db.tables import build_metadata
from metamodel import load
from metamodel.loader import find_files

MODULES = 10
ENTITIES_PER_MODULE = 20
FIELDS = 20
RUNS = 5
GOAL_S = 2.0

_SCALARS = [
    "{type: string, max_length: 80, required: true, label: {es: Nombre %(i)d, en: Name %(i)d}}",
    "{type: text, label: Notas %(i)d}",
    "{type: int, min: 0, max: 100000, default: 0, unit: h}",
    "{type: decimal, precision: 12, scale: 3, min: 0, unit: m3}",
    "{type: float, min: -50, max: 400, unit: degC, help: {es: Medida, en: Measured}}",
    "{type: bool, default: true}",
    "{type: date, min: 2000-01-01}",
    "{type: datetime}",
    "{type: enum, values: {planned: {es: Planificado, en: Planned}, active: Activo, "
    "closed: {es: Cerrado, en: Closed}}, default: planned}",
    "{type: json}",
    "{type: string, max_length: 32, pattern: '^[A-Z0-9-]+$', default: A-1}",
]


def entity_yaml(m: int, e: int) -> str:
    """One entity of module ``m``: 20 fields, links to earlier entities, maybe a child table."""
    lines = [f"  e{e:02d}:", f"    label: {{es: Entidad {e}, en: Entity {e}}}",
             '    title: "{f00} {f01}"', "    naming: {field: f00}", "    fields:"]
    n = 0
    if e >= 2:  # a required link within the module and an optional one across modules
        lines.append(f"      link_a: {{type: link, to: e{e - 1:02d}, required: true, index: true}}")
        other = (m + 1) % MODULES
        lines.append(f"      link_b: {{type: link, to: m{other:02d}.e{e - 2:02d}, "
                     "on_delete: set_null}")
        n = 2
    if e % 4 == 3:
        lines.append(f"      rows: {{type: table, of: c{e:02d}, label: Filas}}")
        n += 1
    for i in range(FIELDS - n):
        lines.append(f"      f{i:02d}: " + _SCALARS[i % len(_SCALARS)] % {"i": i})
    lines += ["    unique_together:", "      - [f00, f02]", "    indexes:", "      - [f05, f07]",
              "    permissions:", "      supervisor: [read, create, update]",
              "      engineer: [read, update]", "      viewer: [read]"]
    if e % 4 == 3:
        lines += [f"  c{e:02d}:", "    child: true", "    fields:"]
        lines += [f"      g{i:02d}: " + _SCALARS[i % len(_SCALARS)] % {"i": i}
                  for i in range(FIELDS)]
    return "\n".join(lines)


def generate(root: Path) -> int:
    """Write the project; return the number of entities."""
    folder = root / "modules"
    (folder / "core").mkdir(parents=True)
    (folder / "core" / "roles.yaml").write_text(
        "module: core\nroles:\n  engineer: {label: Ingeniero, inherits: [operator]}\n")
    count = 0
    for m in range(MODULES):
        body = [f"module: m{m:02d}", f"label: {{es: Módulo {m}, en: Module {m}}}", "entities:"]
        # every fourth entity brings a child: 16 regular + 4 children = 20 per module
        for e in range(ENTITIES_PER_MODULE * 4 // 5):
            body.append(entity_yaml(m, e))
            count += 2 if e % 4 == 3 else 1
        (folder / f"m{m:02d}.yaml").write_text("\n".join(body) + "\n", encoding="utf-8")
    return count


def compile_once(root: Path) -> tuple[float, float, int, int]:
    """Wall and CPU seconds of load + build_metadata, entities, tables."""
    t0, c0 = time.perf_counter(), time.process_time()
    model = load(root)
    md = build_metadata(model)
    return (time.perf_counter() - t0, time.process_time() - c0, len(model.entities),
            len(md.tables))


def baseline_once(root: Path, loader: type = yaml.SafeLoader) -> float:
    """Plain ``yaml.safe_load`` (or the libyaml ``CSafeLoader``) of every module file."""
    t0 = time.perf_counter()
    for path in find_files(root, "modules"):
        with path.open(encoding="utf-8") as fh:
            yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    return time.perf_counter() - t0


def profile(root: Path) -> str:
    prof = cProfile.Profile()
    prof.enable()
    build_metadata(load(root))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(12)
    return out.getvalue()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="campo-bench-") as tmp:
        root = Path(tmp)
        generated = generate(root)
        fields = sum(len(p.read_text().splitlines()) for p in find_files(root, "modules"))
        compile_once(root)  # warm imports and caches
        runs = [compile_once(root) for _ in range(RUNS)]
        base_s = statistics.median(baseline_once(root) for _ in range(RUNS))
        c_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        base_c_s = statistics.median(baseline_once(root, c_loader) for _ in range(RUNS))
        compile_s = statistics.median(r[0] for r in runs)
        compile_cpu_s = statistics.median(r[1] for r in runs)
        _, _, entities, tables = runs[0]
        print(f"model: {entities} entities ({generated} generated), {tables} tables, "
              f"{fields} YAML lines in {MODULES + 1} files")
        print(f"compile (metamodel.load + build_metadata), median of {RUNS}: {compile_s:.3f} s "
              f"wall, {compile_cpu_s:.3f} s CPU (wall exceeds CPU when the machine is busy)")
        print(f"baseline (yaml.safe_load of the same files), median of {RUNS}: {base_s:.3f} s")
        print(f"baseline (yaml.load with {c_loader.__name__}), median of {RUNS}: {base_c_s:.3f} s")
        if compile_s > GOAL_S or "--profile" in sys.argv:
            print(profile(root))
        print(f"RESULT model_compile_s {compile_s:.3f}")
        print(f"RESULT model_compile_cpu_s {compile_cpu_s:.3f}")
        print(f"RESULT baseline_safe_load_s {base_s:.3f}")
        print(f"RESULT model_compile_vs_safe_load_ratio {compile_s / base_s:.2f}")
        print(f"RESULT model_compile_vs_c_safe_load_ratio {compile_s / base_c_s:.2f}")
    return 0 if compile_s < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
