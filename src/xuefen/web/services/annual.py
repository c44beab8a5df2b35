"""Annual close (年度登记/年审): officer closes → principal signs off → 公示
with 异议 → officer answers → district confirms (or returns); reopen by the
district.  One function per step, each one transaction: lock the close row,
check permission, check the state and the version the actor saw, write,
audit, and — where figures or documents follow — re-evaluate or issue.

The seeds: 永吉 "学分管理专员统计全校教师 … 报请校（园）长审核、公示" and "县级年审";
肃州 第十一条 (each December the school registers, next January the district
checks and stamps); 山东2009 (十三)(十四) (registration each term, the district's
check at the end of the year, "审核合格者，予以确定"); 赤峰 第十二条 "分年度登记".

Choices the seeds leave open, each a setting or documented here:
- 公示 length: ``Org.publicity_days`` on the district, default
  :data:`DEFAULT_PUBLICITY_DAYS` working days (Monday–Friday; public holidays
  are not modelled — a district that needs them sets more days).
- When a school is late: ``Org.close_due`` (MM-DD of the next year) on the
  district, default :data:`DEFAULT_CLOSE_DUE` after 肃州 第十一条 "次年1月份".
- Pending declarations of the year block the close (they would be locked out
  of it); returned ones do not (they do not count and stay with the teacher).
- A revocation (山东 第二十三条, fraud) is allowed in a locked year: it is
  the reason a certificate can turn 已撤销.  Every other change of a record of
  a locked year is refused by :func:`ensure_year_open`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from xuefen.numbers import fmt
from xuefen.web import permissions as perm
from xuefen.web.models import AnnualClose, Objection, Org, OrgKind, Record, Status, Teacher
from xuefen.web.services import audit
from xuefen.web.services.ledger import Actor, Conflict, Denied, ServiceError

DEFAULT_PUBLICITY_DAYS = 5
DEFAULT_CLOSE_DUE = "01-31"

__all__ = [
    "Actor", "answer_objection", "close_year", "confirm", "ensure_year_open", "file_objection", "reopen",
    "return_close", "set_district_settings", "sign_off", "submit",
]


# ------------------------------------------------------------------ settings and dates


def district_of(org: Org) -> Org | None:
    """The nearest 区县 at or above ``org``: where the close settings live."""
    for node in reversed(org.ancestors()):
        if node.kind == OrgKind.DISTRICT:
            return node
    return None


def publicity_days(school: Org) -> int:
    district = district_of(school)
    if district is not None and district.publicity_days is not None:
        return district.publicity_days
    return DEFAULT_PUBLICITY_DAYS


def close_due(school: Org, year: int) -> dt.date:
    district = district_of(school)
    month_day = (district.close_due if district is not None else "") or DEFAULT_CLOSE_DUE
    month, day = (int(x) for x in month_day.split("-"))
    return dt.date(year + 1, month, day)


def add_working_days(start: dt.date, days: int) -> dt.date:
    """The last day of a period of ``days`` working days (Monday–Friday)
    starting on ``start`` (counted if it is one)."""
    day = start
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    counted = 1
    while counted < days:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            counted += 1
    return day


def _valid_month_day(value: str) -> bool:
    try:
        month, day = (int(x) for x in value.split("-"))
        dt.date(2001, month, day)  # not a leap year: 02-29 would be missing in most years
    except ValueError:
        return False
    return len(value) == 5


@transaction.atomic
def set_district_settings(actor: Actor, district_id: int, *, publicity_days: int | None, close_due: str) -> Org:
    district = Org.objects.select_for_update().get(pk=district_id)
    if district.kind != OrgKind.DISTRICT or not perm.can_set_district(actor.user, district):
        raise Denied("只有本区县继教办可以修改本区县的设置")
    if publicity_days is not None and not 1 <= publicity_days <= 30:
        raise ServiceError("公示天数须在 1 到 30 个工作日之间")
    close_due = close_due.strip()
    if close_due and not _valid_month_day(close_due):
        raise ServiceError(f"截止日“{close_due}”不是 MM-DD 格式的日期（如 01-31）")
    before = {"publicity_days": district.publicity_days, "close_due": district.close_due}
    district.publicity_days = publicity_days
    district.close_due = close_due
    district.save(update_fields=["publicity_days", "close_due"])
    audit.log(actor.user, "district_settings", district, before=before,
              after={"publicity_days": publicity_days, "close_due": close_due}, ip=actor.ip, org_path=district.path)
    return district


# ------------------------------------------------------------------ the lock


def close_of(school: Org, year: int) -> AnnualClose | None:
    return AnnualClose.objects.filter(school=school, year=year).first()


def locked_years(school_ids: list[int]) -> set[tuple[int, int]]:
    """(school id, year) of every locked year of these schools, for checks over many rows (imports)."""
    return set(AnnualClose.objects.filter(school_id__in=school_ids, state__in=AnnualClose.LOCKED)
               .values_list("school_id", "year"))


def ensure_year_open(teacher_or_school: Teacher | Org, year: int | None) -> None:
    """Refuse a change to ``year`` of a school whose close is under way or
    confirmed: the figures the 公示 showed and the certificates print must
    not move until the district reopens the year."""
    if year is None:
        return
    if isinstance(teacher_or_school, Teacher):
        # her school's year, or the year of a school she has left whose close counted her
        where = Q(school_id=teacher_or_school.school_id) | Q(snapshot__has_key=str(teacher_or_school.pk))
    else:
        where = Q(school_id=teacher_or_school.pk)
    close = (AnnualClose.objects.filter(where, year=year, state__in=AnnualClose.LOCKED).select_related("school")
             .first())
    if close is not None:
        raise Conflict(f"{close.school.name} {year} 年度已登记（{close.get_state_display()}），不能再修改；"
                       "如需修改，请区县继教办重新开放该年度")


# ------------------------------------------------------------------ the steps


def _locked_close(close_id: int) -> AnnualClose:
    return AnnualClose.objects.select_for_update().select_related("school").get(pk=close_id)


def _check_version(close: AnnualClose, expected_version: int | None) -> None:
    if expected_version is not None and close.version != expected_version:
        raise Conflict("该年度登记已被他人处理，请刷新后再试")


def _state(close: AnnualClose) -> dict[str, Any]:
    return {"state": close.state, "version": close.version, "publicity_end": str(close.publicity_end or "")}


def _settle(actor: Actor, close: AnnualClose, action: str, before: dict[str, Any], comment: str = "") -> AnnualClose:
    close.version += 1
    close.save()
    audit.log(actor.user, action, close, before=before, after=_state(close), comment=comment, ip=actor.ip,
              org_path=close.school.path)
    return close


def year_snapshot(school: Org, year: int) -> dict[str, Any]:
    """Each teacher's figures for ``year``, from the engine, as of the year's
    last day: the 公示 list and what the certificates print."""
    from xuefen.web.services.evaluation import evaluate_teacher

    out: dict[str, Any] = {}
    last_day = dt.date(year, 12, 31)
    counting: dict[int, list[int]] = {}
    for teacher_id, pk in (Record.objects.filter(teacher__school=school, year=year, status__in=perm.COUNTING)
                           .values_list("teacher_id", "pk").order_by("pk")):
        counting.setdefault(teacher_id, []).append(pk)
    for teacher in Teacher.objects.filter(school=school).select_related("school").order_by("teacher_no"):
        ev = evaluate_teacher(teacher, last_day)
        if ev is None:
            continue
        scope = ev.years.get(year)
        out[str(teacher.pk)] = {
            "teacher_no": teacher.teacher_no, "name": teacher.name, "policy_id": ev.policy.id,
            "passed": scope.passed if scope else None,
            "total": fmt(scope.total) if scope else "0",
            "categories": {k: fmt(v) for k, v in (scope.counted if scope else {}).items()},
            "records": counting.get(teacher.pk, []),
            "cycle": [ev.cycle_start, ev.cycle_end], "cycle_passed": ev.passed, "cycle_total": fmt(ev.total),
            "cycle_categories": {k: fmt(v) for k, v in ev.cycle.counted.items()},
        }
    return out


@transaction.atomic
def close_year(actor: Actor, school_id: int, year: int, today: dt.date | None = None) -> AnnualClose:
    """The school officer closes ``year``: the figures are taken, the year is locked."""
    today = today or timezone.localdate()
    school = Org.objects.select_for_update().get(pk=school_id)
    if school.kind != OrgKind.SCHOOL or not perm.can_close_year(actor.user, school):
        raise Denied("只有本校学分管理专员可以进行年度登记")
    if year > today.year:
        raise ServiceError(f"{year} 年度尚未开始，不能登记")
    pending = Record.objects.filter(teacher__school=school, year=year, status=Status.PENDING).count()
    if pending:
        raise ServiceError(f"{year} 年度尚有 {pending} 条待学校审核的记录，请先审核")
    close = AnnualClose.objects.select_for_update().filter(school=school, year=year).first()
    before: dict[str, Any] | None = None
    if close is None:
        close = AnnualClose(school=school, year=year)
    elif close.state not in (AnnualClose.State.RETURNED, AnnualClose.State.REOPENED):
        raise Conflict(f"{year} 年度已登记（{close.get_state_display()}）")
    else:
        before = _state(close)
    close.state = AnnualClose.State.CLOSED
    close.closed_by, close.closed_at = actor.user, timezone.now()
    close.signed_by = close.signed_at = close.publicity_start = close.publicity_end = None
    close.snapshot = year_snapshot(school, year)
    close.reason = ""
    try:
        with transaction.atomic():
            close.version = (close.version + 1) if close.pk else 1
            close.save()
    except IntegrityError:
        raise Conflict(f"{year} 年度已由他人登记，请刷新") from None
    audit.log(actor.user, "year_close", close, before=before, after=_state(close), ip=actor.ip, org_path=school.path)
    return close


@transaction.atomic
def sign_off(actor: Actor, close_id: int, expected_version: int | None = None,
             today: dt.date | None = None) -> AnnualClose:
    """The principal signs the year off; the 公示 starts that day."""
    today = today or timezone.localdate()
    close = _locked_close(close_id)
    if not perm.can_sign_year(actor.user, close.school):
        raise Denied("只有本校校长可以签发")
    _check_version(close, expected_version)
    if close.state != AnnualClose.State.CLOSED:
        raise Conflict(f"该年度当前为“{close.get_state_display()}”，不能签发")
    before = _state(close)
    close.state = AnnualClose.State.PUBLICITY
    close.signed_by, close.signed_at = actor.user, timezone.now()
    close.publicity_start = today
    close.publicity_end = add_working_days(today, publicity_days(close.school))
    _settle(actor, close, "year_sign", before)
    # The teachers are told where to look and until when they may object.
    from xuefen.web.models import Notification

    message = (f"{close.school.name} {close.year} 年度学分公示至 {close.publicity_end:%Y-%m-%d}，"
               "如有异议请在“年度登记”页面提出")
    Notification.objects.bulk_create(
        Notification(user_id=uid, message=message)
        for uid in Teacher.objects.filter(school=close.school, user__isnull=False).values_list("user_id", flat=True))
    return close


@transaction.atomic
def file_objection(actor: Actor, close_id: int, reason: str, today: dt.date | None = None) -> Objection:
    today = today or timezone.localdate()
    close = _locked_close(close_id)
    teacher = Teacher.objects.filter(user=actor.user, school=close.school).first() if actor.user.is_authenticated else None
    if teacher is None or not perm.can_object(actor.user, teacher):
        raise Denied("只有本校教师可以对本校公示提出异议")
    if close.state != AnnualClose.State.PUBLICITY:
        raise Conflict("该年度不在公示期")
    assert close.publicity_end is not None
    if today > close.publicity_end:
        raise Conflict(f"公示期已于 {close.publicity_end:%Y-%m-%d} 结束")
    if not reason.strip():
        raise ServiceError("异议须写明理由")
    objection = Objection.objects.create(close=close, teacher=teacher, reason=reason.strip())
    audit.log(actor.user, "objection_file", objection, after={"close": close.pk, "reason": objection.reason},
              ip=actor.ip, org_path=close.school.path)
    return objection


@transaction.atomic
def answer_objection(actor: Actor, objection_id: int, answer: str) -> Objection:
    objection = Objection.objects.select_for_update().select_related("close__school", "teacher").get(pk=objection_id)
    close = objection.close
    if not perm.can_close_year(actor.user, close.school):
        raise Denied("只有本校学分管理专员可以答复异议")
    if close.state != AnnualClose.State.PUBLICITY:
        raise Conflict("该年度不在公示期，不能答复")
    if objection.answered_at is not None:
        raise Conflict("该异议已答复")
    if not answer.strip():
        raise ServiceError("答复不能为空")
    objection.answer = answer.strip()
    objection.answered_by, objection.answered_at = actor.user, timezone.now()
    objection.save()
    audit.log(actor.user, "objection_answer", objection, after={"close": close.pk, "answer": objection.answer},
              ip=actor.ip, org_path=close.school.path)
    if objection.teacher.user_id:
        from xuefen.web.models import Notification

        Notification.objects.create(user_id=objection.teacher.user_id,
                                    message=f"您对 {close.year} 年度公示的异议已答复：{objection.answer}"[:300])
    return objection


@transaction.atomic
def submit(actor: Actor, close_id: int, expected_version: int | None = None,
           today: dt.date | None = None) -> AnnualClose:
    """After the 公示, every objection answered, the officer sends the year to the district."""
    today = today or timezone.localdate()
    close = _locked_close(close_id)
    if not perm.can_close_year(actor.user, close.school):
        raise Denied("只有本校学分管理专员可以报送")
    _check_version(close, expected_version)
    if close.state != AnnualClose.State.PUBLICITY:
        raise Conflict(f"该年度当前为“{close.get_state_display()}”，不能报送")
    assert close.publicity_end is not None
    if today <= close.publicity_end:
        raise Conflict(f"公示期至 {close.publicity_end:%Y-%m-%d}，结束后方可报送")
    open_objections = close.objections.filter(answered_at__isnull=True).count()
    if open_objections:
        raise Conflict(f"尚有 {open_objections} 条异议未答复")
    before = _state(close)
    close.state = AnnualClose.State.SUBMITTED
    close.submitted_at = timezone.now()
    return _settle(actor, close, "year_submit", before)


@transaction.atomic
def confirm(actor: Actor, close_id: int, expected_version: int | None = None) -> AnnualClose:
    """The district confirms the year; the certificates of the teachers who
    passed are issued where the policy provides them."""
    from xuefen.web.services import certificates

    close = _locked_close(close_id)
    if not perm.can_confirm_year(actor.user, close.school):
        raise Denied("只有区县继教办可以确认")
    _check_version(close, expected_version)
    if close.state != AnnualClose.State.SUBMITTED:
        raise Conflict(f"该年度当前为“{close.get_state_display()}”，不能确认")
    before = _state(close)
    close.state = AnnualClose.State.CONFIRMED
    close.confirmed_by, close.confirmed_at = actor.user, timezone.now()
    _settle(actor, close, "year_confirm", before)
    certificates.issue_for_close(actor, close)
    return close


@transaction.atomic
def return_close(actor: Actor, close_id: int, reason: str, expected_version: int | None = None) -> AnnualClose:
    close = _locked_close(close_id)
    if not perm.can_confirm_year(actor.user, close.school):
        raise Denied("只有区县继教办可以退回")
    _check_version(close, expected_version)
    if close.state != AnnualClose.State.SUBMITTED:
        raise Conflict(f"该年度当前为“{close.get_state_display()}”，不能退回")
    if not reason.strip():
        raise ServiceError("退回须填写理由")
    before = _state(close)
    close.state = AnnualClose.State.RETURNED
    close.reason = reason.strip()
    return _settle(actor, close, "year_return", before, reason.strip())


@transaction.atomic
def reopen(actor: Actor, close_id: int, reason: str, expected_version: int | None = None) -> AnnualClose:
    """The district reopens a confirmed year; its certificates are voided
    (a new close and confirmation issues new ones)."""
    from xuefen.web.services import certificates

    close = _locked_close(close_id)
    if not perm.can_confirm_year(actor.user, close.school):
        raise Denied("只有区县继教办可以重新开放")
    _check_version(close, expected_version)
    if close.state != AnnualClose.State.CONFIRMED:
        raise Conflict(f"该年度当前为“{close.get_state_display()}”，不能重新开放")
    if not reason.strip():
        raise ServiceError("重新开放须填写理由")
    before = _state(close)
    close.state = AnnualClose.State.REOPENED
    close.reason = reason.strip()
    _settle(actor, close, "year_reopen", before, reason.strip())
    certificates.void_for_close(actor, close, f"年度重新开放：{reason.strip()}")
    return close


# ------------------------------------------------------------------ the district's view


def school_rows(district: Org, year: int, today: dt.date | None = None) -> list[dict[str, Any]]:
    """Every school under ``district`` with its close of ``year`` and
    whether it is late (not yet with the district after the due day)."""
    today = today or timezone.localdate()
    schools = list(Org.objects.filter(path__startswith=district.path, kind=OrgKind.SCHOOL).order_by("name"))
    closes = {c.school_id: c for c in AnnualClose.objects.filter(school__in=schools, year=year)}
    rows = []
    for school in schools:
        close = closes.get(school.pk)
        due = close_due(school, year)
        done = close is not None and close.state in (AnnualClose.State.SUBMITTED, AnnualClose.State.CONFIRMED)
        rows.append({"school": school, "close": close, "due": due, "late": today > due and not done})
    return rows
