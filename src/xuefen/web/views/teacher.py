"""The teacher's pages: her credits against the requirement, each record with
its explanation, what she still needs, declarations, her e-account export."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from xuefen import vocab
from xuefen.engine.report import as_dict, plan
from xuefen.web import permissions as perm
from xuefen.web.models import Evidence, Record, Role, Teacher
from xuefen.web.services import ledger
from xuefen.web.services.evaluation import evaluate_teacher
from xuefen.web.views.common import client_ip

DECLARE_FIELDS = ["year", "title", "form", "level", "location", "hours", "days", "result", "role", "achievement",
                  "program", "category", "theme", "words", "certificate", "subject_related"]


def _own_teacher(request: HttpRequest) -> Teacher:
    if perm.role(request.user) != Role.TEACHER:
        raise Http404
    teacher = Teacher.objects.for_user(request.user).select_related("school").first()
    if teacher is None:
        raise Http404
    return teacher


def teacher_summary(teacher: Teacher) -> dict[str, Any]:
    """Everything the teacher home and the officer's teacher page show, from
    one engine evaluation."""
    ev = evaluate_teacher(teacher)
    if ev is None:
        return {"evaluation": None}
    data = as_dict(ev)
    year = str(ev.as_of.year)
    categories = [
        {"name": name, **values, "year": data["years"].get(year, {}).get("categories", {}).get(name)}
        for name, values in data["categories"].items()
    ]
    return {
        "evaluation": ev,
        "data": data,
        "categories": categories,
        "this_year": data["years"].get(year),
        "year": ev.as_of.year,
        "plan": plan(ev),
        "explanations": {r["id"]: r["explanation"] for r in data["records"]},
    }


@login_required
def home(request: HttpRequest) -> HttpResponse:
    teacher = _own_teacher(request)
    summary = teacher_summary(teacher)
    records = list(teacher.records.order_by("-year", "-created_at"))
    notifications = list(request.user.notifications.all()[:10])  # type: ignore[union-attr]
    request.user.notifications.filter(read=False).update(read=True)  # type: ignore[union-attr]
    return render(request, "xuefen/teacher_home.html", {
        "teacher": teacher, "records": records, "notifications": notifications, **summary,
    })


@login_required
@require_http_methods(["GET", "POST"])
def declare(request: HttpRequest) -> HttpResponse:
    teacher = _own_teacher(request)
    is_open, months = ledger.declaration_open(teacher)
    values: dict[str, Any] = {}
    error = ""
    if request.method == "POST":
        values = {k: request.POST.get(k, "").strip() for k in DECLARE_FIELDS}
        facts = {k: v for k, v in values.items() if v != ""}
        try:
            record = ledger.declare_record(ledger.Actor(request.user, client_ip(request)), teacher, facts,
                                           request.FILES.getlist("evidence"))
        except ledger.ServiceError as exc:
            error = str(exc)
        else:
            messages.success(request, f"已提交申报“{record.title}”，预计 {record.credits} 学分，等待学校审核")
            return redirect("teacher-home")
    choices = {f: vocab.allowed(f) for f in ("form", "level", "location", "result", "role", "achievement", "program")}
    return render(request, "xuefen/declare.html", {
        "teacher": teacher, "values": values, "error": error, "choices": choices, "is_open": is_open,
        "months": months,
    }, status=400 if error else 200)


@login_required
def record_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(Record.objects.for_user(request.user).select_related("teacher__school"), pk=pk)
    return render(request, "xuefen/record_detail.html", {
        "record": record, "evidence": record.evidence.all(),
        "can": {a: perm.can_transition(request.user, record, a) for a in
                ("school_approve", "district_approve", "certify", "return", "revoke")},
        "show_full_id": perm.sees_full_id_number(request.user),
    })


@login_required
def evidence_file(request: HttpRequest, pk: int) -> FileResponse:
    ev = get_object_or_404(Evidence, pk=pk)
    if not Record.objects.for_user(request.user).filter(pk=ev.record_id).exists():
        raise Http404
    response = FileResponse(ev.file.open("rb"), content_type=ev.content_type)
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
def export_account(request: HttpRequest) -> HttpResponse:
    """山东 第三篇（十二）: the personal e-account, exported."""
    from xuefen.web.exports import teacher_account_xlsx

    teacher = _own_teacher(request)
    content = teacher_account_xlsx(teacher, teacher_summary(teacher), full_id=False)
    response = HttpResponse(content, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''xuefen-{teacher.teacher_no}.xlsx"
    return response
