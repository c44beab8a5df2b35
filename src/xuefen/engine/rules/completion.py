"""``completion``: a record that passed its gates and matches ``when``
completes the whole cycle (a degree, a programme the text says counts as the
cycle)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xuefen.policy.schema import Completion

from ..core import Context, Step, cite_of, matches
from .base import ROUTED, CycleRecordsState, RuleKind

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def apply(ev: Evaluator, ctx: Context, st: CycleRecordsState) -> None:
    for comp in ev.completions:
        # completing the cycle needs a record that passed its gates (合格)
        hit = next((r for r, rr in st.pairs if rr.gate_passed and matches(ctx, comp.when, r)), None)
        if hit is not None:
            st.completed_by = (comp, hit)
            st.steps.append(Step("completion", f"记录 {hit.id}：{comp.label}，视为完成本周期",
                                 rule=comp.id, cite=cite_of(ev.policy, comp), scope="cycle"))
            return
        st.steps.append(Step("completion", f"“{comp.label}”不适用：没有符合条件的记录", applied=False,
                             rule=comp.id, cite=cite_of(ev.policy, comp), scope="cycle"))


ENGINE = "per teacher, over the cycle's records: a matching passed record completes the cycle"
BATCH = ROUTED
SQL = ROUTED
KIND = RuleKind("completion", Completion, ENGINE, BATCH, SQL, cycle_records=apply)
