"""``cap``: at most ``max`` (or a share of the scope's total, or only the
highest record) of a target counts in a year or the cycle, record by record in
the canonical order (year, record id), so input order never matters.  A
``cumulative`` cycle cap is also applied in each year, after the year's own
caps, with what the earlier years registered carried forward."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from xuefen.numbers import ZERO, fmt, q_down, share
from xuefen.policy.schema import Cap, Target

from ..allocate import allocate, crossing, two_families
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
    # the cycle's report sums this with the other years' (report.theme lines)
    sc.cuts[cap.id] = before - after
    target, chosen = target_text(cap.target), ev.chosen_by(cap)
    if after < before:
        wording = (f"{sc.where}{target} {fmt(before)}学分，本周期此前已登记 {fmt(used)}学分，按周期累计上限 "
                   f"{fmt(cap.max)}学分本年只登记 {fmt(after)}学分，年度学分也按登记数计：{cap.label}{chosen}")
    else:
        wording = (f"{sc.where}{target} {fmt(before)}学分全部登记（本周期累计 {fmt(used + after)}学分，"
                   f"未超过上限 {fmt(cap.max)}学分：{cap.label}{chosen}）")
    sc.steps.append(Step("cap", wording, applied=after < before, rule=cap.id, cite=cite_of(ev.policy, cap),
                         scope=sc.scope, year=sc.year))


def plain(cap: Cap) -> bool:
    """A cap with a fixed limit: one of the groups allocated together when caps cross."""
    return cap.max is not None and cap.share_of_total is None


def _disjoint(a: Target, b: Target) -> bool:
    """Targets no line can be in both of (a line has one category and one theme)."""
    if a.category is not None and b.category is not None:
        return a.category != b.category
    if a.theme is not None and b.theme is not None:
        return a.theme != b.theme
    for one, other in ((a, b), (b, a)):
        if one.theme is not None and other.themes is not None:
            return one.theme not in other.themes
    for one, other in ((a, b), (b, a)):
        if one.category is not None and other.categories is not None:
            return one.category not in other.categories
    return False


def crossable_caps(caps: list[Cap]) -> list[tuple[Cap, Cap]]:
    """The pairs of fixed-limit caps that could cross, in the order they are
    applied (each year's caps before the cycle's, policy order within a
    scope).  The engine looks for crossings only when there is such a pair;
    the batch evaluator sends a teacher with a line in both of a pair that
    crosses to the engine."""
    fixed = [c for c in caps if plain(c)]
    ordered = [c for c in fixed if c.scope == "year"] + [c for c in fixed if c.scope == "cycle"]
    return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:] if not _disjoint(a.target, b.target)]


def family(ev: Evaluator, ctx: Context, sc: ScopeState) -> list[tuple[Cap, list[Line]]]:
    """The fixed-limit groups that bound this scope's lines, in the order they
    are applied: a year's own caps; for the cycle, every year's caps (year caps
    carry into the cycle) and then the cycle's."""
    live = [ln for ln in sc.lines if not ln.excluded]
    if sc.scope == "year":
        return [(c, ev.target_lines(ctx, c.target, live)) for c in ev.caps if c.scope == "year" and plain(c)]
    out = []
    years = sorted({ln.year for ln in live})
    for c in ev.caps:
        if c.scope == "year" and plain(c):
            covered = ev.target_lines(ctx, c.target, live)
            out += [(c, [ln for ln in covered if ln.year == y]) for y in years]
    out += [(c, ev.target_lines(ctx, c.target, live)) for c in ev.caps if c.scope == "cycle" and plain(c)]
    return out


def crossed(groups: list[tuple[Cap, list[Line]]]) -> bool:
    """Whether applying these caps one after another could lose credits:
    two groups share a line and the one applied first is not inside the other."""
    sets = [frozenset(ln.idx for ln in lines) for _, lines in groups]
    return any(crossing(a, b) for i, a in enumerate(sets) for b in sets[i + 1:])


def _highest(ev: Evaluator, sc: ScopeState, cap: Cap, group: list[Line]) -> None:
    amounts = sc.amounts
    # group is in canonical order and max() keeps the first maximum:
    # among equal amounts the earliest record counts
    best = max(group, key=lambda ln: amounts[ln.idx])
    for ln in group:
        if ln is not best and amounts[ln.idx] > 0:
            sc.steps.append(Step("cap", f"{sc.where}{ln.record.title or ln.record.id} 不重复计分：{cap.label}",
                                 rule=cap.id, cite=cite_of(ev.policy, cap), scope=sc.scope, year=sc.year,
                                 record=ln.record.id))
            amounts[ln.idx] = ZERO


def _say(ev: Evaluator, sc: ScopeState, cap: Cap, group: list[Line], before: Decimal) -> None:
    p, where = ev.policy, sc.where
    after = sum((sc.amounts[ln.idx] for ln in group), ZERO)
    if group:
        sc.cuts[cap.id] = before - after
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


def _one(ev: Evaluator, ctx: Context, sc: ScopeState, cap: Cap) -> None:
    """One cap applied on its own, record by record in canonical order."""
    amounts, lines = sc.amounts, sc.lines
    group = sorted(ev.target_lines(ctx, cap.target, lines), key=lambda ln: ln.sort_key)
    group = [ln for ln in group if not ln.excluded]
    before = sum((amounts[ln.idx] for ln in group), ZERO)
    if cap.highest_only and group:
        _highest(ev, sc, cap, group)
    limit = cap.max
    if cap.share_of_total is not None:
        s = share(cap.share_of_total)
        ids = {ln.idx for ln in group}
        others = sum((amounts[ln.idx] for ln in lines if ln.idx not in ids and not ln.excluded), ZERO)
        allowed = q_down(Decimal(others) * Decimal(s.numerator) / Decimal(s.denominator - s.numerator))
        limit = allowed if limit is None else min(limit, allowed)
    if limit is not None:
        _clip(group, amounts, limit, ZERO)
    _say(ev, sc, cap, group, before)


def _together(ev: Evaluator, ctx: Context, sc: ScopeState, groups: list[tuple[Cap, list[Line]]]) -> bool:
    """The fixed-limit caps of a scope allocated together (see
    :mod:`xuefen.engine.allocate`); False, changing nothing, when their groups
    cannot be split into two nesting families."""
    sets = [frozenset(ln.idx for ln in lines) for _, lines in groups]
    side = two_families(sets)
    if side is None:
        return False
    amounts = sc.amounts
    live = sorted((ln for ln in sc.lines if not ln.excluded), key=lambda ln: ln.sort_key)
    if sc.scope == "cycle":
        # the years' caps are among the groups: start again from what the records earned
        for ln in live:
            amounts[ln.idx] = ln.credits
    own = sorted((c for c in ev.caps if c.scope == sc.scope), key=lambda c: c.share_of_total is not None)
    for cap in own:
        if cap.highest_only:
            group = sorted((ln for ln in ev.target_lines(ctx, cap.target, sc.lines) if not ln.excluded),
                           key=lambda ln: ln.sort_key)
            if group:
                _highest(ev, sc, cap, group)
    before = {c.id: sum((amounts[ln.idx] for ln in lines), ZERO) for c, lines in groups if c.scope == sc.scope}
    allocate(amounts, [ln.idx for ln in live], sets, [c.max or ZERO for c, _ in groups], side)
    labels = "、".join(dict.fromkeys(f"“{c.label}”" for c, lines in groups if lines))
    sc.steps.append(Step("cap", f"{sc.where}有记录同时受几条上限限制（{labels}），按各上限允许计入的最多学分分配："
                                f"增加一条合格记录不会减少总学分", rule=None, scope=sc.scope, year=sc.year))
    for cap in own:
        if plain(cap):
            group = next(lines for c, lines in groups if c is cap)
            _say(ev, sc, cap, group, before[cap.id])
        else:
            _one(ev, ctx, sc, cap)
    return True


def apply(ev: Evaluator, ctx: Context, sc: ScopeState) -> None:
    groups = family(ev, ctx, sc) if ev.crossable else []
    joint = crossed(groups)
    if sc.scope == "year" and joint:
        ev.caps_crossed = True
    elif sc.scope == "cycle" and ev.caps_crossed:
        joint = True
    if not (joint and _together(ev, ctx, sc, groups)):
        # plain caps first, share-of-total caps last (they depend on the rest)
        for cap in sorted((c for c in ev.caps if c.scope == sc.scope), key=lambda c: c.share_of_total is not None):
            _one(ev, ctx, sc, cap)
    if sc.scope == "year":
        for cap in ev.caps:
            if cap.cumulative:
                _register(ev, ctx, sc, cap)


ENGINE = ("per scope, first: plain caps then share-of-total caps, record by record in canonical order; "
          "a cumulative cycle cap also in each year, after its own caps, carried from year to year; "
          "caps that cross allocated together (engine/allocate.py)")
BATCH = ("stage2: running sums clipped per group (kernels.apply_cap), highest_only, share_of_total; "
         "cumulative: a running sum per teacher in the year scope (the NumPy stage); "
         "teachers whose caps cross routed to the per-teacher engine")
SQL = ("window running sums in the canonical order, clipped; share-of-total; highest_only; "
       "cumulative: partitioned by teacher in the year scope; teachers whose caps cross routed to the engine")
KIND = RuleKind("cap", Cap, ENGINE, BATCH, SQL, caps=apply)
