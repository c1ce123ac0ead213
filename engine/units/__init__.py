"""Units of quantities: conversions with pint, and the field/metric unit systems.

A field's ``unit:`` in module YAML is its canonical unit: values are stored in it. People
choose a *unit system* (``field``: bbl, psi, °F, ft; ``metric``: m³, kPa, °C, m); the API
and the desk then show and accept each quantity in that system's unit for the field's
dimension (:func:`display_unit`), converted with pint (:func:`convert`). Units pint does
not know and words that are not units (``USD``, ``°API``, ``shots``) are never converted.

Example::

    from engine.units import convert, display_unit
    display_unit("bbl/d", "metric")            # 'm3/d'
    convert(Decimal("1000"), "bbl/d", "m3/d")  # Decimal('158.987294928')
"""

from __future__ import annotations

import logging
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SYSTEMS = ("field", "metric")
#: how module YAML writes a unit -> pint's name for it
ALIASES = {"bbl": "oil_barrel", "bbl/d": "oil_barrel / day", "m3": "meter ** 3",
           "m3/d": "meter ** 3 / day", "Mscf/d": "Mscf / day", "1/64 in": "sixty_fourth_inch",
           "mD": "millidarcy", "%": "percent", "degC": "degC", "degF": "degF",
           "scf/stb": "scf / stb", "scf/bbl": "scf / oil_barrel", "rb/stb": "rb / stb",
           "m3/m3": "meter ** 3 / meter ** 3", "sm3/m3": "meter ** 3 / meter ** 3",
           "kg/m3": "kilogram / meter ** 3", "1000 m3": "thousand_cubic_meter",
           "1000 m3/d": "thousand_cubic_meter / day"}
#: words shown as units that are not physical quantities: never converted
NOT_CONVERTED = frozenset({"USD", "USD/d", "degAPI", "shots", "shots/ft", "deg", "h", "d",
                           "%", "Hz", "V", "A", "spm", "s/qt"})
#: canonical unit -> the unit each system shows it in (units not listed are shown as stored)
DISPLAY = {
    "field": {"m": "ft", "km": "mi", "m3": "bbl", "m3/d": "bbl/d", "1000 m3": "Mscf",
              "1000 m3/d": "Mscf/d", "kPa": "psi", "bar": "psi", "MPa": "psi", "degC": "degF",
              "kg/m3": "ppg", "m/h": "ft/h", "kg/m": "lb/ft", "kW": "hp", "m3/m3": "scf/bbl",
              "km2": "acre"},
    "metric": {"ft": "m", "bbl": "m3", "bbl/d": "m3/d", "Mscf": "m3", "Mscf/d": "m3/d",
               "psi": "kPa", "degF": "degC", "ppg": "kg/m3", "ft/h": "m/h", "lb/ft": "kg/m",
               "hp": "kW", "scf/stb": "m3/m3", "scf/bbl": "m3/m3", "MMbbl": "MMbbl",
               "acre": "km2"},
}


class UnitError(ValueError):
    """A unit pint does not know, or two units of different dimensions."""


@cache
def registry() -> Any:
    """The shared pint registry with the oil-field definitions (built once, ~0.5 s)."""
    import pint

    reg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    reg.load_definitions(str(Path(__file__).with_name("oilfield.txt")))
    return reg


def _pint_name(unit: str) -> str:
    return ALIASES.get(unit, unit)


#: ``(src, dst)`` -> ``(a, b)`` (``dst = src * a + b``), None (the same unit) or the message
#: of the :class:`UnitError` the pair raises: every pair asked for so far, in this process
_FACTORS: dict[tuple[str, str], tuple[float, float] | None | str] = {}


def _factor(src: str, dst: str) -> tuple[float, float] | None:
    """``dst = src * a + b`` for two units (``None``: the same unit, nothing to do)."""
    key = (src, dst)
    if key in _FACTORS:
        known = _FACTORS[key]
        if isinstance(known, str):
            raise UnitError(known)
        return known
    try:
        found = _compute(src, dst)
    except UnitError as err:
        _FACTORS[key] = str(err)
        raise
    _FACTORS[key] = found
    return found


def _compute(src: str, dst: str) -> tuple[float, float] | None:
    if src == dst:
        return None
    if src in NOT_CONVERTED or dst in NOT_CONVERTED:
        raise UnitError(f"'{src}' cannot be converted to '{dst}'")
    reg = registry()
    try:
        zero = reg.Quantity(0.0, _pint_name(src)).to(_pint_name(dst)).magnitude
        one = reg.Quantity(1.0, _pint_name(src)).to(_pint_name(dst)).magnitude
    except Exception as err:  # pint raises several kinds (undefined, dimensionality, syntax)
        raise UnitError(f"cannot convert '{src}' to '{dst}': {err}") from None
    return float(one - zero), float(zero)


def known_factors() -> list[list[Any]]:
    """Every pair computed in this process, as JSON: ``[src, dst, [a, b] | null | message]``.

    ``campo serve`` computes the project's pairs before it starts the web processes and
    hands them over (:func:`seed_factors`): a worker then converts without loading pint
    (~5 MB per process), which it loads only for a pair nobody asked for before.
    """
    return [[src, dst, list(v) if isinstance(v, tuple) else v]
            for (src, dst), v in list(_FACTORS.items())]


def seed_factors(rows: list[list[Any]]) -> None:
    """Take pairs computed by another process (:func:`known_factors`)."""
    for src, dst, value in rows:
        _FACTORS[(str(src), str(dst))] = (
            (float(value[0]), float(value[1])) if isinstance(value, list)
            else None if value is None else str(value))


def check_conversion(src: str, dst: str) -> None:
    """Raise :class:`UnitError` unless ``src`` converts to ``dst``."""
    _factor(src, dst)


def convert(value: Any, src: str, dst: str) -> Any:
    """``value`` (int, float or Decimal) in ``src`` expressed in ``dst`` (same type kind:
    a Decimal stays a Decimal); None stays None."""
    f = _factor(src, dst)
    if value is None or f is None:
        return value
    a, b = f
    if isinstance(value, Decimal):
        return value * Decimal(repr(a)) + Decimal(repr(b))
    return float(value) * a + b


def display_unit(unit: str | None, system: str | None) -> str | None:
    """The unit a field stored in ``unit`` is shown in under ``system`` (None: as stored)."""
    if unit is None or system not in DISPLAY:
        return unit
    return DISPLAY[system].get(unit, unit)
