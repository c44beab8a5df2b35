"""``penalty``: each matching record of the cycle raises a cycle minimum
(a failed or abandoned training owes more)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xuefen.numbers import fmt
from xuefen.policy.schema import Penalty

from ..core import Context, Step, cite_of, matches
from .base import ROUTED, MinimumAdjustment, RuleKind

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def adjust(ev: Evaluator, ctx: Context, adj: MinimumAdjustment) -> None:
    m = adj.rule
    for pen in ev.penalties:
        if pen.rule != m.id:
            continue
        count = sum(1 for r in ev.cycle_records if matches(ctx, pen.when, r))
        if count:
            adj.value = adj.value + pen.amount * count
            adj.notes.append(f"加修 {fmt(pen.amount * count)}")
            adj.steps.append(Step("penalty", f"“{m.label}”提高 {fmt(pen.amount * count)}：{pen.label}",
                                  rule=pen.id, cite=cite_of(ev.policy, pen), scope="cycle"))


ENGINE = "per cycle minimum: raised by the amount for each matching record of the cycle"
BATCH = ROUTED
SQL = ROUTED
KIND = RuleKind("penalty", Penalty, ENGINE, BATCH, SQL, adjust_minimum=adjust)
