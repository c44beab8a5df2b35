"""Training projects, courses, classes, attendance and results (issue 15).

The lifecycle follows 朝阳 附件4: a unit applies (第六条 申报), experts score
it (第七条 论证), the district office approves or returns it (第八条 立项),
it runs (第九条 实施, courses and classes of 附件5) and is evaluated (第十七条
问卷). Credits follow when a class is closed: each participant's record is
written through the ledger (``ledger.enter_training_records``) with the
project as its source, its ``approved`` fact meaning the project's 立项
(潍坊 第十四条: 未按规定办理审批手续…不计学分 — an unapproved project has no
classes, so it produces no record at all).

Decisions (settings, documented in docs/training.md):

* **Status of the records.**  ``XUEFEN_TRAINING_RECORD_STATUS`` (default
  ``certified``): the district approved the project, so its credits are
  certified at once, as a district office's own import is (赤峰 第十四条:
  the system converts the imported hours).  ``pending`` sends them through the
  teacher's school like an institution's import.
* **No double counting.**  Every participant's record from a class carries the
  stable 记录编号 ``TC<class id>``.  A roster of the same class imported with
  that 记录编号 is refused by the import's duplicate check
  (services/imports.py); a roster imported *before* the class closed, by the
  applicant unit, for the same 培训项目名称 and 年度, or with that 记录编号, is
  linked to the enrolment instead of a second record being written.
* **Hours.**  A record's 学时 is the course's hours and its 缺勤学时 the hours of
  the sessions she did not sign in to: the interchange's meaning, so a
  policy's absence gate (潍坊 第十七条) sees the share.
* **Limits, before saving.**  优秀 at most the share of
  ``imports.excellent_limits()`` for the class's teachers' jurisdictions
  (赤峰 第十九条, 25%); a result of 合格/优秀 refused for a teacher whose
  absence exceeds her policy's absence gate (``max_absence_share`` of a gate
  without ``when``, 潍坊 第十七条 四分之一: 取消该项考核资格).
* **Sign-in.**  A per-session URL carrying a signed token (Django's signer,
  salt ``xuefen.training.signin``); valid from
  ``XUEFEN_SIGNIN_MARGIN_MINUTES`` (default 30) before the session starts to
  as long after it ends, for a logged-in teacher enrolled in the class.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from xuefen.engine.report import plan
from xuefen.numbers import ZERO, fmt
from xuefen.web import permissions as perm
from xuefen.web.models import (
    Attendance,
    ClassSession,
    ClassSurvey,
    Course,
    Enrolment,
    ImportBatch,
    Org,
    OrgKind,
    ProjectKind,
    ProjectScore,
    ProjectState,
    Record,
    Source,
    Status,
    Teacher,
    TrainingClass,
    TrainingProject,
)
from xuefen.web.permissions import COUNTING
from xuefen.web.services import audit, ledger
from xuefen.web.services.evaluation import (
    _engine_record,
    engine_record,
    engine_teacher,
    evaluator,
    policy_for,
)
from xuefen.web.services.ledger import Actor, Conflict, Denied, ServiceError

EXCELLENT = "优秀"
RESULTS = ("优秀", "合格", "不合格")
SIGNIN_SALT = "xuefen.training.signin"
# 论证 criteria and the most each may score (朝阳 附件4 第七条 says experts
# 论证 a project but not on what; these follow its 第四条/第十条 duties:
# needs, plan and content, lecturers, management and assessment).
DEFAULT_CRITERIA: dict[str, int] = {"需求与目标": 30, "内容与课程": 30, "师资": 20, "管理与考核": 20}


# 朝阳 附件5 第十五条: 选修课程“以 4 学时为基本单元”.  jurisdiction code ->
# (unit hours, the credit category it applies to, citation); the setting
# XUEFEN_COURSE_UNIT_HOURS replaces the table ({code: [hours, category]}).
COURSE_UNITS: dict[str, tuple[Decimal, str, str]] = {
    "beijing-chaoyang": (Decimal(4), "选修", "朝阳 附件5 第十五条"),
}


def course_unit(project: TrainingProject) -> tuple[Decimal, str] | None:
    """The unit a course of this project must be built of, if its policy has one."""
    override = getattr(settings, "XUEFEN_COURSE_UNIT_HOURS", None)
    units = COURSE_UNITS if override is None else {
        code: (Decimal(str(v[0])), str(v[1]), "XUEFEN_COURSE_UNIT_HOURS") for code, v in dict(override).items()}
    binding = project.applicant.binding()
    if binding is None:
        return None
    from xuefen.policy.loader import default_registry

    try:
        policy = default_registry().resolve(binding.policy, timezone.localdate())
    except Exception:  # an unknown binding is the evaluation's problem, not the course's
        return None
    found = units.get(policy.jurisdiction.code)
    if found is None or project.category != found[1]:
        return None
    return found[0], found[2]


def criteria() -> dict[str, int]:
    return dict(getattr(settings, "XUEFEN_TRAINING_CRITERIA", DEFAULT_CRITERIA))


def record_status() -> str:
    value = getattr(settings, "XUEFEN_TRAINING_RECORD_STATUS", Status.CERTIFIED)
    return str(value)


def _decimal(value: Any, label: str) -> Decimal:
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ServiceError(f"{label}“{value}”不是数字") from None
    if not d.is_finite() or d < 0 or d > Decimal("99999"):
        raise ServiceError(f"{label}“{value}”须是 0 到 99999 之间的数")
    return d


def _text(data: dict[str, Any], key: str, label: str, required: bool = False, limit: int = 200) -> str:
    value = str(data.get(key) or "").strip()
    if required and not value:
        raise ServiceError(f"请填写{label}")
    if len(value) > limit:
        raise ServiceError(f"{label}不能超过 {limit} 字")
    return value


def approver_for(org: Org) -> Org:
    """Whose office approves a project of ``org``: the nearest 区县 at or
    above it (朝阳 附件4 第七条 继教办), else the top of its tree."""
    line = org.ancestors()
    for node in reversed(line):
        if node.kind == OrgKind.DISTRICT:
            return node
    return line[0]


def project_snapshot(p: TrainingProject) -> dict[str, Any]:
    return {"title": p.title, "kind": p.kind, "state": p.state, "year": p.year, "hours": fmt(p.hours),
            "category": p.category, "form": p.form, "level": p.level, "version": p.version}


def _locked_project(project_id: int) -> TrainingProject:
    try:
        return TrainingProject.objects.select_for_update().select_related("approver_org", "applicant").get(
            pk=project_id)
    except TrainingProject.DoesNotExist:
        raise ServiceError("项目不存在") from None


# ------------------------------------------------------------------ projects


@transaction.atomic
def apply_project(actor: Actor, org: Org, data: dict[str, Any], kind: str = ProjectKind.TRAINING) -> TrainingProject:
    """申报 (朝阳 附件4 第六条; 附件6 校本研修 by a school)."""
    if not perm.can_apply(actor.user, org):
        raise Denied("只能以本单位名义申报")
    if kind not in ProjectKind.values:
        raise ServiceError(f"未知项目类型 {kind}")
    if kind == ProjectKind.RESEARCH and org.kind not in (OrgKind.SCHOOL, OrgKind.ZONE):
        raise ServiceError("校本研修项目由学校（或学区）申报")
    # The project's facts are a record's facts: checked by the same parser.
    facts = {k: data.get(k) for k in ("category", "theme", "level", "form", "location") if data.get(k)}
    year_text = str(data.get("year") or timezone.localdate().year)
    hours = _decimal(data.get("hours") or "0", "学时")
    if hours <= 0:
        raise ServiceError("学时须大于 0")
    parsed = ledger.parse_facts({"year": year_text, "hours": fmt(hours), **facts})
    capacity_text = str(data.get("capacity") or "0").strip()
    if not capacity_text.isdigit() or int(capacity_text) > 100000:
        raise ServiceError(f"人数“{capacity_text}”须是不超过 100000 的整数")
    budget = _decimal(data["budget"], "经费预算") if str(data.get("budget") or "").strip() else None
    project = TrainingProject.objects.create(
        kind=kind, applicant=org, approver_org=approver_for(org), applied_by=actor.user,
        title=_text(data, "title", "项目名称", required=True), year=parsed["year"],
        category=parsed["category"], theme=parsed["theme"], level=parsed["level"], form=parsed["form"],
        location=parsed["location"], hours=hours, capacity=int(capacity_text),
        target=_text(data, "target", "培训对象"), budget=budget, plan=_text(data, "plan", "实施方案", limit=5000),
    )
    audit.log(actor.user, "project_apply", project, after=project_snapshot(project), ip=actor.ip,
              org_path=org.path)
    return project


@transaction.atomic
def score_project(actor: Actor, project_id: int, scores: dict[str, Any], comment: str) -> ProjectScore:
    """论证: one expert's scores per criterion (朝阳 附件4 第七条; 附件5 第十九条)."""
    project = _locked_project(project_id)
    if not perm.can_score(actor.user, project):
        raise Denied("只有本辖区的评审专家可以论证")
    if project.state not in (ProjectState.SUBMITTED, ProjectState.REVIEWED):
        raise Conflict(f"项目当前状态为“{project.get_state_display()}”，不能论证")
    wanted = criteria()
    parsed: dict[str, str] = {}
    total = ZERO
    for name, most in wanted.items():
        if scores.get(name) in (None, ""):
            raise ServiceError(f"请给“{name}”打分（0–{most}）")
        value = _decimal(scores[name], name)
        if value > most:
            raise ServiceError(f"“{name}”最多 {most} 分，填写的是 {fmt(value)}")
        parsed[name] = fmt(value)
        total += value
    unknown = set(scores) - set(wanted)
    if unknown:
        raise ServiceError(f"未知评分项：{'、'.join(sorted(unknown))}")
    try:
        with transaction.atomic():
            score = ProjectScore.objects.create(project=project, expert=actor.user, scores=parsed, total=total,
                                                comment=comment.strip()[:2000])
    except IntegrityError:
        raise Conflict("您已论证过该项目") from None
    before = project_snapshot(project)
    project.state = ProjectState.REVIEWED
    project.version += 1
    project.save(update_fields=["state", "version"])
    audit.log(actor.user, "project_score", project, before=before,
              after={**project_snapshot(project), "scores": parsed, "total": fmt(total)}, comment=comment,
              ip=actor.ip, org_path=project.applicant.path)
    return score


@transaction.atomic
def decide_project(actor: Actor, project_id: int, approve: bool, comment: str,
                   expected_version: int | None = None) -> TrainingProject:
    """立项 or 退回 (朝阳 附件4 第八条): after at least one expert's 论证."""
    project = _locked_project(project_id)
    if not perm.can_decide(actor.user, project):
        raise Denied("只有项目所在辖区的继教办可以立项")
    if expected_version is not None and project.version != expected_version:
        raise Conflict("该项目已被他人处理，请刷新后再试")
    if project.state != ProjectState.REVIEWED:
        raise Conflict(f"项目当前状态为“{project.get_state_display()}”，须经专家论证后才能立项或退回")
    if not approve and not comment.strip():
        raise ServiceError("退回须填写理由")
    before = project_snapshot(project)
    project.state = ProjectState.APPROVED if approve else ProjectState.RETURNED
    project.state_reason = comment.strip()
    project.decided_by = actor.user
    project.version += 1
    project.save()
    audit.log(actor.user, "project_approve" if approve else "project_return", project, before=before,
              after=project_snapshot(project), comment=comment, ip=actor.ip, org_path=project.applicant.path)
    return project


@transaction.atomic
def add_course(actor: Actor, project_id: int, data: dict[str, Any]) -> Course:
    project = _locked_project(project_id)
    if not perm.can_manage_project(actor.user, project):
        raise Denied("只有申报单位可以设置课程")
    if project.kind == ProjectKind.RESEARCH:
        raise ServiceError("校本研修项目不设课程：请设置研修成员并记录研修活动")
    if project.state != ProjectState.APPROVED:
        raise Conflict("项目立项后才能设置课程和开班")
    hours = _decimal(data.get("hours") or "0", "学时")
    if hours <= 0:
        raise ServiceError("课程学时须大于 0")
    unit = course_unit(project)
    if unit is not None and hours % unit[0] != 0:
        raise ServiceError(f"选修课程以 {fmt(unit[0])} 学时为基本单元，课程学时 {fmt(hours)} 不是 {fmt(unit[0])} "
                           f"的整数倍（{unit[1]}）")
    url = _text(data, "resource_url", "课程资源链接")
    if url and not url.startswith(("https://", "http://")):
        raise ServiceError("课程资源链接须以 http:// 或 https:// 开头")
    course = Course.objects.create(project=project, title=_text(data, "title", "课程名称", required=True),
                                   hours=hours, lecturers=_text(data, "lecturers", "授课教师"), resource_url=url)
    audit.log(actor.user, "course_add", course, after={"project": project.pk, "title": course.title,
                                                        "hours": fmt(hours)}, ip=actor.ip,
              org_path=project.applicant.path)
    return course


@transaction.atomic
def open_class(actor: Actor, course_id: int, name: str, capacity: Any) -> TrainingClass:
    """组班 (朝阳 附件5 第二十三条); the actor is its 班主任."""
    course = Course.objects.select_related("project__applicant").get(pk=course_id)
    _locked_project(course.project_id)
    if not perm.can_manage_project(actor.user, course.project):
        raise Denied("只有申报单位可以开班")
    if course.project.kind == ProjectKind.RESEARCH:
        raise ServiceError("校本研修项目不另行开班")
    if course.project.state != ProjectState.APPROVED:
        raise Conflict("项目立项后才能开班")
    text = str(capacity or "").strip()
    if not text.isdigit() or not 0 < int(text) <= 10000:
        raise ServiceError(f"人数上限“{text}”须是 1 到 10000 的整数")
    klass = TrainingClass.objects.create(course=course, name=name.strip()[:120] or course.title, head=actor.user,
                                         capacity=int(text))
    audit.log(actor.user, "class_open", klass, after={"course": course.pk, "name": klass.name,
                                                      "capacity": klass.capacity}, ip=actor.ip,
              org_path=course.project.applicant.path)
    return klass


def _locked_class(class_id: int) -> TrainingClass:
    try:
        return (TrainingClass.objects.select_for_update().select_related("course__project__applicant",
                                                                        "course__project__approver_org")
                .get(pk=class_id))
    except TrainingClass.DoesNotExist:
        raise ServiceError("班级不存在") from None


def class_visible_to_teacher(klass: TrainingClass, teacher: Teacher) -> bool:
    project = klass.course.project
    return (project.state == ProjectState.APPROVED and project.kind == ProjectKind.TRAINING
            and teacher.school.path.startswith(project.approver_org.path))


@transaction.atomic
def enrol(actor: Actor, class_id: int, teacher: Teacher) -> Enrolment:
    """Self-enrolment within capacity; beyond it, the waiting list."""
    klass = _locked_class(class_id)
    if not perm.can_enrol(actor.user, teacher):
        raise Denied("只能为本人报名")
    return _enrol(actor, klass, teacher, "class_enrol")


@transaction.atomic
def assign(actor: Actor, class_id: int, teacher: Teacher) -> Enrolment:
    """Enrolment assigned by the teacher's school (学校选派), same capacity rule."""
    klass = _locked_class(class_id)
    if not perm.can_enter_school_record(actor.user, teacher):
        raise Denied("只能选派本校教师")
    return _enrol(actor, klass, teacher, "class_assign")


def _enrol(actor: Actor, klass: TrainingClass, teacher: Teacher, action: str) -> Enrolment:
    if not class_visible_to_teacher(klass, teacher):
        raise Denied("该班级不面向您所在的辖区")
    if klass.state != TrainingClass.State.OPEN:
        raise Conflict("该班级已结班")
    existing = Enrolment.objects.filter(klass=klass, teacher=teacher).first()
    if existing is not None and existing.state != Enrolment.State.WITHDRAWN:
        raise Conflict(f"您已{existing.get_state_display()}该班级")
    taken = klass.enrolments.filter(state=Enrolment.State.ENROLLED).count()
    state = Enrolment.State.ENROLLED if taken < klass.capacity else Enrolment.State.WAITING
    if existing is not None:
        existing.state = state
        existing.save(update_fields=["state"])
        enrolment = existing
    else:
        enrolment = Enrolment.objects.create(klass=klass, teacher=teacher, state=state)
    audit.log(actor.user, action, enrolment, after={"class": klass.pk, "teacher": teacher.teacher_no,
                                                           "state": state}, ip=actor.ip,
              org_path=teacher.school.path)
    return enrolment


@transaction.atomic
def withdraw(actor: Actor, enrolment_id: int) -> Enrolment:
    """The teacher leaves a class before it closes; the first on the waiting
    list takes her place."""
    try:
        enrolment = Enrolment.objects.select_related("teacher__school").get(pk=enrolment_id)
    except Enrolment.DoesNotExist:
        raise ServiceError("报名不存在") from None
    if not perm.can_enrol(actor.user, enrolment.teacher):
        raise Denied("只能退出本人的报名")
    klass = _locked_class(enrolment.klass_id)
    enrolment = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
    if klass.state != TrainingClass.State.OPEN or klass.course.project.kind != ProjectKind.TRAINING:
        raise Conflict("该班级已结班，不能退出")
    if enrolment.state == Enrolment.State.WITHDRAWN:
        raise Conflict("您已退出该班级")
    was = enrolment.state
    enrolment.state = Enrolment.State.WITHDRAWN
    enrolment.result = ""
    enrolment.save(update_fields=["state", "result"])
    promoted = None
    if was == Enrolment.State.ENROLLED:
        promoted = klass.enrolments.filter(state=Enrolment.State.WAITING).order_by("created_at", "pk").first()
        if promoted is not None:
            promoted.state = Enrolment.State.ENROLLED
            promoted.save(update_fields=["state"])
            if promoted.teacher.user_id:
                from xuefen.web.models import Notification

                Notification.objects.create(user_id=promoted.teacher.user_id,
                                            message=f"您已从候补转为正式学员：{klass.course.project.title}（{klass.name}）"[:300])
    audit.log(actor.user, "class_withdraw", enrolment,
              after={"class": klass.pk, "teacher": enrolment.teacher.teacher_no,
                     "promoted": promoted.teacher.teacher_no if promoted else None},
              ip=actor.ip, org_path=enrolment.teacher.school.path)
    return enrolment


# ------------------------------------------------------------------ sessions and sign-in


@transaction.atomic
def add_session(actor: Actor, class_id: int, title: str, starts_at: dt.datetime, ends_at: dt.datetime,
                hours: Any, materials_url: str = "") -> ClassSession:
    klass = _locked_class(class_id)
    if not perm.can_manage_class(actor.user, klass):
        raise Denied("只有班主任可以安排课次")
    if klass.state != TrainingClass.State.OPEN:
        raise Conflict("该班级已结班")
    if ends_at <= starts_at:
        raise ServiceError("结束时间须晚于开始时间")
    h = _decimal(hours, "学时")
    if h <= 0:
        raise ServiceError("学时须大于 0")
    if materials_url and not materials_url.startswith(("https://", "http://")):
        raise ServiceError("材料链接须以 http:// 或 https:// 开头")
    session = ClassSession.objects.create(klass=klass, title=title.strip()[:200] or "课次", starts_at=starts_at,
                                          ends_at=ends_at, hours=h, materials_url=materials_url)
    audit.log(actor.user, "session_add", session, after={"class": klass.pk, "title": session.title,
                                                         "hours": fmt(h)}, ip=actor.ip,
              org_path=klass.course.project.applicant.path)
    return session


def signin_token(session: ClassSession) -> str:
    return signing.dumps({"s": session.pk}, salt=SIGNIN_SALT, compress=True)


def session_from_token(token: str) -> ClassSession:
    try:
        data = signing.loads(token, salt=SIGNIN_SALT)
    except signing.BadSignature:
        raise ServiceError("签到码无效") from None
    try:
        return ClassSession.objects.select_related("klass__course__project").get(pk=int(data["s"]))
    except (ClassSession.DoesNotExist, KeyError, TypeError, ValueError):
        raise ServiceError("签到码无效") from None


def signin_window(session: ClassSession) -> tuple[dt.datetime, dt.datetime]:
    margin = dt.timedelta(minutes=int(getattr(settings, "XUEFEN_SIGNIN_MARGIN_MINUTES", 30)))
    return session.starts_at - margin, session.ends_at + margin


@transaction.atomic
def sign_in(actor: Actor, token: str, teacher: Teacher, now: dt.datetime | None = None) -> Attendance:
    """扫码签到: the teacher herself, enrolled, within the session's window."""
    session = session_from_token(token)
    if not perm.can_enrol(actor.user, teacher):
        raise Denied("请用本人的教师账号签到")
    klass = _locked_class(session.klass_id)
    if not Enrolment.objects.filter(klass=klass, teacher=teacher, state=Enrolment.State.ENROLLED).exists():
        raise Denied("您不在该班级的学员名单中")
    if klass.state != TrainingClass.State.OPEN:
        raise Conflict("该班级已结班")
    now = now or timezone.now()
    opens, closes = signin_window(session)
    if not opens <= now <= closes:
        local = timezone.localtime
        raise ServiceError(f"不在签到时间内（{local(opens):%m月%d日 %H:%M} 至 {local(closes):%H:%M}）")
    found = Attendance.objects.filter(session=session, teacher=teacher).first()
    if found is not None:
        return found
    att = Attendance.objects.create(session=session, teacher=teacher, via=Attendance.Via.QR)
    audit.log(actor.user, "signin", att, after={"session": session.pk, "teacher": teacher.teacher_no, "via": "qr"},
              ip=actor.ip, org_path=teacher.school.path)
    return att


@transaction.atomic
def tick_attendance(actor: Actor, session_id: int, present: Iterable[int]) -> list[int]:
    """The 班主任 ticks the list: exactly these enrolments attended."""
    session = ClassSession.objects.select_related("klass").get(pk=session_id)
    klass = _locked_class(session.klass_id)
    if not perm.can_manage_class(actor.user, klass):
        raise Denied("只有班主任可以登记考勤")
    if klass.state != TrainingClass.State.OPEN:
        raise Conflict("该班级已结班")
    members = {e.pk: e.teacher_id for e in klass.enrolments.filter(state=Enrolment.State.ENROLLED)}
    wanted = {int(x) for x in present}
    strangers = wanted - set(members)
    if strangers:
        raise ServiceError("勾选的学员不在本班名单中")
    teachers = {members[e] for e in wanted}
    before = sorted(Attendance.objects.filter(session=session).values_list("teacher_id", flat=True))
    Attendance.objects.filter(session=session).exclude(teacher_id__in=teachers).delete()
    have = set(Attendance.objects.filter(session=session).values_list("teacher_id", flat=True))
    Attendance.objects.bulk_create([Attendance(session=session, teacher_id=t, via=Attendance.Via.LIST)
                                    for t in sorted(teachers - have)])
    audit.log(actor.user, "attendance_tick", session, before={"teachers": before},
              after={"teachers": sorted(teachers)}, ip=actor.ip, org_path=klass.course.project.applicant.path)
    return sorted(teachers)


def absent_hours(klass: TrainingClass) -> dict[int, Decimal]:
    """Hours of the sessions each enrolled teacher did not sign in to."""
    sessions = list(klass.sessions.all())
    seen: dict[int, set[int]] = {}
    for session_id, teacher_id in Attendance.objects.filter(session__klass=klass).values_list("session_id",
                                                                                              "teacher_id"):
        seen.setdefault(teacher_id, set()).add(session_id)
    out: dict[int, Decimal] = {}
    for e in klass.enrolments.filter(state=Enrolment.State.ENROLLED):
        there = seen.get(e.teacher_id, set())
        out[e.teacher_id] = sum((s.hours for s in sessions if s.pk not in there), ZERO)
    return out


# ------------------------------------------------------------------ results and credits


@dataclass(frozen=True)
class Limits:
    excellent: tuple[Decimal, str] | None  # (share, citation)
    absence: dict[int, tuple[Fraction, str, str]]  # teacher id -> (share, as the policy writes it, citation)


def class_limits(klass: TrainingClass, teachers: list[Teacher]) -> Limits:
    from xuefen.numbers import share
    from xuefen.policy.schema import Gate
    from xuefen.web.services.imports import _Jurisdictions

    jurisdictions = _Jurisdictions({t.school_id: t.school for t in teachers}.values())
    found = [lim for t in teachers for lim in [jurisdictions.limit(t)] if lim]
    absence: dict[int, tuple[Fraction, str, str]] = {}
    for t in teachers:
        chosen = policy_for(t)
        if chosen is None:
            continue
        policy = chosen[0]
        for rule in policy.rules:
            if isinstance(rule, Gate) and rule.max_absence_share and not rule.when:
                article = "、".join(c.article for c in (rule.cites if isinstance(rule.cites, list) else [rule.cites]))
                absence[t.pk] = (share(rule.max_absence_share), rule.max_absence_share,
                                 f"{policy.short_name or policy.name} {article}")
                break
    return Limits(min(found) if found else None, absence)


@transaction.atomic
def enter_results(actor: Actor, class_id: int, results: dict[int, str], expected_version: int | None = None) -> int:
    """考核结果 per enrolment (合格/优秀/不合格), refused as a whole when a
    limit is broken (赤峰 第十九条 优秀 share; 潍坊 第十七条 absence)."""
    klass = _locked_class(class_id)
    if not perm.can_manage_class(actor.user, klass):
        raise Denied("只有班主任可以登记考核结果")
    if expected_version is not None and klass.version != expected_version:
        raise Conflict("该班级已被他人修改，请刷新后再试")
    if klass.state != TrainingClass.State.OPEN:
        raise Conflict("该班级已结班，考核结果不能再修改")
    enrolments = {e.pk: e for e in klass.enrolments.filter(state=Enrolment.State.ENROLLED)
                  .select_related("teacher__school")}
    problems: list[str] = []
    for pk, value in results.items():
        if pk not in enrolments:
            problems.append(f"学员 {pk} 不在本班名单中")
        elif value not in (*RESULTS, ""):
            problems.append(f"{enrolments[pk].teacher.name}：考核结果“{value}”须是 合格、优秀 或 不合格")
    if problems:
        raise ServiceError("；".join(problems))
    after = {pk: results.get(pk, e.result) for pk, e in enrolments.items()}
    limits = class_limits(klass, [e.teacher for e in enrolments.values()])
    if limits.excellent is not None:
        share_, article = limits.excellent
        count = sum(1 for v in after.values() if v == EXCELLENT)
        allowed = math.floor(len(enrolments) * share_)
        if count > allowed:
            problems.append(f"优秀 {count} 人，超过本班 {len(enrolments)} 人的 {fmt(share_ * 100)}%（最多 {allowed} 人；"
                            f"{article}）")
    missed = absent_hours(klass)
    hours = klass.course.hours
    for pk, value in after.items():
        t = enrolments[pk].teacher
        if value in ("合格", EXCELLENT) and t.pk in limits.absence and hours > 0:
            most, written, article = limits.absence[t.pk]
            if Fraction(missed.get(t.pk, ZERO)) / Fraction(hours) > most:
                problems.append(f"{t.name}缺课 {fmt(missed[t.pk])} 学时，超过总课时 {fmt(hours)} 的 {written}，"
                                f"取消考核资格，不能评为{value}（{article}）")
    if problems:
        raise ServiceError("；".join(problems))
    before = {pk: e.result for pk, e in enrolments.items()}
    for pk, e in enrolments.items():
        if e.result != after[pk]:
            e.result = after[pk]
            e.save(update_fields=["result"])
    klass.version += 1
    klass.save(update_fields=["version"])
    audit.log(actor.user, "class_results", klass, before={str(k): v for k, v in before.items()},
              after={str(k): v for k, v in after.items()}, ip=actor.ip, org_path=klass.course.project.applicant.path)
    return len(results)


def record_facts(project: TrainingProject, course: Course, result: str, absent: Decimal | None,
                 hours: Decimal | None = None) -> dict[str, Any]:
    """A participant's facts, in the interchange vocabulary: the project's
    terms, the course's hours, her absence and result; 经批准 = 立项."""
    title = project.title if course.title in ("", project.title) else f"{project.title}（{course.title}）"
    facts: dict[str, Any] = {"year": str(project.year), "title": title[:200], "hours": fmt(hours or course.hours),
                             "result": result, "role": "学员", "approved": "是"}
    for key in ("category", "theme", "level", "form", "location"):
        if getattr(project, key):
            facts[key] = getattr(project, key)
    if absent:
        facts["absent_hours"] = fmt(absent)
    return facts


def _imported_twin(klass: TrainingClass, teacher: Teacher, title: str) -> Record | None:
    """A record of this class already in the ledger from a roster import."""
    project = klass.course.project
    return (Record.objects.filter(teacher=teacher, uid=klass.record_uid).first()
            or Record.objects.filter(teacher=teacher, year=project.year, title__in=(title, project.title),
                                     import_batch__org=project.applicant,
                                     import_batch__state=ImportBatch.State.DONE)
            .exclude(status=Status.REVOKED).first())


@transaction.atomic
def close_class(actor: Actor, class_id: int, expected_version: int | None = None) -> list[Record]:
    """结班: every enrolled participant's record is written from the project,
    her attendance and her result (附件4 第十一条 反馈学员参训情况)."""
    klass = _locked_class(class_id)
    if not perm.can_manage_class(actor.user, klass):
        raise Denied("只有班主任可以结班")
    if klass.course.project.kind == ProjectKind.RESEARCH:
        raise ServiceError("校本研修项目由区县继教办验收后登记学分，不能直接结班")
    if expected_version is not None and klass.version != expected_version:
        raise Conflict("该班级已被他人修改，请刷新后再试")
    if klass.state != TrainingClass.State.OPEN:
        raise Conflict("该班级已结班")
    enrolments = list(klass.enrolments.filter(state=Enrolment.State.ENROLLED).select_related("teacher__school"))
    missing = [e.teacher.name for e in enrolments if not e.result]
    if missing:
        raise ServiceError(f"以下学员尚未登记考核结果：{'、'.join(missing)}")
    missed = absent_hours(klass)
    project, course = klass.course.project, klass.course
    items: list[tuple[Teacher, str, dict[str, Any]]] = []
    linked: list[Enrolment] = []
    for e in enrolments:
        facts = record_facts(project, course, e.result, missed.get(e.teacher_id))
        twin = _imported_twin(klass, e.teacher, facts["title"])
        if twin is not None:
            e.record = twin
            linked.append(e)
        else:
            items.append((e.teacher, klass.record_uid, facts))
    records = ledger.enter_training_records(actor, items, record_status(), comment=f"{project.title} · {klass.name}")
    by_teacher = {r.teacher_id: r for r in records}
    for e in enrolments:
        if e.teacher_id in by_teacher:
            e.record = by_teacher[e.teacher_id]
        e.save(update_fields=["record"])
    klass.state = TrainingClass.State.CLOSED
    klass.closed_at = timezone.now()
    klass.version += 1
    klass.save(update_fields=["state", "closed_at", "version"])
    audit.log(actor.user, "class_close", klass, after={"records": [r.pk for r in records],
                                                       "linked_imports": [e.record_id for e in linked]},
              ip=actor.ip, org_path=project.applicant.path)
    return records


@transaction.atomic
def submit_survey(actor: Actor, enrolment_id: int, ratings: dict[str, Any], comment: str) -> ClassSurvey:
    """评估 (朝阳 附件4 第十七条): the participant's ratings of her class, 1–5."""
    enrolment = Enrolment.objects.select_related("teacher__school", "klass").get(pk=enrolment_id)
    if not perm.can_enrol(actor.user, enrolment.teacher):
        raise Denied("只能填写本人的评估问卷")
    if enrolment.state != Enrolment.State.ENROLLED:
        raise Conflict("只有本班学员可以填写评估问卷")
    parsed: dict[str, int] = {}
    for item in SURVEY_ITEMS:
        value = str(ratings.get(item) or "").strip()
        if value not in ("1", "2", "3", "4", "5"):
            raise ServiceError(f"请为“{item}”选择 1–5 分")
        parsed[item] = int(value)
    try:
        with transaction.atomic():
            survey = ClassSurvey.objects.create(enrolment=enrolment, ratings=parsed, comment=comment.strip()[:2000])
    except IntegrityError:
        raise Conflict("您已填写过该班级的评估问卷") from None
    audit.log(actor.user, "survey", survey, after={"class": enrolment.klass_id, "ratings": parsed}, ip=actor.ip,
              org_path=enrolment.teacher.school.path)
    return survey


SURVEY_ITEMS = ("内容实用", "讲授质量", "组织管理", "总体满意")


# ------------------------------------------------------------------ what to take


def _gaps(p: dict[str, Any]) -> dict[tuple[Any, ...], Decimal]:
    return {(n["scope"], n["year"], n["label"]): Decimal(n["missing"]) for n in p["needs"]
            if n["measure"] in ("credits", "earned_credits")}


def what_to_take(teacher: Teacher, limit: int = 10) -> list[dict[str, Any]]:
    """The open classes that would close the teacher's remaining gap, by how
    much (朝阳 附件2 第十条 学习诊断/资源推送).  Each class is tried as one more
    record with result 合格 and no absence, and the engine's plan
    (engine/report.py ``plan``) before and after is compared: the figure is
    the largest reduction of any of her unmet credit minimums."""
    chosen = policy_for(teacher)
    if chosen is None:
        return []
    policy, as_of, options = chosen
    ev_eval = evaluator(policy, options)
    et = engine_teacher(teacher)
    records = [engine_record(r) for r in teacher.records.order_by("year", "uid") if r.status in COUNTING]
    before = _gaps(plan(ev_eval.evaluate(et, records, as_of)))
    if not before:
        return []
    taken = set(Enrolment.objects.filter(teacher=teacher).exclude(state=Enrolment.State.WITHDRAWN)
                .values_list("klass_id", flat=True))
    ancestors = perm._ancestor_ids(teacher.school)
    classes = (TrainingClass.objects.filter(state=TrainingClass.State.OPEN,
                                            course__project__state=ProjectState.APPROVED,
                                            course__project__kind=ProjectKind.TRAINING,
                                            course__project__approver_org_id__in=ancestors)
               .exclude(pk__in=taken).select_related("course__project"))
    out: list[dict[str, Any]] = []
    for klass in classes:
        project, course = klass.course.project, klass.course
        facts = record_facts(project, course, "合格", None)
        parsed = ledger.parse_facts(facts)
        extra = _engine_record(f"plan-{klass.record_uid}", {k: parsed[k] for k in parsed if k != "preset_credits"},
                               None)
        after = _gaps(plan(ev_eval.evaluate(et, [*records, extra], as_of)))
        # Needs overlap (a year's total and its 必修, the cycle's): one class's
        # credits close each of them, so the figure is the largest reduction,
        # not their sum; the needs it reduces are listed beside it.
        closes = max((v - after.get(k, ZERO) for k, v in before.items()), default=ZERO)
        if closes <= 0:
            continue
        covered = [k[2] for k, v in before.items() if after.get(k, ZERO) < v]
        enrolled = klass.enrolments.filter(state=Enrolment.State.ENROLLED).count()
        out.append({"class": klass, "project": project, "course": course, "closes": closes,
                    "closes_text": fmt(closes), "covers": covered, "full": enrolled >= klass.capacity})
    out.sort(key=lambda x: (-x["closes"], -len(x["covers"]), x["class"].pk))
    return out[:limit]


# ------------------------------------------------------------------ evaluation (评估) and the 年度报告


def project_report(project: TrainingProject) -> dict[str, Any]:
    """One project's figures for the district (朝阳 附件4 第十七、十八条):
    participants, results, attendance, the credits recorded, and the
    participants' survey — read from what the services stored."""
    from django.db.models import Count, Sum

    enrolments = Enrolment.objects.filter(klass__course__project=project, state=Enrolment.State.ENROLLED)
    results = dict(enrolments.exclude(result="").values_list("result").annotate(n=Count("id")).order_by())
    hours_due = ZERO
    hours_attended = ZERO
    for klass in TrainingClass.objects.filter(course__project=project).prefetch_related("sessions"):
        sessions = {s.pk: s.hours for s in klass.sessions.all()}
        members = klass.enrolments.filter(state=Enrolment.State.ENROLLED).count()
        hours_due += sum(sessions.values(), ZERO) * members
        attended = Attendance.objects.filter(session__klass=klass,
                                             teacher__enrolments__klass=klass,
                                             teacher__enrolments__state=Enrolment.State.ENROLLED)
        hours_attended += sum((sessions[s] for s in attended.values_list("session_id", flat=True)), ZERO)
    credits = Record.objects.filter(pk__in=enrolments.exclude(record=None).values("record_id")) \
        .exclude(status=Status.REVOKED).aggregate(total=Sum("credits"))["total"] or ZERO
    surveys = list(ClassSurvey.objects.filter(enrolment__klass__course__project=project))
    averages = {item: (sum((Decimal(s.ratings.get(item, 0)) for s in surveys), ZERO) / len(surveys))
                .quantize(Decimal("0.01")) for item in SURVEY_ITEMS} if surveys else {}
    return {
        "project": project, "participants": enrolments.count(),
        "results": {r: results.get(r, 0) for r in RESULTS},
        "attendance": (hours_attended * 100 / hours_due).quantize(Decimal("0.1")) if hours_due else None,
        "credits": credits, "records": enrolments.exclude(record=None).count(),
        "surveys": len(surveys), "averages": averages,
        "comments": [s.comment for s in surveys if s.comment][:20],
    }


def annual_report(projects: Iterable[TrainingProject]) -> list[dict[str, Any]]:
    """The 年度报告 (朝阳 附件4 第十九条): every project of the year in scope."""
    return [project_report(p) for p in projects]


def source_project(record: Record, user: Any) -> TrainingProject | None:
    """The project a record came from (its class's), when the user may see it."""
    if record.source != Source.TRAINING:
        return None
    enrolment = Enrolment.objects.filter(record=record).select_related("klass__course__project").first()
    if enrolment is None:
        return None
    project = enrolment.klass.course.project
    return project if TrainingProject.objects.for_user(user).filter(pk=project.pk).exists() else None
