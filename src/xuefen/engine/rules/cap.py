"""``cap``: at most ``max`` (or a share of the scope's total, or only the
highest record) of a target counts in a year or the cycle, record by record in
the canonical order (year, record id), so input order never matters.  A
``cumulative`` cycle cap is also applied in each year, after the year's own
caps, with what the earlier years registered carried forward."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from xuefen.numbers import ZERO, fmt, q_down, share
from xuefen.policy.schema import Cap

from ..core import Context, Line, Step, cite_of, target_text
from .base import RuleKind, ScopeState

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def _clip(group: list[Line], amounts: dict[int, Decimal], limit: Decimal, running: Decimal) -> None:
    for ln in group:
        room = max(ZERO, limit - running)
        if amounts[ln.idx] > room:
            amounts[ln.idx] = room
        running += amounts[ln.idx]


def _register(ev: Evaluator, ctx: Context, sc: ScopeState, cap: Cap) -> None:
    """One year's share of a cumulative cycle cap: the year registers what
    room the earlier years left, and that amount is the year's figure."""
    assert cap.max is not None
    amounts = sc.amounts
    group = sorted((ln for ln in ev.target_lines(ctx, cap.target, sc.lines) if ln.counted_in_cycle),
                   key=lambda ln: ln.sort_key)
    if not group:
        return
    used = ev.registered.get(cap.id, ZERO)
    before = sum((amounts[ln.idx] for ln in group), ZERO)
    _clip(group, amounts, cap.max, used)
    after = sum((amounts[ln.idx] for ln in group), ZERO)
    ev.registered[cap.id] = used + after
    target, chosen = target_text(cap.target), ev.chosen_by(cap)
    if after < before:
        wording = (f"{sc.where}{target} {fmt(before)}学分，本周期此前已登记 {fmt(used)}学分，按周期累计上限 "
                   f"{fmt(cap.max)}学分本年只登记 {fmt(after)}学分，年度学分也按登记数计：{cap.label}{chosen}")
    else:
        wording = (f"{sc.where}{target} {fmt(before)}学分全部登记（本周期累计 {fmt(used + after)}学分，"
                   f"未超过上限 {fmt(cap.max)}学分：{cap.label}{chosen}）")
    sc.steps.append(Step("cap", wording, applied=after < before, rule=cap.id, cite=cite_of(ev.policy, cap),
                         scope=sc.scope, year=sc.year))


def apply(ev: Evaluator, ctx: Context, sc: ScopeState) -> None:
    p = ev.policy
    amounts, lines, where = sc.amounts, sc.lines, sc.where
    caps = [c for c in ev.caps if c.scope == sc.scope]
    # plain caps first, share-of-total caps last (they depend on the rest)
    for cap in sorted(caps, key=lambda c: c.share_of_total is not None):
        group = sorted(ev.target_lines(ctx, cap.target, lines), key=lambda ln: ln.sort_key)
        group = [ln for ln in group if not ln.excluded]
        before = sum((amounts[ln.idx] for ln in group), ZERO)
        if cap.highest_only and group:
            # group is in canonical order and max() keeps the first maximum:
            # among equal amounts the earliest record counts
            best = max(group, key=lambda ln: amounts[ln.idx])
            for ln in group:
                if ln is not best and amounts[ln.idx] > 0:
                    sc.steps.append(Step("cap", f"{where}{ln.record.title or ln.record.id} 不重复计分：{cap.label}",
                                         rule=cap.id, cite=cite_of(p, cap), scope=sc.scope, year=sc.year,
                                         record=ln.record.id))
                    amounts[ln.idx] = ZERO
        limit = cap.max
        if cap.share_of_total is not None:
            s = share(cap.share_of_total)
            ids = {ln.idx for ln in group}
            others = sum((amounts[ln.idx] for ln in lines if ln.idx not in ids and not ln.excluded), ZERO)
            allowed = q_down(Decimal(others) * Decimal(s.numerator) / Decimal(s.denominator - s.numerator))
            limit = allowed if limit is None else min(limit, allowed)
        if limit is not None:
            _clip(group, amounts, limit, ZERO)
        after = sum((amounts[ln.idx] for ln in group), ZERO)
        target, chosen = target_text(cap.target), ev.chosen_by(cap)
        if cap.cumulative:
            # the years have registered it already: the cycle says what that came to
            if group:
                sc.steps.append(Step("cap", f"{where}{target}逐年累计登记 {fmt(after)}学分（上限 "
                                            f"{fmt(cap.max or ZERO)}学分，各年度已按登记数计：{cap.label}{chosen}）",
                                     applied=False, rule=cap.id, cite=cite_of(p, cap), scope=sc.scope, year=sc.year))
        elif after < before:
            sc.steps.append(Step("cap", f"{where}{target}共 {fmt(before)}学分，按上限计 {fmt(after)}学分："
                                        f"{cap.label}{chosen}",
                                 rule=cap.id, cite=cite_of(p, cap), scope=sc.scope, year=sc.year))
        elif group:
            sc.steps.append(Step("cap", f"{where}{target}共 {fmt(before)}学分，未超过上限（{cap.label}{chosen}）",
                                 applied=False, rule=cap.id, cite=cite_of(p, cap), scope=sc.scope, year=sc.year))
    if sc.scope == "year":
        for cap in ev.caps:
            if cap.cumulative:
                _register(ev, ctx, sc, cap)


ENGINE = ("per scope, first: plain caps then share-of-total caps, record by record in canonical order; "
          "a cumulative cycle cap also in each year, after its own caps, carried from year to year")
BATCH = ("stage2: running sums clipped per group (kernels.apply_cap), highest_only, share_of_total; "
         "cumulative: a running sum per teacher in the year scope (the NumPy stage)")
SQL = ("window running sums in the canonical order, clipped; share-of-total; highest_only; "
       "cumulative: partitioned by teacher in the year scope")
KIND = RuleKind("cap", Cap, ENGINE, BATCH, SQL, caps=apply)
