"""``minimum``: what a year, the hire year or the cycle requires — credits
counted (after caps and transfers), credits earned, hours or a count of
records — of a total, a category, several categories, a theme or a match."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from xuefen.numbers import ZERO, fmt
from xuefen.policy.schema import Minimum, Target

from ..core import MEASURE_UNIT, Context, Requirement, Step, cite_of, describe_match, teacher_matches
from .base import RequirementState, RuleKind, ScopeState

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def requirements(ev: Evaluator, ctx: Context, rq: RequirementState) -> None:
    if rq.done:
        return
    p = ev.policy
    for m in ev.minimums_in(rq.scope, rq.year, ctx, rq.hire_only):
        if m.id in rq.waived:
            continue
        if not teacher_matches(ctx, m.applies_to):
            ev.once(rq.steps, m, Step("minimum", f"“{m.label}”不适用：仅适用于{describe_match(m.applies_to)}",
                                      applied=False, rule=m.id, cite=cite_of(p, m), scope="teacher"))
            continue
        if rq.scope == "cycle":
            adj = ev.adjust_cycle_minimum(ctx, m, rq.lines, rq.partial, rq.steps)
            if adj.dropped:
                continue
            rq.reqs.append(Requirement(m, adj.value, note="；".join(adj.notes)))
        else:
            rq.reqs.append(Requirement(m, m.min))


def actual(ev: Evaluator, ctx: Context, sc: ScopeState, rule: Minimum) -> Decimal:
    target = rule.target
    lines, amounts, counted = sc.lines, sc.amounts, sc.counted
    if rule.measure == "credits":
        if target == "total":
            return sum(counted.values(), ZERO)
        assert isinstance(target, Target)
        if target.category is not None:
            return counted[target.category]
        if target.categories is not None:
            return sum((counted[c] for c in target.categories), ZERO)
        return sum((amounts[ln.idx] for ln in ev.target_lines(ctx, target, lines) if not ln.excluded), ZERO)
    group = lines if target == "total" else ev.target_lines(ctx, target, lines)
    if rule.measure == "earned_credits":
        return sum((ln.credits for ln in group if ln.gate_passed), ZERO)
    records = {ln.record.id: ln.record for ln in group if ln.gate_passed}
    if rule.measure == "hours":
        return sum((r.hours or ZERO for r in records.values()), ZERO)
    return Decimal(len(records))


def measure(ev: Evaluator, ctx: Context, sc: ScopeState) -> None:
    for req in sc.reqs:
        req.actual = actual(ev, ctx, sc, req.rule)
        unit = MEASURE_UNIT[req.rule.measure]
        verdict = "达到" if req.met else f"未达到，尚缺 {fmt(req.missing)}{unit}"
        note = f"（{req.note}）" if req.note else ""
        text = f"{sc.where}{req.rule.label}：要求 {fmt(req.min)}{unit}{note}，实得 {fmt(req.actual)}{unit}，{verdict}"
        sc.steps.append(Step("minimum", text, rule=req.rule.id, cite=cite_of(ev.policy, req.rule), scope=sc.scope,
                             year=sc.year))


ENGINE = "per scope, last: each requirement that applies, measured after caps and transfers"
BATCH = "stage2: requirement vectors per (teacher, year) and per teacher; measures as group sums"
SQL = "minimums per year, hire year and cycle in SQL (credits, earned credits, hours, count)"
KIND = RuleKind("minimum", Minimum, ENGINE, BATCH, SQL, requirements=requirements, measure=measure)
