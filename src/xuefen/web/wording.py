"""What the teacher and the reviewer read, in plain words, from the engine's
own figures (issue 16 item 5): how much of a record counted when a cap, an
overflow or a substitution changed it, and the record's explanation without
what its row already shows.

Nothing here computes credits: the amounts are the engine's, per credited
line, after each scope's caps and transfers (``ScopeResult.amounts``); this
only compares them with what the record earned and says so."""

from __future__ import annotations

import re
from decimal import Decimal

from xuefen.engine.core import Line, RecordResult
from xuefen.engine.evaluate import Evaluation
from xuefen.numbers import fmt
from xuefen.policy.loader import default_registry
from xuefen.policy.schema import Cap

ZERO = Decimal(0)


def _caps(ev: Evaluation) -> dict[tuple[int | None, str], Decimal]:
    """(year or None for the cycle, category) → the cap that was applied there."""
    rules = {r.id: r for r in ev.policy.rules}
    out: dict[tuple[int | None, str], Decimal] = {}
    for step in ev.steps:
        rule = rules.get(step.rule or "")
        if step.kind == "cap" and step.applied and isinstance(rule, Cap) and rule.max is not None \
                and rule.target.category:
            out[(step.year if step.scope == "year" else None, rule.target.category)] = rule.max
    return out


def _sum(lines: list[Line], amounts: dict[int, Decimal] | None, fallback: dict[int, Decimal]) -> Decimal:
    return sum(((amounts or {}).get(ln.idx, fallback[ln.idx]) for ln in lines), ZERO)


def _record_notes(ev: Evaluation, rr: RecordResult, caps: dict[tuple[int | None, str], Decimal]) -> list[str]:
    notes = []
    lines = [ln for ln in rr.lines if not ln.excluded and ln.counted_in_cycle]
    year_scope = ev.years.get(rr.year)
    for category in dict.fromkeys(ln.category for ln in lines):
        mine = [ln for ln in lines if ln.category == category]
        earned = {ln.idx: ln.credits for ln in mine}
        credited = sum(earned.values(), ZERO)
        in_year = _sum(mine, year_scope.amounts if year_scope else None, earned)
        in_cycle = _sum(mine, ev.cycle.amounts, {ln.idx: (year_scope.amounts if year_scope else earned).get(
            ln.idx, ln.credits) for ln in mine})
        if in_year < credited:
            limit = caps.get((rr.year, category))
            if limit is not None:
                notes.append(f"本年{category}已达上限{fmt(limit)}学分，此条{fmt(credited)}学分中计入{fmt(in_year)}学分")
            else:
                notes.append(f"此条{fmt(credited)}学分中，本年{category}计入{fmt(in_year)}学分")
        elif in_year > credited:
            notes.append(f"此条{fmt(credited)}学分，本年按替换规则计入{fmt(in_year)}学分")
        if in_cycle < in_year:
            limit = caps.get((None, category))
            said = f"上限{fmt(limit)}学分" if limit is not None else "上限"
            notes.append(f"本周期{category}已达{said}，此条计入周期{fmt(in_cycle)}学分，超出部分不计")
    return notes


def record_notes(ev: Evaluation) -> dict[str, list[str]]:
    """Record id → sentences on caps, overflows and substitutions that changed
    how much of it counts (empty when it counts in full)."""
    caps = _caps(ev)
    out = {}
    for rr in ev.records:
        notes = _record_notes(ev, rr, caps)
        if notes:
            out[rr.id] = notes
    return out


def scope_notes(ev: Evaluation, year: int) -> list[str]:
    """The caps and substitutions applied this year and over the cycle, as the
    engine worded them (its step texts say the amounts in plain words)."""
    return [s.text for s in ev.steps if s.applied and s.kind in ("cap", "transfer")
            and ((s.scope == "year" and s.year == year) or s.scope == "cycle")]


def explanation(text: str, year: int, title: str, uid: str) -> str:
    """The engine's explanation without its head ("2026年 某培训"), which the
    record's own row shows already: the engine writes it for a report that
    lists records with nothing else beside them."""
    heads = {f"{year}年 {title or uid}", f"{year}年 {uid}"}
    pattern = "|".join(re.escape(h) for h in sorted(heads, key=len, reverse=True))
    return re.sub(rf"(^|；)(?:{pattern})[ ：]?", r"\1", text)


def policy_name(policy_id: str) -> str:
    """A policy's name for readers; the id is an internal code."""
    policy = default_registry().policies.get(policy_id)
    return policy.short_name if policy is not None else ""
