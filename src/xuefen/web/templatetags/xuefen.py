"""Template filters: credits shown exactly as the engine states them, and the
engine's verdict words in the reader's language."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.translation import gettext as _

from xuefen.engine.core import EARLY, FAILED, IN_PROGRESS, PASSED
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


@register.filter
def verdict(value: Any) -> str:
    """The engine's 达标 / 已达标（提前完成） / 进行中 / 未达标, translated for display."""
    words = {PASSED: _("达标"), EARLY: _("已达标（提前完成）"), IN_PROGRESS: _("进行中"), FAILED: _("未达标")}
    if value is None or value == "":
        return _("未评估")
    return words.get(str(value), str(value))


@register.filter
def verdict_class(value: Any) -> str:
    return {PASSED: "ok", EARLY: "ok", IN_PROGRESS: "going", FAILED: "bad"}.get(str(value), "none")


@register.filter
def measure_unit(value: Any) -> str:
    return {"hours": _("学时"), "count": _("次")}.get(str(value), _("学分"))


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``mapping[key]`` in a template (None when absent)."""
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def plain_explanation(record: Any) -> str:
    """A record's explanation without the year and title its row shows."""
    from xuefen.web.wording import explanation

    text = getattr(record, "engine_explanation", None) or record.explanation
    return explanation(text, record.year, record.title, record.uid)


@register.filter
def policy_name(policy_id: str) -> str:
    from xuefen.web.wording import policy_name as name

    return name(policy_id)


@register.filter
def pct_class(value: Any) -> str:
    """A progress bar's width as a class (``w-0`` … ``w-100`` in steps of 5):
    the CSP allows no inline style attributes."""
    try:
        pct = max(0, min(100, int(value)))
    except (TypeError, ValueError):
        pct = 0
    return f"w-{5 * round(pct / 5)}"
