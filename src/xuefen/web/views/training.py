"""Training pages (issue 15): projects (申报, 论证, 立项), courses and classes,
sessions with sign-in, results, closing, 校本研修 members and 验收, the
teacher's own training and "what to take".  Views parse, call one service in
services/training.py or services/research.py, render."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from xuefen import vocab
from xuefen.numbers import fmt
from xuefen.web import permissions as perm
from xuefen.web.models import (
    ClassSession,
    Enrolment,
    ProjectKind,
    ProjectState,
    Role,
    Teacher,
    TrainingClass,
    TrainingProject,
)
from xuefen.web.services import research, training
from xuefen.web.services.ledger import Actor, ServiceError
from xuefen.web.views.common import client_ip

APPLY_FIELDS = ("title", "year", "category", "theme", "level", "form", "location", "hours", "capacity", "target",
                "budget", "plan")


def _actor(request: HttpRequest) -> Actor:
    return Actor(request.user, client_ip(request))


def _own_teacher(request: HttpRequest) -> Teacher | None:
    if perm.role(request.user) != Role.TEACHER:
        return None
    return Teacher.objects.for_user(request.user).select_related("school").first()


def _project(request: HttpRequest, pk: int) -> TrainingProject:
    return get_object_or_404(TrainingProject.objects.for_user(request.user).distinct()
                             .select_related("applicant", "approver_org"), pk=pk)


def _class(request: HttpRequest, pk: int) -> TrainingClass:
    """A class the user may see: its project is in scope."""
    klass = get_object_or_404(TrainingClass.objects.select_related("course__project__applicant",
                                                                   "course__project__approver_org", "head"), pk=pk)
    if not TrainingProject.objects.for_user(request.user).filter(pk=klass.course.project_id).exists():
        raise Http404
    return klass


def _run(request: HttpRequest, fn: Callable[[], Any], done: str) -> bool:
    """Call one service; its refusal becomes the page's error message."""
    try:
        fn()
    except ServiceError as exc:
        messages.error(request, str(exc))
        return False
    messages.success(request, done)
    return True


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if perm.role(request.user) == Role.TEACHER:
        return redirect("training-mine")
    p = perm.profile(request.user)
    if p is None or p.role not in (*perm.APPLICANT_ROLES, *perm.DECIDING_ROLES, Role.EXPERT, Role.PRINCIPAL):
        raise Http404
    projects = list(TrainingProject.objects.for_user(request.user).distinct().select_related("applicant"))
    return render(request, "xuefen/training_home.html", {
        "projects": projects, "can_apply": p.org is not None and perm.can_apply(request.user, p.org),
        "is_school": p.org is not None and p.org.kind in ("school", "zone"),
        "to_score": [x for x in projects if x.state == ProjectState.SUBMITTED and perm.can_score(request.user, x)],
        "to_decide": [x for x in projects if x.state == ProjectState.REVIEWED and perm.can_decide(request.user, x)],
        "can_report": p.role in perm.DECIDING_ROLES, "year": timezone.localdate().year,
    })


@login_required
@require_http_methods(["GET", "POST"])
def apply(request: HttpRequest) -> HttpResponse:
    p = perm.profile(request.user)
    if p is None or p.org is None or not perm.can_apply(request.user, p.org):
        raise Http404
    kind = request.GET.get("kind") or request.POST.get("kind") or ProjectKind.TRAINING
    if kind not in ProjectKind.values:
        raise Http404
    values = {k: request.POST.get(k, "").strip() for k in APPLY_FIELDS}
    values.setdefault("year", "")
    error = ""
    if request.method == "POST":
        try:
            project = training.apply_project(_actor(request), p.org, values, kind=kind)
        except ServiceError as exc:
            error = str(exc)
        else:
            messages.success(request, _("已提交申报“%(t)s”，等待专家论证") % {"t": project.title})
            return redirect("training-project", pk=project.pk)
    if not values["year"]:
        values["year"] = str(timezone.localdate().year)
    return render(request, "xuefen/training_apply.html", {
        "values": values, "error": error, "kind": kind, "org": p.org, "categories": _categories(p.org),
        "choices": {f: vocab.allowed(f) for f in ("form", "level", "location")},
    }, status=400 if error else 200)


def _categories(org: Any) -> list[str]:
    """The credit categories of the policy the applicant is bound to, for the form."""
    binding = org.binding()
    if binding is None:
        return []
    from xuefen.policy.loader import default_registry

    try:
        policy = default_registry().resolve(binding.policy, timezone.localdate())
    except Exception:  # an unknown binding: the form falls back to free text
        return []
    return [c.id for c in policy.categories]


@login_required
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    user = request.user
    courses = list(project.courses.prefetch_related("classes"))
    teacher = _own_teacher(request)
    context: dict[str, Any] = {
        "project": project, "courses": courses, "scores": list(project.scores.select_related("expert")),
        "criteria": training.criteria(), "teacher": teacher,
        "can_score": project.state in (ProjectState.SUBMITTED, ProjectState.REVIEWED) and perm.can_score(user, project)
        and not project.scores.filter(expert_id=user.pk).exists(),
        "can_decide": project.state == ProjectState.REVIEWED and perm.can_decide(user, project),
        "can_manage": project.state == ProjectState.APPROVED and perm.can_manage_project(user, project),
        "is_research": project.kind == ProjectKind.RESEARCH,
    }
    if perm.can_decide(user, project) or perm.can_manage_project(user, project) or perm.can_score(user, project):
        context["report"] = training.project_report(project)
    if project.kind == ProjectKind.RESEARCH:
        context.update(research.summary(project))
        context["school_teachers"] = list(Teacher.objects.filter(school__path__startswith=project.applicant.path)) \
            if context["can_manage"] else []
        context["member_ids"] = {e.teacher_id for e in context["members"]}
        context["can_accept"] = project.state == ProjectState.APPROVED and perm.can_decide(user, project)
    return render(request, "xuefen/training_project.html", context)


@login_required
@require_POST
def project_score(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    scores = {name: request.POST.get(f"score-{i}", "") for i, name in enumerate(training.criteria())}
    _run(request, lambda: training.score_project(_actor(request), project.pk, scores,
                                                 request.POST.get("comment", "")), _("已提交论证意见"))
    return redirect("training-project", pk=project.pk)


@login_required
@require_POST
def project_decide(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    approve = request.POST.get("decision") == "approve"
    version = int(request.POST["version"]) if request.POST.get("version", "").isdigit() else None
    _run(request, lambda: training.decide_project(_actor(request), project.pk, approve,
                                                  request.POST.get("comment", ""), version),
         _("已立项") if approve else _("已退回"))
    return redirect("training-project", pk=project.pk)


@login_required
@require_POST
def course_add(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    data = {k: request.POST.get(k, "") for k in ("title", "hours", "lecturers", "resource_url")}
    _run(request, lambda: training.add_course(_actor(request), project.pk, data), _("已添加课程"))
    return redirect("training-project", pk=project.pk)


@login_required
@require_POST
def class_open(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    course = get_object_or_404(project.courses.all(), pk=request.POST.get("course", "0") or 0)
    _run(request, lambda: training.open_class(_actor(request), course.pk, request.POST.get("name", ""),
                                              request.POST.get("capacity", "")), _("已开班"))
    return redirect("training-project", pk=project.pk)


@login_required
@require_POST
def research_members(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    ids = [int(x) for x in request.POST.getlist("member") if x.isdigit()]
    _run(request, lambda: research.set_members(_actor(request), project.pk, ids), _("已更新研修成员"))
    return redirect("training-project", pk=project.pk)


@login_required
@require_POST
def research_accept(request: HttpRequest, pk: int) -> HttpResponse:
    project = _project(request, pk)
    passed = request.POST.get("decision") == "pass"
    _run(request, lambda: research.accept(_actor(request), project.pk, passed, request.POST.get("reason", "")),
         _("验收通过，成员学分已登记") if passed else _("验收未通过，已告知成员"))
    return redirect("training-project", pk=project.pk)


@login_required
def annual_report(request: HttpRequest, year: int) -> HttpResponse:
    """年度报告 (朝阳 附件4 第十九条): the projects of a year the office oversees."""
    p = perm.profile(request.user)
    if p is None or p.role not in perm.DECIDING_ROLES:
        raise Http404
    projects = TrainingProject.objects.for_user(request.user).filter(year=year).distinct() \
        .select_related("applicant").order_by("kind", "pk")
    return render(request, "xuefen/training_report.html", {
        "year": year, "rows": training.annual_report(projects), "survey_items": training.SURVEY_ITEMS,
        "results": training.RESULTS,
    })


# ------------------------------------------------------------------ classes


def qr_svg(url: str) -> str:
    """The sign-in URL as an SVG QR code (segno), drawn without any style."""
    return str(segno.make(url, error="m").svg_inline(scale=6, border=2, dark="#111", light="#fff"))


@login_required
def class_detail(request: HttpRequest, pk: int) -> HttpResponse:
    klass = _class(request, pk)
    manage = perm.can_manage_class(request.user, klass)
    teacher = _own_teacher(request)
    enrolments = list(klass.enrolments.select_related("teacher__school", "record"))
    mine = next((e for e in enrolments if teacher is not None and e.teacher_id == teacher.pk), None)
    missed = training.absent_hours(klass)
    limits = training.class_limits(klass, [e.teacher for e in enrolments if e.state == Enrolment.State.ENROLLED]) \
        if manage else None
    return render(request, "xuefen/training_class.html", {
        "klass": klass, "project": klass.course.project, "course": klass.course, "manage": manage,
        "enrolments": enrolments if manage else [], "mine": mine, "teacher": teacher,
        "enrolled": sum(1 for e in enrolments if e.state == Enrolment.State.ENROLLED),
        "sessions": list(klass.sessions.all()), "missed": {k: fmt(v) for k, v in missed.items()},
        "results": training.RESULTS,
        "excellent_limit": f"{fmt(limits.excellent[0] * 100)}%（{limits.excellent[1]}）"
        if limits and limits.excellent else "",
        "can_enrol": teacher is not None and (mine is None or mine.state == Enrolment.State.WITHDRAWN)
        and klass.state == TrainingClass.State.OPEN
        and training.class_visible_to_teacher(klass, teacher),
        "survey_items": training.SURVEY_ITEMS,
        "can_survey": mine is not None and mine.state == Enrolment.State.ENROLLED and not hasattr(mine, "survey"),
    })


@login_required
@require_POST
def class_enrol(request: HttpRequest, pk: int) -> HttpResponse:
    klass = _class(request, pk)
    teacher = _own_teacher(request)
    if teacher is None:
        raise Http404
    _run(request, lambda: training.enrol(_actor(request), klass.pk, teacher), _("已报名"))
    return redirect("training-class", pk=klass.pk)


@login_required
@require_POST
def class_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    klass = _class(request, pk)
    teacher = _own_teacher(request)
    mine = klass.enrolments.filter(teacher=teacher).first() if teacher else None
    if mine is None:
        raise Http404
    _run(request, lambda: training.withdraw(_actor(request), mine.pk), _("已退出该班级"))
    return redirect("training-class", pk=klass.pk)


def _when(text: str) -> dt.datetime | None:
    value = parse_datetime(text.strip()) if text else None
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


@login_required
@require_POST
def session_add(request: HttpRequest, pk: int) -> HttpResponse:
    klass = _class(request, pk)
    starts, ends = _when(request.POST.get("starts_at", "")), _when(request.POST.get("ends_at", ""))
    if starts is None or ends is None:
        messages.error(request, _("请填写开始和结束时间"))
    else:
        _run(request, lambda: training.add_session(_actor(request), klass.pk, request.POST.get("title", ""), starts,
                                                   ends, request.POST.get("hours", ""),
                                                   request.POST.get("materials_url", "").strip()), _("已添加课次"))
    return redirect("training-class", pk=klass.pk)


@login_required
@require_POST
def class_results(request: HttpRequest, pk: int) -> HttpResponse:
    klass = _class(request, pk)
    results = {int(k.removeprefix("result-")): str(v) for k, v in request.POST.items()
               if k.startswith("result-") and k.removeprefix("result-").isdigit()}
    _run(request, lambda: training.enter_results(_actor(request), klass.pk, results), _("已保存考核结果"))
    return redirect("training-class", pk=klass.pk)


@login_required
@require_POST
def class_close(request: HttpRequest, pk: int) -> HttpResponse:
    klass = _class(request, pk)
    _run(request, lambda: training.close_class(_actor(request), klass.pk), _("已结班，学员学分已登记"))
    return redirect("training-class", pk=klass.pk)


@login_required
@require_POST
def class_survey(request: HttpRequest, pk: int) -> HttpResponse:
    klass = _class(request, pk)
    teacher = _own_teacher(request)
    mine = klass.enrolments.filter(teacher=teacher).first() if teacher else None
    if mine is None:
        raise Http404
    ratings = {item: request.POST.get(f"rating-{i}", "") for i, item in enumerate(training.SURVEY_ITEMS)}
    _run(request, lambda: training.submit_survey(_actor(request), mine.pk, ratings, request.POST.get("comment", "")),
         _("感谢您的评估"))
    return redirect("training-class", pk=klass.pk)


@login_required
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(ClassSession.objects.select_related("klass"), pk=pk)
    klass = _class(request, session.klass_id)
    if not perm.can_manage_class(request.user, klass):
        raise Http404
    url = request.build_absolute_uri(reverse("training-sign", args=[training.signin_token(session)]))
    present = set(session.attendance.values_list("teacher_id", flat=True))
    opens, closes = training.signin_window(session)
    return render(request, "xuefen/training_session.html", {
        "session": session, "klass": klass, "url": url, "qr": qr_svg(url), "opens": opens, "closes": closes,
        "enrolments": list(klass.enrolments.filter(state=Enrolment.State.ENROLLED).select_related("teacher")),
        "present": present,
    })


@login_required
@require_POST
def session_tick(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(ClassSession, pk=pk)
    _class(request, session.klass_id)
    ids = [int(x) for x in request.POST.getlist("present") if x.isdigit()]
    _run(request, lambda: training.tick_attendance(_actor(request), session.pk, ids), _("已保存考勤"))
    return redirect("training-session", pk=session.pk)


@login_required
@require_http_methods(["GET", "POST"])
def sign(request: HttpRequest, token: str) -> HttpResponse:
    """扫码签到: the QR opens this page on the teacher's phone; she confirms
    with one button (a GET never changes anything)."""
    teacher = _own_teacher(request)
    error, done = "", False
    try:
        session = training.session_from_token(token)
    except ServiceError as exc:
        return render(request, "xuefen/training_sign.html", {"error": str(exc)}, status=400)
    if teacher is None:
        error = _("请使用教师账号登录后签到")
    elif request.method == "POST":
        try:
            training.sign_in(_actor(request), token, teacher)
        except ServiceError as exc:
            error = str(exc)
        else:
            done = True
    else:
        done = session.attendance.filter(teacher=teacher).exists()
    return render(request, "xuefen/training_sign.html", {
        "session": session, "klass": session.klass, "project": session.klass.course.project, "error": error,
        "done": done, "teacher": teacher,
    }, status=400 if error and request.method == "POST" else 200)


@login_required
def mine(request: HttpRequest) -> HttpResponse:
    teacher = _own_teacher(request)
    if teacher is None:
        raise Http404
    enrolments = list(teacher.enrolments.exclude(state=Enrolment.State.WITHDRAWN)
                      .select_related("klass__course__project", "record").order_by("-id"))
    return render(request, "xuefen/training_mine.html", {
        "teacher": teacher, "enrolments": enrolments, "offers": training.what_to_take(teacher),
    })
