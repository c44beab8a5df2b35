"""Teachers joining the platform.

Teachers arrive by provisioning (the demo, a roster sync from the personnel
system), not by anyone's action in the platform, so there is no actor to
check or to name in the audit log.  What this adds is the rule that a new
teacher is counted in her units' tallies in the same transaction: she joins
as not evaluated until her first result is stored."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from xuefen.web.models import Org, Teacher
from xuefen.web.services import tallies


@transaction.atomic
def add_teacher(school: Org, **fields: Any) -> Teacher:
    teacher = Teacher.objects.create(school=school, **fields)
    tallies.change(school, None, tallies.UNEVALUATED)
    return teacher
