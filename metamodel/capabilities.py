"""Entity keys for generic engine capabilities: ``allocations:`` and ``exports:``.

A leaf of the metamodel (imports pydantic only) so :mod:`metamodel.model` can use it; the
cross-references and expressions are checked by :mod:`engine.rules.capabilities`.
See ``docs/modeling.md`` (Allocations, Exports).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

_Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=63)]
_EntityRef = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")]
_Expr = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
#: ``{es: ..., en: ...}`` or one text for both languages
Label = dict[Literal["es", "en"], str] | Annotated[str, StringConstraints(min_length=1)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def label_text(value: Label | None, lang: str, fallback: str) -> str:
    """The text of a capability's ``label:`` in ``lang`` (es/en), with fallbacks."""
    if value is None:
        return fallback.replace("_", " ").capitalize()
    if isinstance(value, str):
        return value
    other = "en" if lang == "es" else "es"
    return value.get(lang) or value.get(other) or fallback  # type: ignore[call-overload]


class SplitSpec(_Spec):
    """One measured total distributed over the rows."""

    total: _Name = Field(description="Field of this entity holding the measured total.",
                         examples=["oil_measured"])
    weight: _Expr = Field(description="Expression over each row (self is the row): its share "
                          "is proportional to this number (>= 0).",
                          examples=["self.theoretical_oil", "self.test_rate * self.hours_on"])
    into: _Name = Field(description="Decimal or int field of the rows that receives each "
                        "share; its scale is the rounding step.", examples=["allocated_oil"])
    factor: _Name | None = Field(None, description="Optional decimal field of this entity that "
                                 "receives total / sum of weights.", examples=["oil_factor"])


class AllocationSpec(_Spec):
    """Distribute measured totals of a record over matching rows of another entity."""

    label: Label | None = Field(None, description="The action's text for people.")
    rows: _EntityRef = Field(description="The entity whose records receive the shares.",
                             examples=["production.daily_production"])
    match: dict[_Name, _Name] = Field(
        description="Row field -> field of this record: rows whose values equal the "
        "record's take part.", examples=[{"facility": "facility", "prod_date": "prod_date"}],
        min_length=1)
    when: _Expr | None = Field(None, description="Condition on this record (self) for the "
                               "allocation to run.", examples=["self.status == 'open'"])
    roles: list[_Name] | None = Field(None, description="Roles that may run it (admin always "
                                      "may). Default: roles allowed to update this entity.")
    count_into: _Name | None = Field(None, description="Optional int field of this entity "
                                     "that receives the number of rows.")
    split: list[SplitSpec] = Field(min_length=1, description="The totals to distribute.")


class ExportSpec(_Spec):
    """An export format: a template rendered with the records."""

    label: Label | None = Field(None, description="The format's name for people.",
                                examples=["WITSML 1.4.1 drillReport"])
    template: Annotated[str, StringConstraints(min_length=1, max_length=300)] = Field(
        description="Jinja template file, relative to the module file's folder.",
        examples=["exports/drill_report.witsml.xml"])
    media_type: str = Field("application/xml", description="Content-Type of the answer.")
    extension: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{1,8}$")] = Field(
        "xml", description="File name extension of the download.")
    expand: list[_Name] = Field(
        [], description="Link fields whose linked record the template receives as "
        "links.<field>.", examples=[["well"]])
    units: dict[_Name, str] = Field(
        {}, description="Field -> unit the template receives the value in (converted from "
        "the field's unit), e.g. {depth_to_md: ft}.")
