"""Officer pages: completion by unit with drill-down 市→区→校→教师, teachers
at risk, the review queue and its actions."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from xuefen.web import permissions as perm
from xuefen.web.models import Org, OrgKind, Profile, Record, Role, Status, Teacher, TeacherResult
from xuefen.web.services import ledger
from xuefen.web.views.common import client_ip
from xuefen.web.views.teacher import teacher_summary


def _officer(request: HttpRequest) -> Profile:
    p = perm.profile(request.user)
    if p is None or p.role not in perm.OFFICER_ROLES or p.org is None:
        raise Http404
    return p


def unit_rows(node: Org) -> list[dict[str, Any]]:
    """Completion for each child unit of ``node`` (or its teachers, for a
    school), from the stored per-teacher results."""
    rows = []
    for child in node.children.exclude(kind=OrgKind.INSTITUTION).order_by("name"):
        results = TeacherResult.objects.filter(teacher__school__path__startswith=child.path)
        agg = results.aggregate(n=Count("id"), passed=Count("id", filter=Q(passed=True)),
                                year_ok=Count("id", filter=Q(year_passed=True)))
        teachers = Teacher.objects.filter(school__path__startswith=child.path).count()
        rows.append({
            "org": child, "teachers": teachers, "evaluated": agg["n"], "passed": agg["passed"],
            "year_passed": agg["year_ok"],
            "rate": round(100 * agg["passed"] / teachers, 1) if teachers else None,
            "year_rate": round(100 * agg["year_ok"] / teachers, 1) if teachers else None,
        })
    return rows


@login_required
def dashboard(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    p = _officer(request)
    assert p.org is not None
    node = p.org if pk is None else get_object_or_404(Org.objects.filter(perm.org_scope(request.user)), pk=pk)
    breadcrumb = [a for a in node.ancestors() if a.path.startswith(p.org.path)]
    teachers = None
    if node.kind == OrgKind.SCHOOL:
        teachers = (Teacher.objects.for_user(request.user).filter(school=node)
                    .select_related("result").order_by("teacher_no"))
    at_risk = (TeacherResult.objects.filter(teacher__school__path__startswith=node.path, year_passed=False)
               .select_related("teacher__school").order_by("year_total")[:20])
    pending = Record.objects.for_user(request.user).filter(teacher__school__path__startswith=node.path)
    queue = {s: pending.filter(status=s).count() for s in (Status.PENDING, Status.SCHOOL_APPROVED,
                                                           Status.DISTRICT_APPROVED)}
    rows = unit_rows(node) if node.kind != OrgKind.SCHOOL else []
    chart = {"names": [r["org"].name for r in rows], "rates": [r["rate"] or 0 for r in rows],
             "year_rates": [r["year_rate"] or 0 for r in rows], "ids": [r["org"].pk for r in rows]}
    return render(request, "xuefen/dashboard.html", {
        "node": node, "breadcrumb": breadcrumb, "rows": rows, "teachers": teachers, "at_risk": at_risk,
        "queue": queue, "chart": chart,
    })


@login_required
def teacher_detail(request: HttpRequest, pk: int) -> HttpResponse:
    teacher = get_object_or_404(Teacher.objects.for_user(request.user).select_related("school"), pk=pk)
    if perm.role(request.user) == Role.TEACHER:
        return redirect("teacher-home")
    summary = teacher_summary(teacher)
    return render(request, "xuefen/teacher_detail.html", {
        "teacher": teacher, "records": teacher.records.order_by("-year", "uid"), **summary,
        "show_full_id": perm.sees_full_id_number(request.user),
    })


QUEUE_STATUS: dict[str, tuple[str, str]] = {
    Role.SCHOOL_OFFICER: (Status.PENDING, "school_approve"),
    Role.DISTRICT_OFFICE: (Status.SCHOOL_APPROVED, "district_approve"),
    Role.CITY_CENTER: (Status.DISTRICT_APPROVED, "certify"),
}


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    p = _officer(request)
    if p.role not in QUEUE_STATUS:
        raise Http404
    status, action = QUEUE_STATUS[p.role]
    records = (Record.objects.for_user(request.user).filter(status=status)
               .select_related("teacher__school").order_by("created_at"))
    q = request.GET.get("q", "").strip()
    if q:
        records = records.filter(Q(teacher__name__contains=q) | Q(teacher__teacher_no=q) | Q(title__contains=q))
    year = request.GET.get("year", "").strip()
    if year.isdigit():
        records = records.filter(year=int(year))
    return render(request, "xuefen/review_queue.html", {
        "records": records[:200], "count": records.count(), "action": action, "q": q, "year": year,
    })


@login_required
@require_POST
def review_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    actor = ledger.Actor(request.user, client_ip(request))
    version = request.POST.get("version")
    expected = int(version) if version and version.isdigit() else None
    comment = request.POST.get("comment", "")
    try:
        if action in perm.TRANSITIONS:
            ledger.transition(actor, pk, action, expected, comment)
        elif action == "return":
            ledger.return_record(actor, pk, comment, expected)
        elif action == "revoke":
            ledger.revoke_record(actor, pk, comment, expected)
        else:
            raise Http404
    except Record.DoesNotExist:
        raise Http404 from None
    except ledger.Denied:
        raise Http404 from None
    except ledger.ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "已处理")
    return redirect(request.POST.get("next") or "review-queue")
