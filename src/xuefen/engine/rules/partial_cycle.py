"""``partial_cycle``: a teacher who joins during the cycle owes an average per
remaining year, or a prorated structure (北京 第十三、十四条; 山东 第十九条)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xuefen.numbers import fmt, q
from xuefen.policy.schema import PartialCycle

from ..core import Context, Step, cite_of, describe_match, teacher_matches
from .base import MinimumAdjustment, RuleKind, StartState

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def start(ev: Evaluator, ctx: Context, st: StartState) -> None:
    """The partial cycle that applies to the teacher, if any, and the year
    her figures start."""
    p = ev.policy
    teacher = ctx.teacher
    cycle_start, cycle_end = ctx.cycle_start, ctx.cycle_end
    st.start_year = cycle_start
    for pc in ev.partials:
        if not teacher_matches(ctx, pc.applies_to):
            st.steps.append(Step("partial_cycle", f"“{pc.label}”不适用：仅适用于{describe_match(pc.applies_to)}",
                                 applied=False, rule=pc.id, cite=cite_of(p, pc), scope="teacher"))
            continue
        base = teacher.transfer_in_year if pc.start == "transfer_in_year" else teacher.hired_year
        if base is None:
            if pc.exclusive:
                break
            continue
        begin = base + 1 if pc.start == "hired_year_next" else base
        if begin <= cycle_start:
            st.steps.append(Step("partial_cycle", f"“{pc.label}”不缩短本周期：起算年 {begin} 不晚于周期起始年",
                                 applied=False, rule=pc.id, cite=cite_of(p, pc), scope="teacher"))
            if pc.exclusive:
                break  # this rule governs the teacher; later partial rules do not apply
            continue
        n = max(0, cycle_end - begin + 1)
        st.partial = (pc, n)
        st.start_year = begin
        st.steps.append(Step("partial_cycle", f"{pc.label}：自 {begin} 年起算，本周期计 {n} 年",
                             rule=pc.id, cite=cite_of(p, pc), scope="teacher"))
        break
    if st.partial is None:
        for value in (teacher.hired_year, teacher.transfer_in_year):
            if value is not None and value > st.start_year:
                st.start_year = value


def adjust(ev: Evaluator, ctx: Context, adj: MinimumAdjustment) -> None:
    # Structure minimums scale with the years owed; a programme's own minimum
    # (earned_credits, hours, count: 新任教师培训 ≥120) does not.
    m = adj.rule
    if adj.partial is None or m.measure != "credits":
        return
    rule, n = adj.partial
    years = ev.policy.cycle.years
    if rule.structure == "total_only":
        if m.target != "total":
            adj.steps.append(Step("partial_cycle", f"“{m.label}”不单独考核：{rule.label}",
                                  rule=rule.id, cite=cite_of(ev.policy, rule), scope="cycle"))
            adj.dropped = True
            return
        assert rule.per_year is not None
        adj.value = rule.per_year * n
        adj.notes.append(f"{fmt(rule.per_year)} × {n}年 = {fmt(adj.value)}")
    elif m.target == "total" and rule.per_year is not None:
        adj.value = rule.per_year * n
        adj.notes.append(f"{fmt(rule.per_year)} × {n}年 = {fmt(adj.value)}")
    else:
        new = q(adj.value * n / years)
        adj.notes.append(f"{fmt(adj.value)} × {n}/{years} = {fmt(new)}")
        adj.value = new


ENGINE = "per teacher: the year her figures start; cycle minimums scaled to the years owed"
BATCH = "stage2.stage2: per-teacher start year and years owed as vectors; cycle minimums scaled"
SQL = "per-teacher start year and years owed in SQL; cycle minimums scaled"
KIND = RuleKind("partial_cycle", PartialCycle, ENGINE, BATCH, SQL, start=start, adjust_minimum=adjust)
