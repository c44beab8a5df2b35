"""The teacher's pages: her credits against the requirement, each record with
its explanation, what she still needs, declarations, her e-account export.

Every figure comes from one engine evaluation (services.evaluation); the
views only arrange the engine's numbers, they never add credits up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from xuefen import vocab
from xuefen.engine.evaluate import ScopeResult
from xuefen.engine.report import as_dict, category_required, plan, shown_themes
from xuefen.numbers import ZERO, fmt
from xuefen.web import permissions as perm
from xuefen.web import wording
from xuefen.web.models import AuditEntry, Evidence, Record, Source, Status, Teacher
from xuefen.web.services import accounts, declarations, ledger, training
from xuefen.web.services.declarations import NeedsConfirmation
from xuefen.web.services.evaluation import evaluate_teacher
from xuefen.web.views.common import client_ip, show_full_ids

DECLARE_FIELDS = ["year", "title", "form", "level", "location", "hours", "days", "result", "role", "achievement",
                  "program", "category", "theme", "words", "certificate", "subject_related"]
CHOICE_FIELDS = ("form", "level", "location", "result", "role", "achievement", "program")


def _own_teacher(request: HttpRequest) -> Teacher:
    if not perm.is_teacher(request.user):
        raise Http404
    teacher = Teacher.objects.for_user(request.user).select_related("school").first()
    if teacher is None:
        raise Http404
    return teacher


def _percent(part: Decimal | None, whole: Decimal | None) -> int:
    """Width of a progress bar, 0–100 (display only, not a credit figure)."""
    if part is None or not whole:
        return 0
    return max(0, min(100, int(part * 100 / whole)))


def _requirements(sc: ScopeResult | None) -> list[dict[str, Any]]:
    """The scope's minimums exactly as the engine checked them."""
    if sc is None or not sc.required:
        return []
    return [
        {"label": r.rule.label, "measure": r.rule.measure, "min": r.min, "actual": r.actual, "met": r.met,
         "missing": r.missing, "pct": _percent(r.actual, r.min)}
        for r in sc.requirements
    ]


def _theme_rows(category: str, themes: dict[str, dict[str, Any]], whole: dict[str, Any]) -> list[dict[str, Any]]:
    """The category's theme lines as the text report shows them
    (``report.shown_themes``), each with the caps that cut it."""
    rows = []
    for name, fig in shown_themes(category, themes, (whole.get("earned"), whole.get("counted"))).items():
        shortfall = max(ZERO, fig["required"] - fig["counted"]) if fig["required"] is not None else None
        rows.append({"name": name, **fig, "cut": [c for c in fig["caps"] if c["cut"]], "shortfall": shortfall})
    return rows


def teacher_summary(teacher: Teacher) -> dict[str, Any]:
    """Everything the teacher home and the officer's teacher page show, from
    one engine evaluation."""
    ev = evaluate_teacher(teacher)
    if ev is None:
        return {"evaluation": None}
    data = as_dict(ev)
    year = ev.as_of.year
    year_sc = ev.years.get(year)
    year_data = data["years"].get(str(year))
    categories = []
    for name, values in data["categories"].items():
        year_required = category_required(year_sc, name) if year_sc is not None and year_sc.required else None
        year_counted = (year_data or {}).get("categories", {}).get(name)
        categories.append({
            "name": name, **values, "year": year_counted, "year_required": year_required,
            "pct": _percent(values["counted"], values["required"]),
            "year_pct": _percent(year_counted, year_required),
            "themes": _theme_rows(name, data["themes"].get(name, {}), values),
        })
    the_plan = plan(ev)
    return {
        "evaluation": ev,
        "data": data,
        "categories": categories,
        "this_year": year_data,
        "year": year,
        "year_requirements": _requirements(year_sc),
        "cycle_requirements": _requirements(ev.cycle),
        "plan": the_plan,
        # This year's gaps first: they are the urgent ones.
        "needs": [_need_text(n) for n in sorted(the_plan["needs"], key=lambda n: n["year"] is None)],
        "explanations": {r["id"]: r["explanation"] for r in data["records"]},
        "counted_ids": {r["id"] for r in data["records"] if r["counted_in_cycle"]},
        "record_notes": wording.record_notes(ev),
        "scope_notes": wording.scope_notes(ev, year),
    }


def _unit(measure: str) -> str:
    return {"hours": _("学时"), "count": _("次")}.get(measure, _("学分"))


def _need_text(need: dict[str, Any]) -> dict[str, Any]:
    """One line of the engine's plan in plain words, with up to three ways to
    close the gap (each way's hours or items as the engine worked them out)."""
    if need["year"]:
        when = _("%(year)s 年还需") % {"year": need["year"]}
    else:
        when = _("本周期还需")
    ways = []
    for w in need["ways"][:3]:
        if "whole_hours" in w:
            ways.append(_("参加“%(label)s”约 %(hours)s 学时") % {"label": w["label"], "hours": w["whole_hours"]})
        elif "items" in w:
            ways.append(_("完成“%(label)s” %(items)s 项") % {"label": w["label"], "items": w["items"]})
    return {"when": when, "amount": fmt(need["missing"]), "unit": _unit(need["measure"]), "label": need["label"],
            "cite": need["cite"], "ways": ways, "more_ways": max(0, len(need["ways"]) - 3)}


def _year_groups(records: list[Record], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Records by year, newest first, each year with the engine's total."""
    years = (summary.get("data") or {}).get("years", {})
    explanations = summary.get("explanations", {})
    notes = summary.get("record_notes", {})
    groups: dict[int, list[Record]] = {}
    for r in records:
        r.engine_explanation = explanations.get(r.uid, r.explanation)  # type: ignore[attr-defined]
        # Only a counting record's figures are the engine's; a pending one is not in them yet.
        r.notes = notes.get(r.uid, []) if r.status in perm.COUNTING else []  # type: ignore[attr-defined]
        groups.setdefault(r.year, []).append(r)
    return [{"year": y, "records": rs, "scope": years.get(str(y))} for y, rs in sorted(groups.items(), reverse=True)]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    teacher = _own_teacher(request)
    summary = teacher_summary(teacher)
    records = list(teacher.records.order_by("-year", "-created_at"))
    declarations = [r for r in records if r.source == Source.DECLARATION and r.status != Status.CERTIFIED]
    notifications = list(request.user.notifications.all()[:8])  # type: ignore[union-attr]
    accounts.mark_notifications_read(ledger.Actor(request.user, client_ip(request)))
    return render(request, "xuefen/teacher_home.html", {
        "teacher": teacher, "records": records, "year_groups": _year_groups(records, summary),
        "declarations": declarations, "returned": [r for r in declarations if r.status == Status.RETURNED],
        "notifications": notifications, "offers": training.what_to_take(teacher) if summary["evaluation"] else [],
        **summary,
    })


def _form_context(teacher: Teacher, values: dict[str, Any], error: str,
                  warnings: list[str] | None = None) -> dict[str, Any]:
    is_open, months = ledger.declaration_open(teacher)
    return {"teacher": teacher, "values": values, "error": error, "is_open": is_open, "months": months,
            "choices": {f: vocab.allowed(f) for f in CHOICE_FIELDS}, "warnings": warnings or []}


def _posted_facts(request: HttpRequest) -> tuple[dict[str, str], dict[str, str]]:
    values = {k: request.POST.get(k, "").strip() for k in DECLARE_FIELDS}
    return values, {k: v for k, v in values.items() if v != ""}


@login_required
@require_http_methods(["GET", "POST"])
def declare(request: HttpRequest) -> HttpResponse:
    teacher = _own_teacher(request)
    values: dict[str, Any] = {"year": str(timezone.localdate().year)}
    error = ""
    warnings: list[str] = []
    if request.method == "POST":
        values, facts = _posted_facts(request)
        try:
            record = ledger.declare_record(ledger.Actor(request.user, client_ip(request)), teacher, facts,
                                           request.FILES.getlist("evidence"), warn=not request.POST.get("confirm"))
        except NeedsConfirmation as exc:
            warnings = exc.warnings
        except ledger.ServiceError as exc:
            error = str(exc)
        else:
            messages.success(request, _("已提交申报“%(title)s”，预计 %(credits)s 学分，等待学校审核")
                             % {"title": record.title, "credits": fmt(record.credits)})
            return redirect("teacher-home")
    return render(request, "xuefen/declare.html", _form_context(teacher, values, error, warnings),
                  status=400 if error else 200)


def _record_values(record: Record) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in DECLARE_FIELDS:
        value = getattr(record, name)
        if value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "是" if value else "否"
        elif isinstance(value, Decimal):
            out[name] = fmt(value)
        else:
            out[name] = str(value)
    return out


@login_required
@require_http_methods(["GET", "POST"])
def resubmit(request: HttpRequest, pk: int) -> HttpResponse:
    """Fix a returned declaration and send it again (ledger.resubmit_record)."""
    teacher = _own_teacher(request)
    record = get_object_or_404(teacher.records.all(), pk=pk)
    if record.status != Status.RETURNED:
        messages.error(request, _("只有被退回的申报可以修改后重新提交"))
        return redirect("record-detail", pk=record.pk)
    values: dict[str, Any] = _record_values(record)
    error = ""
    warnings: list[str] = []
    if request.method == "POST":
        values, facts = _posted_facts(request)
        try:
            record = ledger.resubmit_record(ledger.Actor(request.user, client_ip(request)), record.pk, facts,
                                            request.FILES.getlist("evidence"), warn=not request.POST.get("confirm"))
        except NeedsConfirmation as exc:
            warnings = exc.warnings
        except ledger.ServiceError as exc:
            error = str(exc)
        else:
            messages.success(request, _("已重新提交“%(title)s”，预计 %(credits)s 学分，等待学校审核")
                             % {"title": record.title, "credits": fmt(record.credits)})
            return redirect("teacher-home")
    context = _form_context(teacher, values, error, warnings)
    context.update(record=record, evidence=record.evidence.all())
    return render(request, "xuefen/declare.html", context, status=400 if error else 200)


def _history(request: HttpRequest, record: Record) -> list[dict[str, Any]]:
    """The record's audit entries, oldest first, each with what it changed: a
    correction keeps the old values here (the record itself holds the new)."""
    from xuefen.web.views.audit import ACTION_LABELS, _operator, diff

    entries = AuditEntry.objects.filter(object_type="Record", object_id=str(record.pk)).select_related("actor")
    full = perm.sees_full_id_number(request.user)
    return [{"entry": e, "label": ACTION_LABELS.get(e.action, e.action), "operator": _operator(e),
             "diff": [d for d in diff(e, full) if d["key"] not in ("version", "uid")] if e.before else []}
            for e in entries.order_by("at", "id")]


@login_required
def record_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(Record.objects.for_user(request.user).select_related("teacher__school"), pk=pk)
    allowed = perm.record_actions(request.user, record)
    ev = evaluate_teacher(record.teacher) if perm.can_view_results(request.user, record.teacher) else None
    notes = wording.record_notes(ev).get(record.uid, []) if ev is not None and record.status in perm.COUNTING else []
    is_owner = perm.is_teacher(request.user) and record.teacher.user_id == request.user.pk
    return render(request, "xuefen/record_detail.html", {
        "record": record, "evidence": record.evidence.all(), "notes": notes,
        "duplicates": declarations.duplicate_notes([record]).get(record.pk, []) if not is_owner else [],
        "history": _history(request, record),
        "can": {a: a in allowed for a in ("school_approve", "district_approve", "certify", "return", "revoke")},
        "can_correct": "correct" in allowed,
        "show_full_id": show_full_ids(request, record.teacher, request.path),
        "can_resubmit": is_owner and record.status == Status.RETURNED,
        "is_owner": is_owner,
        "training_project": training.source_project(record, request.user),
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
    from xuefen.web.exports import XLSX_TYPE, attachment_name, teacher_account_xlsx

    teacher = _own_teacher(request)
    content = teacher_account_xlsx(teacher, teacher_summary(teacher), full_id=False)
    response = HttpResponse(content, content_type=XLSX_TYPE)
    response["Content-Disposition"] = attachment_name(f"xuefen-{teacher.teacher_no}.xlsx")
    return response
