"""Template filters: credits shown exactly as the engine states them."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

from xuefen.numbers import fmt

register = template.Library()


@register.filter
def credits(value: Any) -> str:
    """64.800 -> 64.8; None -> —."""
    if value is None or value == "":
        return "—"
    try:
        return fmt(Decimal(str(value)))
    except InvalidOperation:
        return str(value)
