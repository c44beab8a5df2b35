"""Teachers joining the platform.

Teachers arrive by provisioning (the demo, a roster sync from the personnel
system), not by anyone's action in the platform, so there is no actor to
check or to name in the audit log.  What this adds is the rule that a new
teacher is counted in her units' tallies in the same transaction: she joins
as not evaluated until her first result is stored."""

from __future__ import annotations

import hmac
from typing import Any

from django.db import models, transaction

from xuefen.web.models import Org, Teacher, TeacherResult
from xuefen.web.services import tallies


@transaction.atomic
def add_teacher(school: Org, **fields: Any) -> Teacher:
    teacher = Teacher.objects.create(school=school, **fields)
    tallies.change(school, None, tallies.UNEVALUATED)
    return teacher


def teacher_by_id_number(id_number: str, *, scope: Any = None) -> Teacher | None:
    """The teacher with this 身份证号, or None — the one way to look a teacher
    up by number.  The lookup is by keyed digest (``Teacher.id_hmac``): the
    number is never compared, or sent to the database, in clear.  ``scope``
    is a user (``Teacher.objects.for_user``), a queryset or a Q to search within."""
    from xuefen.web import pii

    teachers: models.QuerySet[Teacher]
    if scope is None:
        teachers = Teacher.objects.all()
    elif isinstance(scope, models.QuerySet):
        teachers = scope
    elif isinstance(scope, models.Q):
        teachers = Teacher.objects.filter(scope)
    else:
        teachers = Teacher.objects.for_user(scope)
    return teachers.select_related("school").filter(id_hmac=pii.digest(id_number.strip().upper())).first()


def same_id_number(teacher: Teacher, id_number: str) -> bool:
    """Whether ``id_number`` is the teacher's, compared by digest."""
    from xuefen.web import pii

    return hmac.compare_digest(teacher.id_hmac, pii.digest(id_number))
# ------------------------------------------------------------------ master data (issue 14)


def create_teacher(school: Org, id_number: str, **fields: Any) -> Teacher:
    """A new teacher with her 身份证号 (through the model's field)."""
    return add_teacher(school, id_number=id_number.strip().upper(), **fields)


def update_teacher(teacher: Teacher, school: Org | None = None, **fields: Any) -> Teacher:
    """Change a teacher's master data; a new ``school`` moves her, with her
    ledger (records belong to the teacher), and moves her standing in the
    tallies from the old school's line to the new one's — the caller then
    re-evaluates her under the new unit's policy (北京 第十四条)."""
    for key, value in fields.items():
        setattr(teacher, key, value.strip().upper() if key == "id_number" else value)
    if school is not None and school.pk != teacher.school_id:
        standing = tallies.Standing.of(TeacherResult.objects.filter(teacher=teacher).first())
        old = teacher.school
        teacher.school = school
        teacher.save()
        tallies.change(old, standing, None)
        tallies.change(school, None, standing)
    else:
        teacher.save()
    return teacher
