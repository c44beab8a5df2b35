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

from xuefen.web.models import Org, Teacher
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
    is a user (``Teacher.objects.for_user``) or a queryset to search within."""
    from xuefen.web import pii

    teachers: models.QuerySet[Teacher]
    if scope is None:
        teachers = Teacher.objects.all()
    elif isinstance(scope, models.QuerySet):
        teachers = scope
    else:
        teachers = Teacher.objects.for_user(scope)
    return teachers.filter(id_hmac=pii.digest(id_number)).first()


def same_id_number(teacher: Teacher, id_number: str) -> bool:
    """Whether ``id_number`` is the teacher's, compared by digest."""
    from xuefen.web import pii

    return hmac.compare_digest(teacher.id_hmac, pii.digest(id_number))
