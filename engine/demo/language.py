"""The data-set language of ``demo/*.yaml``: records to create through the API, written
once with loops and expressions instead of one line per record.

```yaml
steps:
  - entity: wells.well            # module.entity
    key: uwi                      # the field that says a record already exists (idempotence)
    for: {n: {range: [1, 40]}, day: {dates: {from: 2026-09-01, days: 90}}, f: [LA, EP]}
    let: {pad: "='pad_' + string(n % 6)"}     # derived names, in order
    when: "n != 13"               # skip the combinations where this is false
    values:                       # literal YAML, or '=expression' (also inside child rows)
      uwi: "='AR-' + string(n)"
      pad: "=pad"                 # a link takes the target's id or its naming value
    actions: [spud, complete]     # workflow actions run after create, when the state allows
    actions_if: "n > 2"           # optional: run them only where this is true
```

``key`` may list several fields (``[well, prod_date]``). In a child table's rows, a row
with ``_if: '=expr'`` is left out where the expression is false; a literal of ``records``
may carry its own ``_actions``.

Expressions are Campo's expression language (``docs/expressions.md``) with the step's
variables as names; ``pseudo_random(...)`` gives repeatable noise, ``exp``/``ln`` curves.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from engine.errors import UserError

_Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=63)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DateRange(_Spec):
    """``{from: 2026-09-01, days: 90}``: consecutive dates."""

    start: dt.date = Field(alias="from")
    days: int = Field(ge=1, le=100_000)


class Loop(_Spec):
    """A loop variable's values: ``{range: [a, b]}`` (inclusive) or ``{dates: {...}}``."""

    range: tuple[int, int] | None = None
    dates: DateRange | None = None


class Step(_Spec):
    """Records of one entity."""

    entity: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
    key: _Name | list[_Name]
    loops: dict[_Name, list[Any] | Loop] = Field({}, alias="for")
    let: dict[_Name, Any] = {}
    when: str | None = None
    values: dict[_Name, Any] = {}
    records: list[dict[str, Any]] = []
    actions: list[_Name] = []
    actions_if: str | None = None

    @property
    def keys(self) -> list[str]:
        """The key fields (one, or several that are unique together)."""
        return [self.key] if isinstance(self.key, str) else list(self.key)


class DataSet(BaseModel):
    """One ``demo/*.yaml`` file (top-level ``x-...`` keys hold YAML anchors and are ignored)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    label: str | None = None
    steps: list[Step]


def loop_values(spec: list[Any] | Loop) -> list[Any]:
    """The values a loop variable takes."""
    if isinstance(spec, list):
        return spec
    if spec.range is not None:
        a, b = spec.range
        return list(range(a, b + 1))
    if spec.dates is not None:
        return [spec.dates.start + dt.timedelta(days=i) for i in range(spec.dates.days)]
    raise UserError("a loop needs 'range' or 'dates'")


def combinations(step: Step) -> Iterator[dict[str, Any]]:
    """Every assignment of the step's loop variables (one empty one without loops)."""
    names = list(step.loops)
    for combo in itertools.product(*(loop_values(step.loops[n]) for n in names)):
        yield dict(zip(names, combo, strict=True))


def load_data_sets(folder: Path) -> list[tuple[Path, DataSet]]:
    """The data sets of ``folder`` (``*.yaml``, by name); a mistake is a located UserError."""
    out = []
    for path in sorted(folder.glob("*.y*ml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            data = DataSet.model_validate(raw)
            unknown = [k for k in data.model_extra or {} if not k.startswith("x-")]
            if unknown:
                raise UserError(f"{path}: unknown key(s) {', '.join(unknown)}; expected label, "
                                "steps (and x-... anchors)")
            out.append((path, data))
        except yaml.YAMLError as err:
            raise UserError(f"{path}: {err}") from None
        except ValidationError as err:
            lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                     for e in err.errors()]
            raise UserError("\n".join(lines)) from None
    return out
