"""``multiplier``: every matching factor multiplies a converted line's credits
(北京 第十一条 双倍, 朝阳 附件3 主讲 ×2)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from xuefen.numbers import fmt, q
from xuefen.policy.schema import Multiplier

from ..core import Context, Step, cite_of
from .base import RecordState, RuleKind

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def _wording(m: Multiplier, old: Decimal, new: Decimal) -> Callable[[], str]:
    return lambda: f"{m.label}：{fmt(q(old))} × {fmt(m.factor)} = {fmt(q(new))}学分"


def apply(ev: Evaluator, ctx: Context, st: RecordState) -> None:
    if not st.raw:
        return
    record = st.record
    hits = ev.decided("multiplier", st.facts, lambda: [m for m, test in ev.multiplier_tests if test(ctx, record)])
    if not hits:
        return
    for idx, value in st.raw.items():
        anchor = st.anchors[idx]
        at = st.steps.index(anchor)
        for k, m in enumerate(hits):
            new = value * m.factor
            st.steps.insert(at + 1 + k, Step("multiplier", _wording(m, value, new), rule=m.id,
                                             cite=cite_of(ev.policy, m), record=st.record.id))
            value = new
        st.raw[idx] = value


ENGINE = "per record, on converted lines: the product of every matching factor, before rounding"
BATCH = "stage1.record_exprs `__mnum`/`__mden` (product of the matching factors as a fraction)"
SQL = "decision table `__mnum`/`__mden`"
KIND = RuleKind("multiplier", Multiplier, ENGINE, BATCH, SQL, record=apply)
