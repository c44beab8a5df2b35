"""Exact credit arithmetic.

Credits are ``decimal.Decimal`` everywhere.  A per-record figure is rounded
half-up to thousandths (``QUANTUM``), the resolution every policy's figures
are stated in; sums, caps and comparisons after that are exact.  Binary floats
never enter: readers parse numbers from their text.
"""

from __future__ import annotations

import functools
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

QUANTUM = Decimal("0.001")
ZERO = Decimal(0)


def dec(value: object) -> Decimal:
    """Parse a policy or input number exactly.  Floats are refused: a float has
    already lost the figure the user wrote."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("布尔值不是数字")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise TypeError(f"二进制浮点数 {value!r} 不能精确表示学分，请用字符串或整数")
    if isinstance(value, str):
        text = value.strip()
        if "/" in text:
            frac = Fraction(text)
            return Decimal(frac.numerator) / Decimal(frac.denominator)
        try:
            result = Decimal(text)
        except InvalidOperation as exc:
            raise ValueError(f"“{value}”不是数字") from exc
        if not result.is_finite():
            raise ValueError(f"“{value}”不是有限数字")
        return result
    raise TypeError(f"{type(value).__name__} 不是数字")


def q(value: Decimal) -> Decimal:
    """Round a computed per-record figure to thousandths, half up."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def q_down(value: Decimal) -> Decimal:
    """Round down to thousandths: used for caps, which must never be exceeded."""
    return value.quantize(QUANTUM, rounding=ROUND_DOWN)


def fmt(value: Decimal) -> str:
    """Shortest exact text: 64.800 -> "64.8", 26.000 -> "26"."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


@functools.cache
def share(value: str) -> Fraction:
    """A share such as "1/3" or "0.25" as an exact fraction."""
    return Fraction(value.strip())
