"""``cap``: at most ``max`` (or a share of the scope's total, or only the
highest record) of a target counts in a year or the cycle, record by record in
the canonical order (year, record id), so input order never matters."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from xuefen.numbers import ZERO, fmt, q_down, share
from xuefen.policy.schema import Cap

from ..core import Context, Step, cite_of, target_text
from .base import RuleKind, ScopeState

if TYPE_CHECKING:
    from ..evaluate import Evaluator


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
            running = ZERO
            for ln in group:
                room = max(ZERO, limit - running)
                if amounts[ln.idx] > room:
                    amounts[ln.idx] = room
                running += amounts[ln.idx]
        after = sum((amounts[ln.idx] for ln in group), ZERO)
        target = target_text(cap.target)
        if group:
            sc.cuts[cap.id] = before - after
        if after < before:
            sc.steps.append(Step("cap", f"{where}{target}共 {fmt(before)}学分，按上限计 {fmt(after)}学分：{cap.label}",
                                 rule=cap.id, cite=cite_of(p, cap), scope=sc.scope, year=sc.year))
        elif group:
            sc.steps.append(Step("cap", f"{where}{target}共 {fmt(before)}学分，未超过上限（{cap.label}）",
                                 applied=False, rule=cap.id, cite=cite_of(p, cap), scope=sc.scope, year=sc.year))


ENGINE = "per scope, first: plain caps then share-of-total caps, record by record in canonical order"
BATCH = "stage2: running sums clipped per group (kernels.apply_cap), highest_only, share_of_total"
SQL = "window running sums in the canonical order, clipped; share-of-total; highest_only"
KIND = RuleKind("cap", Cap, ENGINE, BATCH, SQL, caps=apply)
