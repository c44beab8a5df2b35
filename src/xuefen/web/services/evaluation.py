"""The bridge between the ledger and the policy engine.

Every figure the platform shows comes from here, i.e. from the same engine
and policy files as ``xuefen evaluate``: the platform never computes credits
itself.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from xuefen.engine.evaluate import Evaluation, Evaluator
from xuefen.engine.report import as_dict
from xuefen.model import Leave
from xuefen.model import Record as EngineRecord
from xuefen.model import Teacher as EngineTeacher
from xuefen.policy.loader import default_registry, pick
from xuefen.policy.schema import Policy
from xuefen.web.models import Record, Teacher, TeacherResult
from xuefen.web.permissions import COUNTING
from xuefen.web.services import tallies

FACT_FIELDS = (
    "year", "title", "category", "theme", "level", "form", "location", "hours", "days", "result", "role",
    "achievement", "program", "absent_hours", "topics", "words", "approved", "certificate", "subject_related",
    "education_system", "completed_year", "makeup_for_year",
)


def engine_teacher(t: Teacher) -> EngineTeacher:
    leaves = tuple(Leave(year=int(lv["year"]), kind=str(lv["kind"]), approved=bool(lv.get("approved", True)))
                   for lv in t.leaves or [])
    return EngineTeacher(
        id=t.teacher_no, name=t.name, stage=t.stage or None, post=t.post or None, hired_year=t.hired_year,
        transfer_in_year=t.transfer_in_year, leaves=leaves, normal_graduate=t.normal_graduate,
    )


def engine_record(r: Record) -> EngineRecord:
    values: dict[str, Any] = {}
    for name in FACT_FIELDS:
        value = getattr(r, name)
        values[name] = None if value == "" else value
    values["credits"] = r.preset_credits
    return EngineRecord(id=r.uid, **values)


def policy_for(teacher: Teacher, today: dt.date | None = None) -> tuple[Policy, dt.date, dict[str, str]] | None:
    binding = teacher.school.binding()
    if binding is None:
        return None
    policy, as_of = pick(default_registry(), binding.policy, None, today or timezone.localdate())
    return policy, as_of, dict(binding.policy_options or {})


def evaluate_teacher(teacher: Teacher, today: dt.date | None = None) -> Evaluation | None:
    """The teacher's verdict from her counting records (approved onwards)."""
    chosen = policy_for(teacher, today)
    if chosen is None:
        return None
    policy, as_of, options = chosen
    records = [engine_record(r) for r in teacher.records.filter(status__in=COUNTING).order_by("year", "uid")]
    return Evaluator(policy, options).evaluate(engine_teacher(teacher), records, as_of)


def price_records(teacher: Teacher, records: list[Record], today: dt.date | None = None) -> None:
    """Fill each record's own credits and explanation (what it converts to under
    the bound policy), whatever its state — a pending declaration shows the
    teacher what it will be worth."""
    chosen = policy_for(teacher, today)
    if chosen is None:
        for r in records:
            r.credits, r.credit_category, r.explanation, r.policy_id = Decimal(0), "", "所在单位未绑定学分政策", ""
        return
    policy, as_of, options = chosen
    ev = Evaluator(policy, options).evaluate(engine_teacher(teacher), [engine_record(r) for r in records], as_of)
    by_uid = {rr.id: rr for rr in ev.records}
    for r in records:
        rr = by_uid[r.uid]
        r.credits = rr.credits
        r.credit_category = rr.category or ""
        r.explanation = rr.explanation
        r.policy_id = policy.id


@transaction.atomic
def refresh_result(teacher: Teacher, today: dt.date | None = None) -> TeacherResult | None:
    """Re-evaluate one teacher, store the verdict and count the change in her
    units' tallies (incremental upkeep: a change to one record re-evaluates
    only its teacher and touches only her school's line of tallies)."""
    # The teacher's row is locked before anything is read, so two refreshes
    # of one teacher run one after the other: the second evaluates with the
    # first's records committed and counts the first's result as "before".
    # FOR NO KEY UPDATE is enough for that, and does not hold up the foreign
    # key checks (FOR KEY SHARE) of others inserting her records meanwhile.
    list(Teacher.objects.select_for_update(no_key=True).filter(pk=teacher.pk).values_list("pk", flat=True))
    old = TeacherResult.objects.filter(teacher=teacher).only("status", "year_passed").first()
    before = tallies.Standing.of(old)
    ev = evaluate_teacher(teacher, today)
    if ev is None:
        TeacherResult.objects.filter(teacher=teacher).delete()
        tallies.change(teacher.school, before, tallies.UNEVALUATED)
        return None
    data = as_dict(ev)
    year = ev.as_of.year
    year_result = ev.years.get(year)
    result, _ = TeacherResult.objects.update_or_create(
        teacher=teacher,
        defaults={
            "policy_id": ev.policy.id,
            "cycle_start": ev.cycle_start,
            "cycle_end": ev.cycle_end,
            "passed": ev.passed,
            "status": ev.status,
            "total": ev.total,
            "year_passed": year_result.passed if year_result else None,
            "year_total": year_result.total if year_result else Decimal(0),
            "data": _jsonable(data),
        },
    )
    tallies.change(teacher.school, before, tallies.Standing.of(result))
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
