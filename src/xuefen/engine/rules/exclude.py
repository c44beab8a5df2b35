"""``exclude``: recorded and converted, but not counted toward this policy's
totals (a record another scheme counts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xuefen.policy.schema import Exclude

from ..core import Context, Step, cite_of
from .base import RecordState, RuleKind

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def apply(ev: Evaluator, ctx: Context, st: RecordState) -> None:
    if st.conversion is None:
        return
    record = st.record
    rule = ev.decided("exclude", st.facts, lambda: next((e for e, test in ev.exclude_tests if test(ctx, record)), None))
    if rule is None:
        return
    for line in st.lines:
        line.excluded = True
    st.steps.append(Step("exclude", rule.reason, rule=rule.id, cite=cite_of(ev.policy, rule), record=st.record.id))


ENGINE = "per record, last: the lines are kept but count toward no total"
BATCH = "stage1.record_exprs `__excluded`"
SQL = "decision table `__excluded`"
KIND = RuleKind("exclude", Exclude, ENGINE, BATCH, SQL, record=apply)
