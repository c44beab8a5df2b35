"""``conversion``: the first matching rule turns a record into credited lines
(one per output), by hours, days, topics, a fixed amount, a table, bands or
the credits an authority set."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from xuefen.model import Record
from xuefen.numbers import ZERO, fmt, q
from xuefen.policy.schema import Conversion, Credits, Output

from ..core import FIELD_NAMES, Context, Line, Step, cite_of
from .base import RecordState, RuleKind

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def convert(credits: Credits, record: Record) -> tuple[Decimal | None, Callable[[], str]]:
    """Credits for one record by one method, and the arithmetic spelled out
    (as a function: written only when read).  None when a fact the method
    needs is missing."""
    hours = record.hours
    prefix = ""
    if hours is None and credits.day_hours is not None and record.days is not None:
        hours = record.days * credits.day_hours
        prefix = f"{fmt(record.days)}天 × {fmt(credits.day_hours)}学时/天 = {fmt(hours)}学时，"
    if credits.hours_per_credit is not None:
        if hours is None:
            return None, lambda: "缺少学时，无法换算"
        value = hours / credits.hours_per_credit
        return value, lambda: f"{prefix}{fmt(hours)}学时 ÷ {fmt(credits.hours_per_credit)}学时/学分 = {fmt(q(value))}学分"
    if credits.credits_per_hour is not None:
        if hours is None:
            return None, lambda: "缺少学时，无法换算"
        value = hours * credits.credits_per_hour
        return value, lambda: f"{prefix}{fmt(hours)}学时 × {fmt(credits.credits_per_hour)} = {fmt(q(value))}学分"
    if credits.fixed is not None:
        return credits.fixed, lambda: f"按项计 {fmt(credits.fixed)}学分"
    if credits.by is not None:
        key = record.get(credits.by.field)
        label = FIELD_NAMES.get(credits.by.field, credits.by.field)
        if key is None or str(key) not in credits.by.values:
            return None, lambda: f"{label}“{key if key is not None else '未填写'}”没有对应的学分标准"
        rate = credits.by.values[str(key)]
        if credits.by.per_hour:
            if hours is None:
                return None, lambda: "缺少学时，无法换算"
            value = hours * rate
            return value, lambda: f"{prefix}{key} {fmt(hours)}学时 × {fmt(rate)} = {fmt(q(value))}学分"
        return rate, lambda: f"{key}按项计 {fmt(rate)}学分"
    if credits.per_day is not None:
        if record.days is None:
            return None, lambda: "缺少天数，无法换算"
        value = record.days * credits.per_day
        return value, lambda: f"{fmt(record.days)}天 × {fmt(credits.per_day)}学分/天 = {fmt(q(value))}学分"
    if credits.per_topic is not None:
        if record.topics is None:
            return None, lambda: "缺少专题数，无法换算"
        value = Decimal(record.topics) * credits.per_topic
        return value, lambda: f"{record.topics}个专题 × {fmt(credits.per_topic)}学分 = {fmt(q(value))}学分"
    if credits.preset:
        if record.credits is None:
            return None, lambda: "须由认定机构填写学分（认定学分为空）"
        return record.credits, lambda: f"按认定机构确定的 {fmt(record.credits)}学分计"
    if credits.bands is not None:
        raw = record.get(credits.bands.field)
        label = FIELD_NAMES.get(credits.bands.field, credits.bands.field)
        if raw is None:
            return None, lambda: f"缺少{label}，无法确定学分档次"
        amount = Decimal(raw)
        for band in credits.bands.bands:
            if amount >= band.min and (band.max is None or amount < band.max):
                upper = f"–{fmt(band.max)}" if band.max is not None else "以上"
                return band.credits, _said(f"{label} {fmt(amount)}，属 {fmt(band.min)}{upper} 档，计 {fmt(band.credits)}学分")
        return None, lambda: f"{label} {fmt(amount)} 不在任何学分档次内"
    raise AssertionError("schema guarantees one method")


def missing_fact(credits: Credits, record: Record) -> str:
    """The fact a method found missing (when :func:`convert` gave None)."""
    if credits.hour_based and record.hours is None and not (credits.day_hours is not None and record.days is not None):
        return FIELD_NAMES["hours"] if credits.day_hours is None else "学时（或天数）"
    if credits.per_day is not None:
        return FIELD_NAMES["days"]
    if credits.per_topic is not None:
        return FIELD_NAMES["topics"]
    if credits.preset:
        return FIELD_NAMES["credits"]
    if credits.bands is not None:
        return FIELD_NAMES.get(credits.bands.field, credits.bands.field)
    assert credits.by is not None
    return FIELD_NAMES.get(credits.by.field, credits.by.field)


def _said(text: str) -> Callable[[], str]:
    return lambda: text


def _pending(head: str, label: str, text: Callable[[], str]) -> Callable[[], str]:
    return lambda: f"{head}：{label}，{text()}，暂不计学分"


def _converted(head: str, label: str, text: Callable[[], str], into: str) -> Callable[[], str]:
    return lambda: f"{head} {label}：{text()}，计入{into}"


def output_category(ev: Evaluator, out: Output, record: Record) -> str | None:
    if out.category != "@record":
        return out.category
    if record.category is None:
        return None
    cat = ev.policy.category(record.category)
    return cat.id if cat else None


def apply(ev: Evaluator, ctx: Context, st: RecordState) -> None:
    record = st.record
    head = f"{st.year}年 {record.title or record.id}"
    conversion = ev.decided("conversion", st.facts, lambda: ev.conversion_for(ctx, record))
    if conversion is None:
        st.steps.append(Step("conversion", f"{head}：没有适用的换算规则，本记录不计学分", record=record.id))
        return
    st.conversion = conversion
    cite = cite_of(ev.policy, conversion)
    for k, out in enumerate(ev.outputs[conversion.id]):
        category = output_category(ev, out, record)
        theme = record.theme if out.theme == "@record" else out.theme
        if category is None:
            why = f"{conversion.label}，但记录的学分类别“{record.category or '未填写'}”不属于本政策，不计学分"
            st.steps.append(Step("conversion", f"{head}：{why}", rule=conversion.id, cite=cite, record=record.id))
            continue
        line = Line(st.first_line + k, st.index, record, category, theme, ZERO, st.year)
        st.lines.append(line)
        value, text = convert(out.credits, record)
        if value is None:
            step = Step("conversion", _pending(head, conversion.label, text), rule=conversion.id, cite=cite,
                        record=record.id)
            st.missing.append(missing_fact(out.credits, record))
        else:
            into = f"{category}·{theme}" if theme else category
            step = Step("conversion", _converted(head, conversion.label, text, into), rule=conversion.id, cite=cite,
                        record=record.id)
            st.raw[line.idx] = value
        st.steps.append(step)
        st.anchors[line.idx] = step


ENGINE = "per record: the first matching rule; one line per output, credits by the method"
BATCH = "stage1.record_exprs `__conv` + slot_exprs (category, theme, coefficient per output); columnar decision tables"
SQL = "decision table (conversion, coefficient per output); quantity × coefficient in SQL"
KIND = RuleKind("conversion", Conversion, ENGINE, BATCH, SQL, record=apply)
