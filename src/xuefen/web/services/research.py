"""School-based research projects (校本研修, 朝阳 附件6; 永吉 校本研修).

A school applies with a plan (``training.apply_project`` with kind
``research``), experts score it and the district approves it (附件6 第二十条
论证; 永吉: 评审通过的项目方可立项实施), exactly as a training project.  Once
approved, the school names its members and logs activities with sign-in
(附件6 第十七条: 每次活动的…参加人员及个人签到); a research project is one
course with one class whose sessions are its activities, so sign-in, ticks
and absence are the training services'.

验收 by the district (附件6 第二十一、二十二条; 永吉: 评估不合格的项目，不予认定当年的
校本研修学分):

* **passed** — each member's record is written through the ledger with the
  hours of the activities she attended (附件6 第七条 counts 研修 by 学时, and
  the policy converts them: 朝阳 20学时 = 1学分, 永吉 0.5 per 学时), form
  校本, level 校级, result 合格, 经批准 是;
* **failed** — no record; each member's enrolment keeps the reason, shown to
  her on her training page, and she is notified.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from xuefen.numbers import ZERO, fmt
from xuefen.web import permissions as perm
from xuefen.web.models import (
    Course,
    Enrolment,
    Notification,
    ProjectKind,
    ProjectState,
    Record,
    Teacher,
    TrainingClass,
    TrainingProject,
)
from xuefen.web.services import audit, ledger
from xuefen.web.services.ledger import Actor, Conflict, Denied, ServiceError
from xuefen.web.services.training import (
    _locked_project,
    absent_hours,
    project_snapshot,
    record_facts,
    record_status,
)

RESEARCH_FORM = "校本"
RESEARCH_LEVEL = "校级"


def research_class(project: TrainingProject) -> TrainingClass | None:
    return TrainingClass.objects.filter(course__project=project).select_related("course").first()


@transaction.atomic
def set_members(actor: Actor, project_id: int, teacher_ids: Iterable[int]) -> TrainingClass:
    """The school names the members (its own teachers); the first call sets
    up the project's one course and class, with the actor as 主持人."""
    project = _locked_project(project_id)
    if project.kind != ProjectKind.RESEARCH:
        raise ServiceError("不是校本研修项目")
    if not perm.can_manage_project(actor.user, project):
        raise Denied("只有申报学校可以设置研修成员")
    if project.state != ProjectState.APPROVED:
        raise Conflict(f"项目当前状态为“{project.get_state_display()}”，立项后才能设置成员")
    wanted = {int(t) for t in teacher_ids}
    teachers = {t.pk: t for t in Teacher.objects.filter(pk__in=wanted, school__path__startswith=project.applicant.path)}
    if set(teachers) != wanted:
        raise ServiceError("研修成员须是本校教师")
    klass = research_class(project)
    if klass is None:
        course = Course.objects.create(project=project, title=project.title, hours=project.hours)
        klass = TrainingClass.objects.create(course=course, name=project.title[:120], head=actor.user,
                                             capacity=max(len(wanted), project.capacity, 1))
    if klass.state != TrainingClass.State.OPEN:
        raise Conflict("项目已验收，成员不能再修改")
    current = {e.teacher_id: e for e in klass.enrolments.all()}
    for tid in wanted:
        if tid in current:
            if current[tid].state != Enrolment.State.ENROLLED:
                current[tid].state = Enrolment.State.ENROLLED
                current[tid].save(update_fields=["state"])
        else:
            Enrolment.objects.create(klass=klass, teacher=teachers[tid])
    for tid, e in current.items():
        if tid not in wanted and e.state != Enrolment.State.WITHDRAWN:
            e.state = Enrolment.State.WITHDRAWN
            e.save(update_fields=["state"])
    klass.capacity = max(klass.capacity, len(wanted))
    klass.save(update_fields=["capacity"])
    audit.log(actor.user, "research_members", project, after={"members": sorted(wanted)}, ip=actor.ip,
              org_path=project.applicant.path)
    return klass


@transaction.atomic
def accept(actor: Actor, project_id: int, passed: bool, reason: str,
           expected_version: int | None = None) -> list[Record]:
    """验收: passed → members' 校本研修 credits; failed → withheld with the reason."""
    project = _locked_project(project_id)
    if project.kind != ProjectKind.RESEARCH:
        raise ServiceError("不是校本研修项目")
    if not perm.can_decide(actor.user, project):
        raise Denied("只有项目所在辖区的继教办可以验收")
    if expected_version is not None and project.version != expected_version:
        raise Conflict("该项目已被他人处理，请刷新后再试")
    if project.state != ProjectState.APPROVED:
        raise Conflict(f"项目当前状态为“{project.get_state_display()}”，不能验收")
    if not passed and not reason.strip():
        raise ServiceError("验收不通过须填写原因（将告知每位成员）")
    klass = research_class(project)
    if klass is None or not klass.sessions.exists():
        raise ServiceError("项目还没有成员或研修活动记录，不能验收")
    klass = TrainingClass.objects.select_for_update().select_related("course").get(pk=klass.pk)
    enrolments = list(klass.enrolments.filter(state=Enrolment.State.ENROLLED).select_related("teacher__school"))
    before = project_snapshot(project)
    records: list[Record] = []
    if passed:
        missed = absent_hours(klass)
        total = sum((s.hours for s in klass.sessions.all()), ZERO)
        items = []
        for e in enrolments:
            attended = total - missed.get(e.teacher_id, ZERO)
            if attended <= 0:
                e.withheld_reason = "未参加任何研修活动"
                e.save(update_fields=["withheld_reason"])
                continue
            facts = record_facts(project, klass.course, "合格", None, hours=attended)
            facts.update(form=RESEARCH_FORM, level=RESEARCH_LEVEL)
            items.append((e.teacher, klass.record_uid, facts))
        records = ledger.enter_training_records(actor, items, record_status(), comment=f"校本研修验收通过：{project.title}")
        by_teacher = {r.teacher_id: r for r in records}
        for e in enrolments:
            if e.teacher_id in by_teacher:
                e.result = "合格"
                e.record = by_teacher[e.teacher_id]
                e.save(update_fields=["result", "record"])
    else:
        for e in enrolments:
            e.withheld_reason = reason.strip()
            e.result = "不合格"
            e.save(update_fields=["withheld_reason", "result"])
            if e.teacher.user_id:
                Notification.objects.create(
                    user_id=e.teacher.user_id,
                    message=f"校本研修项目“{project.title}”验收未通过，不予认定学分：{reason.strip()}"[:300])
    project.state = ProjectState.PASSED if passed else ProjectState.FAILED
    project.state_reason = reason.strip()
    project.decided_by = actor.user
    project.version += 1
    project.save()
    klass.state = TrainingClass.State.CLOSED
    klass.closed_at = timezone.now()
    klass.save(update_fields=["state", "closed_at"])
    audit.log(actor.user, "research_pass" if passed else "research_fail", project, before=before,
              after={**project_snapshot(project), "records": [r.pk for r in records],
                     "credits": {r.teacher.teacher_no: fmt(r.credits) for r in records}},
              comment=reason, ip=actor.ip, org_path=project.applicant.path)
    return records


def summary(project: TrainingProject) -> dict[str, Any]:
    klass = research_class(project)
    if klass is None:
        return {"klass": None, "members": [], "sessions": []}
    return {"klass": klass, "members": list(klass.enrolments.filter(state=Enrolment.State.ENROLLED)
                                             .select_related("teacher", "record")),
            "sessions": list(klass.sessions.all())}
