"""Widening and narrowing of column types (no database)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from engine.db.tables import ID_TYPE, UTCDateTime
from engine.db.typechange import classify, max_abs, max_length, shape_of


@pytest.mark.parametrize(("old", "new", "expected"), [
    (sa.String(20), sa.String(40), "widen"),
    (sa.VARCHAR(40), sa.String(40), "same"),
    (sa.String(40), sa.String(10), "narrow"),
    (sa.String(40), sa.Text(), "widen"),
    (sa.Text(), sa.String(255), "narrow"),
    (sa.INTEGER(), sa.BigInteger(), "widen"),
    (sa.BigInteger(), sa.Integer(), "narrow"),
    (sa.BigInteger(), sa.Numeric(18, 4), "widen"),
    (sa.BigInteger(), sa.Float(), "widen"),
    (sa.Numeric(10, 2), sa.Numeric(12, 2), "widen"),
    (sa.Numeric(10, 2), sa.Numeric(12, 4), "widen"),
    (sa.Numeric(10, 2), sa.Numeric(11, 4), "narrow"),   # integer digits 8 -> 7
    (sa.Numeric(10, 4), sa.Numeric(10, 2), "narrow"),   # scale down rounds
    (sa.Numeric(10, 2), sa.Float(), "narrow"),
    (sa.Float(), sa.Numeric(10, 2), "narrow"),
    (postgresql.DOUBLE_PRECISION(precision=53), sa.Float(), "same"),
    (sa.String(20), sa.BigInteger(), "narrow"),
    (sa.Boolean(), sa.String(10), "narrow"),
    (postgresql.TIMESTAMP(timezone=True), UTCDateTime(), "same"),
    (sa.Date(), UTCDateTime(), "narrow"),
    (postgresql.JSONB(), sa.JSON(), "same"),
])
def test_classify(old: Any, new: Any, expected: str) -> None:
    assert classify(old, new) == expected


def test_shapes_see_through_decorators_and_variants() -> None:
    assert shape_of(UTCDateTime()).family == "datetime"
    assert shape_of(ID_TYPE).family == "int"
    assert shape_of(sa.Numeric(10, 2)) == shape_of(sa.NUMERIC(10, 2))


def test_limits() -> None:
    assert max_abs(sa.Numeric(10, 2)) == 10 ** 8
    assert max_abs(sa.Float()) is None
    assert max_length(sa.String(12)) == 12
    assert max_length(sa.Text()) is None
