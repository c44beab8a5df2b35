"""``transfer``: overflow moves a source's credits above ``above`` (or its
minimum) to the target; substitute fills the target's deficit from the
sources' credits above their own minimum, in the order listed."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from xuefen.numbers import ZERO, fmt
from xuefen.policy.schema import Target, Transfer

from ..core import Context, Step, cite_of, describe_match, teacher_matches
from .base import RuleKind, ScopeState

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def apply(ev: Evaluator, ctx: Context, sc: ScopeState) -> None:
    p = ev.policy
    counted, where = sc.counted, sc.where
    mins: dict[str, Decimal] = {r.rule.target.category: r.min for r in sc.reqs
                                if isinstance(r.rule.target, Target) and r.rule.target.category
                                and r.rule.measure == "credits"}
    for tr in ev.transfers:
        if tr.scope not in (sc.scope, "both"):
            continue
        if not teacher_matches(ctx, tr.applies_to):
            ev.once(sc.steps, tr, Step("transfer", f"“{tr.label}”不适用：仅适用于{describe_match(tr.applies_to)}",
                                       applied=False, rule=tr.id, cite=cite_of(p, tr), scope="teacher"))
            continue
        moved_any = False
        for src in tr.from_:
            reserve = tr.above if tr.above is not None else mins.get(src, ZERO)
            available = max(ZERO, counted[src] - reserve)
            if tr.mode == "overflow":
                move = available
            else:
                need = max(ZERO, mins.get(tr.to, ZERO) - counted[tr.to])
                move = min(available, need)
            if move > 0:
                counted[src] -= move
                counted[tr.to] += move
                moved_any = True
                verb = "超出部分" if tr.mode == "overflow" else "补足不足部分"
                sc.steps.append(Step("transfer", f"{where}{src} {verb} {fmt(move)}学分计入{tr.to}：{tr.label}",
                                     rule=tr.id, cite=cite_of(p, tr), scope=sc.scope, year=sc.year))
        if not moved_any:
            why = "没有超出部分" if tr.mode == "overflow" else "无不足或无可替换学分"
            sc.steps.append(Step("transfer", f"{where}“{tr.label}”未发生：{why}", applied=False,
                                 rule=tr.id, cite=cite_of(p, tr), scope=sc.scope, year=sc.year))


ENGINE = "per scope, after the requirements: credits move between categories (overflow, substitute)"
BATCH = "stage2: moves between category columns, reserving the minimums that apply"
SQL = "moves between category columns in SQL, reserving the minimums that apply"
KIND = RuleKind("transfer", Transfer, ENGINE, BATCH, SQL, moves=apply)
