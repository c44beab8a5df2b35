"""录入校本研修学分: the school officer enters school-based credits for a list
of teachers in one form (赤峰 第十五条; 永吉 学分管理专员).  All rows or
none: every teacher is checked and every row's facts parsed before the first
is written, through ``ledger.enter_school_record`` for each."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from xuefen.web import permissions as perm
from xuefen.web.models import Record, Teacher
from xuefen.web.services import ledger
from xuefen.web.services.base import Actor, Denied, ServiceError


@transaction.atomic
def enter_for_teachers(actor: Actor, common: dict[str, Any], hours: dict[int, str]) -> list[Record]:
    """``common``: the facts every row shares (year, title, form …);
    ``hours``: teacher id → hours for that teacher (blank rows are left out)."""
    if not perm.can_enter_school_credits(actor.user):
        raise Denied("只有学校学分管理专员可以录入校本研修学分")
    wanted = {tid: h.strip() for tid, h in hours.items() if h.strip()}
    if not wanted:
        raise ServiceError("请至少为一名教师填写学时")
    teachers = {t.pk: t for t in Teacher.objects.select_related("school").filter(pk__in=wanted)}
    problems = []
    for tid in wanted:
        teacher = teachers.get(tid)
        if teacher is None or not perm.can_enter_school_record(actor.user, teacher):
            raise Denied("只能为本校教师录入")
        try:
            ledger.parse_facts({**common, "hours": wanted[tid]})
        except ServiceError as exc:
            problems.append(f"{teacher.name}（{teacher.teacher_no}）：{exc}")
    if problems:
        raise ServiceError("；".join(problems) + "。未录入任何记录")
    return [ledger.enter_school_record(actor, teachers[tid], {**common, "hours": wanted[tid]})
            for tid in sorted(wanted, key=lambda i: teachers[i].teacher_no)]
