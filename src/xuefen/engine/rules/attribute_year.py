"""``attribute_year``: a record counts in another year than its registration
year (北京 第十八条 the completion year; 山东 第二十一条 a make-up, only into a
year of approved leave)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xuefen.policy.schema import AttributeYear

from ..core import Context, Step, cite_of, matches
from .base import RecordState, RuleKind

if TYPE_CHECKING:
    from ..evaluate import Evaluator


def apply(ev: Evaluator, ctx: Context, st: RecordState) -> None:
    record = st.record
    for rule in ev.attributions:
        target = record.get(rule.field)
        if target is None or not matches(ctx, rule.when, record):
            continue
        if rule.require_leave:
            kinds = {lv.kind for lv in ctx.teacher.leaves if lv.year == target and lv.approved}
            if not kinds & set(rule.require_leave):
                st.steps.append(Step("attribute_year", f"补修记录未计入{target}年：该年无经批准的{'/'.join(rule.require_leave)}",
                                     applied=False, rule=rule.id, cite=cite_of(ev.policy, rule), record=record.id))
                continue
        st.steps.append(Step("attribute_year", f"计入{target}年（登记年度{record.year}年）：{rule.label}",
                             rule=rule.id, cite=cite_of(ev.policy, rule), record=record.id))
        st.year = int(target)
        return


ENGINE = "per record, first: the year the record counts in (first applicable rule)"
BATCH = "stage1.attribute_years: the `__year` column"
SQL = "decision table: the attributed year per combination of facts, leave years joined"
KIND = RuleKind("attribute_year", AttributeYear, ENGINE, BATCH, SQL, record=apply)
