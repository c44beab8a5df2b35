"""``gate``: a record that matches ``when`` earns nothing unless ``require``
holds and absence stays within ``max_absence_share`` (考核合格, 出勤); with
``otherwise: preset`` only the credits an authority set count."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from xuefen.numbers import ZERO, fmt, q
from xuefen.policy.schema import Gate

from ..core import Context, Step, cite_of
from .base import RecordState, RuleKind

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def failed(ev: Evaluator, ctx: Context, st: RecordState) -> Gate | None:
    record = st.record
    for gate, when, require, limit in ev.gate_tests:
        if not when(ctx, record):
            continue
        ok = require(ctx, record) if require is not None else True
        if ok and limit is not None:
            absent = record.absent_hours or ZERO
            # absent / hours > limit, in exact decimals without building fractions
            if record.hours and absent * limit.denominator > record.hours * limit.numerator:
                ok = False
        if not ok:
            return gate
    return None


def apply(ev: Evaluator, ctx: Context, st: RecordState) -> None:
    gate = ev.decided("gate", st.facts, lambda: failed(ev, ctx, st))
    st.failed_gate = gate
    if gate is None or not st.lines:
        return
    record = st.record
    head = f"{st.year}年 {record.title or record.id}"
    cite = cite_of(ev.policy, gate)
    for line in st.lines:
        if gate.otherwise == "preset" and record.credits is not None:
            value: Decimal = record.credits
            text = f"{head}：{gate.reason}，按认定的 {fmt(record.credits)}学分计入{line.category}"
        else:
            value = ZERO
            text = f"{head}：{gate.reason}，不计学分"
        line.credits = q(value)
        line.gate_passed = False
        st.raw.pop(line.idx, None)
        anchor = st.anchors.pop(line.idx)
        st.steps[st.steps.index(anchor)] = Step("gate", text, rule=gate.id, cite=cite, record=record.id)


ENGINE = "per record, after the conversion: the first failing gate; its lines earn 0 (or the preset credits)"
BATCH = "stage1.record_exprs `__failed` (first failing gate); absence shares on the row-wise path"
SQL = "decision table `__failed`; absence-share gates per record in SQL (numeric tables)"
KIND = RuleKind("gate", Gate, ENGINE, BATCH, SQL, record=apply)
