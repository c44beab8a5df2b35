"""``waive``: named minimums do not apply to the teachers ``applies_to``
matches (年龄, 岗位 exemptions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xuefen.policy.schema import Waive

from ..core import Context, Step, cite_of, teacher_matches
from .base import RequirementState, RuleKind

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def apply(ev: Evaluator, ctx: Context, rq: RequirementState) -> None:
    if rq.done:
        return
    for w in ev.waives:
        if teacher_matches(ctx, w.applies_to):
            for rid in w.rules:
                rq.waived[rid] = w
    if not rq.waived:
        return
    where = f"{rq.year}年" if rq.year is not None else "本周期"
    for m in ev.minimums_in(rq.scope, rq.year, ctx, rq.hire_only):
        by = rq.waived.get(m.id)
        if by is not None:
            rq.steps.append(Step("waive", f"{where}不考核“{m.label}”：{by.label}", rule=by.id, cite=cite_of(ev.policy, by),
                                 scope=rq.scope, year=rq.year))


ENGINE = "per scope: the named minimums are not required of the matching teachers"
BATCH = "stage2: per-teacher waiver masks remove the minimum"
SQL = "teacher decision table: waiver flags remove the minimum"
KIND = RuleKind("waive", Waive, ENGINE, BATCH, SQL, requirements=apply)
