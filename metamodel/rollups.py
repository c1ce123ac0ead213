"""ERP rollups in the module language: records computed from tag history (``history_rollups:``).

A module that owns an entity says how its records are filled from the history of the
assets' tags, one record per bound asset (an instance of a tag template bound to an ERP
record) and production day::

    history_rollups:
      daily_from_tags:
        entity: daily_production          # this module's entity (or module.entity)
        template: esp_well                # every bound instance of this template
        link: well                        # the link field set to the instance's record
        date: prod_date                   # the date field set to the production day
        set: {source: historian}          # constant values
        values:
          oil: {integral: liquid_rate, per: d}   # bbl/d over the day -> bbl
          hours_on: {hours_on: running}          # hours the run-state tag was true
          thp: {twa: thp}                        # time-weighted average

The production day starts at the site's ``history: {day_start_hour, timezone}`` (tags/).
Aggregates: ``integral`` (time integral of a rate; ``per`` is the rate's time unit),
``hours_on`` (hours a bool, or 0/1, tag was true), ``twa``, ``avg``, ``min``, ``max``,
``first``, ``last``, ``count``; ``factor`` multiplies the result (unit conversion).
Checked against the entity and the tag template by the engine (``engine.historian.erp``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from .spec import LabelText, Name, Spec

AGGREGATES: tuple[str, ...] = ("integral", "hours_on", "twa", "avg", "min", "max", "first",
                               "last", "count")
#: seconds in each ``per`` unit of a rate
PER_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}

TagName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$",
                                           max_length=200)]
EntityName = Annotated[str, StringConstraints(
    pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$", max_length=127)]


class RollupValueSpec(Spec):
    """One field of the record: one aggregate of one of the asset's tags over the day."""

    integral: TagName | None = Field(None, description="Time integral of a rate tag.")
    hours_on: TagName | None = Field(None, description="Hours a bool (or 0/1) tag was true.")
    twa: TagName | None = Field(None, description="Time-weighted average.")
    avg: TagName | None = Field(None, description="Average of the samples.")
    min: TagName | None = Field(None, description="Smallest sample.")
    max: TagName | None = Field(None, description="Largest sample.")
    first: TagName | None = Field(None, description="First sample of the day.")
    last: TagName | None = Field(None, description="Last sample of the day.")
    count: TagName | None = Field(None, description="Number of samples.")
    per: Literal["s", "min", "h", "d"] = Field(
        "d", description="With integral: the rate's time unit (bbl/d: d).")
    factor: Annotated[float, Field(allow_inf_nan=False)] = Field(
        1.0, description="Multiplies the result (unit conversion).")

    @model_validator(mode="after")
    def _one(self) -> RollupValueSpec:
        given = [a for a in AGGREGATES if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of " + ", ".join(AGGREGATES)
                             + (f" (got {', '.join(given)})" if given else ""))
        return self

    @property
    def aggregate(self) -> str:
        """The aggregate asked for."""
        return next(a for a in AGGREGATES if getattr(self, a) is not None)

    @property
    def tag(self) -> str:
        """The template tag it reads."""
        value = getattr(self, self.aggregate)
        assert isinstance(value, str)
        return value


class HistoryRollupSpec(Spec):
    """Records computed from tag history: one per bound asset and production day."""

    label: LabelText | None = Field(None, description="Name of the rule shown to people.")
    description: str | None = Field(None, description="What the rule computes, for readers.")
    entity: EntityName = Field(description="The entity written: 'entity' of this module or "
                               "'module.entity'.")
    template: Name = Field(description="The tag template whose bound instances get records.")
    link: Name = Field(description="The entity's link field set to the instance's bound record.")
    date: Name = Field(description="The entity's date field set to the production day.")
    values: dict[Name, RollupValueSpec] = Field(description="Fields computed from tags.")
    set: dict[Name, str | int | float | bool] = Field(
        {}, description="Fields given a constant value (e.g. source: historian).")
    schedule: Literal["daily", "manual"] = Field(
        "daily", description="daily: computed once each production day has closed; manual: "
        "only by 'campo history rollup'.")


__all__ = ["AGGREGATES", "HistoryRollupSpec", "PER_SECONDS", "RollupValueSpec"]
