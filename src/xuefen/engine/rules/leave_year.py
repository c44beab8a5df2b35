"""``leave_year``: a year of the named leave (产假, 病假, 脱产进修) replaces its
yearly minimums, and reduces the cycle minimums by ``cycle_reduction`` per
such year."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xuefen.numbers import ZERO, fmt
from xuefen.policy.schema import LeaveYear, Minimum, Target

from ..core import Context, Requirement, Step, cite_of
from .base import MinimumAdjustment, RequirementState, RuleKind

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def year_minimums(rule: LeaveYear) -> list[Minimum]:
    """The minimums a leave year requires instead of the year's own."""
    return [Minimum(kind="minimum", id=f"{rule.id}#{k + 1}", label=rule.label, cite=rule.cite, scope="year",
                    target=lm.target, min=lm.min) for k, lm in enumerate(rule.year_minimums)]


def requirements(ev: Evaluator, ctx: Context, rq: RequirementState) -> None:
    if rq.scope != "year" or rq.year is None or rq.hire_only:
        return
    kinds = ctx.teacher.leave_kinds(rq.year)
    rule = next((lr for lr in ev.leaves if kinds & set(lr.kinds)), None)
    if rule is None:
        return
    rq.steps.append(Step("leave_year", f"{rq.year}年为{'/'.join(sorted(kinds))}年度：{rule.label}",
                         rule=rule.id, cite=cite_of(ev.policy, rule), scope="year", year=rq.year))
    rq.reqs.extend(Requirement(m, m.min) for m in ev.leave_minimums[rule.id])
    rq.done = True


def adjust(ev: Evaluator, ctx: Context, adj: MinimumAdjustment) -> None:
    m = adj.rule
    if m.measure != "credits":
        return
    key = "total" if m.target == "total" else (m.target.category if isinstance(m.target, Target) else None)
    if key is None:
        return
    for lr in ev.leaves:
        cut = lr.cycle_reduction.get(key)
        if not cut:
            continue
        n_leave = len({lv.year for lv in ctx.teacher.leaves
                       if lv.kind in lr.kinds and ctx.cycle_start <= lv.year <= ctx.cycle_end})
        if n_leave:
            new = max(ZERO, adj.value - cut * n_leave)
            adj.notes.append(f"假期年度 {n_leave} 个，减 {fmt(cut * n_leave)}")
            adj.steps.append(Step("leave_year", f"“{m.label}”因{'/'.join(lr.kinds)}年度减为 {fmt(new)}",
                                  rule=lr.id, cite=cite_of(ev.policy, lr), scope="cycle"))
            adj.value = new


ENGINE = "per year: its minimums replaced; per cycle: minimums reduced per leave year"
BATCH = ("stage2: leave years per teacher as vectors (minimums on totals and categories); teachers with leave under "
         "minimums on themes or matches routed to the per-teacher engine")
SQL = "leave years joined in SQL (totals and categories); other leave minimums routed to the per-teacher engine"
KIND = RuleKind("leave_year", LeaveYear, ENGINE, BATCH, SQL, requirements=requirements, adjust_minimum=adjust)
