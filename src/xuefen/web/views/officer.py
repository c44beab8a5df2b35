"""Officer pages: completion by unit with drill-down 市→区→(学区)→校→教师,
teachers at risk this year, review queues with filters, the school's 公示
list and the unit's XLSX export.

Figures are the engine's stored per-teacher verdicts (TeacherResult, kept
current by the services), counted per unit in its tally (UnitTally, kept
current with them); the views show counts of teachers, never sums of credits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from xuefen.engine.core import EARLY, FAILED, IN_PROGRESS, PASSED
from xuefen.web import permissions as perm
from xuefen.web.models import Org, OrgKind, Profile, Record, Status, Teacher, TeacherResult
from xuefen.web.services import tallies
from xuefen.web.services.evaluation import Policies
from xuefen.web.services.tallies import COMPLETED
from xuefen.web.views.common import show_full_ids
from xuefen.web.views.teacher import _year_groups, teacher_summary

AT_RISK_SHOWN = 20


def _officer(request: HttpRequest) -> Profile:
    p = perm.profile(request.user)
    if p is None or not perm.is_officer(request.user):
        raise Http404
    return p


def _counts(user: Any, node: Org) -> dict[str, int]:
    """The unit's figures for this user: its stored tally when she sees all
    of its teachers, else counted over the teachers she may see."""
    if perm.sees_every_teacher_under(user, node):
        figures = tallies.stored([node])[node.pk]
    else:
        figures = tallies.figures(Teacher.objects.for_user(user).filter(school__path__startswith=node.path))
    return _shaped(figures)


def _shaped(figures: tallies.Figures) -> dict[str, int]:
    return {"n": figures["teachers"], **{k: v for k, v in figures.items() if k != "teachers"}}


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def unit_rows(node: Org) -> list[dict[str, Any]]:
    """Completion for each child unit of ``node``, from the units' tallies:
    how many teachers have passed the cycle, are still in progress (the
    cycle is not over and nothing is lost yet) or have failed, and how many
    of those checked this year have met this year's minimums."""
    rows = []
    order: dict[str, int] = {OrgKind.DISTRICT: 0, OrgKind.ZONE: 1, OrgKind.SCHOOL: 2}
    children = sorted(node.children.exclude(kind=OrgKind.INSTITUTION), key=lambda o: (order.get(o.kind, 3), o.name))
    stored = tallies.stored(children)
    for child in children:
        c = _shaped(stored[child.pk])
        rows.append({"org": child, "teachers": c["n"], **c, "year_rate": _share(c["year_passed"], c["year_checked"]),
                     "pass_rate": _share(c["passed"], c["n"])})
    return rows


def thresholds(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each school row's policy floor, by org id (schools whose policy sets none are left out)."""
    policies = Policies()
    found = {r["org"].pk: school_threshold(policies, r["org"], r) for r in rows}
    return {pk: th for pk, th in found.items() if th is not None}


def school_threshold(policies: Policies, org: Org, counts: dict[str, int]) -> dict[str, Any] | None:
    """The pass-rate floor the school's policy sets on it (潍坊 第四篇第十九条: 98%
    学分合格率), or None where no policy sets one.

    Compared with the cycle's 合格率 (达标 among the evaluated teachers) once
    no teacher's cycle is still in progress; before that with this year's
    rate where the policy checks years (the figure of the moment — mid-cycle
    hardly anyone has passed the cycle yet, which would flag every school);
    otherwise not judged until the cycle ends."""
    if org.kind != OrgKind.SCHOOL:
        return None
    chosen = policies.for_school(org)
    floors = [t for t in chosen[0].unit_thresholds if t.scope == "school"] if chosen else []
    if not floors:
        return None
    floor = floors[0]
    cite = floor.cite[0] if isinstance(floor.cite, list) else floor.cite
    percent = float(floor.min_pass_rate * 100)
    evaluated = counts["n"] - counts["unevaluated"]
    if evaluated and not counts["in_progress"]:
        rate, basis = _share(counts["passed"], evaluated), _("周期合格率")
    elif counts["year_checked"]:
        rate, basis = _share(counts["year_passed"], counts["year_checked"]), _("本年达标率")
    else:
        rate, basis = None, ""
    return {"label": floor.label, "percent": f"{percent:g}", "rate": rate, "basis": basis,
            "below": rate is not None and rate < percent,
            "cite": f"{chosen[0].short_name if chosen else ''}{cite.section or ''}{cite.article}"}


def _chart(rows: list[dict[str, Any]], floors: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        "names": [r["org"].name for r in rows],
        "urls": [reverse("dashboard-org", args=[r["org"].pk]) for r in rows],
        "series": [
            {"key": "passed", "name": _("达标"), "data": [r["passed"] for r in rows]},
            {"key": "in_progress", "name": _("进行中"), "data": [r["in_progress"] for r in rows]},
            {"key": "failed", "name": _("未达标"), "data": [r["failed"] for r in rows]},
            {"key": "unevaluated", "name": _("未评估"), "data": [r["unevaluated"] for r in rows]},
        ],
        "year_rates": [r["year_rate"] for r in rows],
        "floors": [float(floors[r["org"].pk]["percent"]) if r["org"].pk in floors else None for r in rows],
        "rate_label": _("本年达标率（%）"), "floor_label": _("政策要求"),
        "year_label": _("本年已达标"),
        "teachers_label": _("教师"),
    }


def _year_shortfall(result: TeacherResult, year: int) -> Decimal:
    value = ((result.data.get("years") or {}).get(str(year)) or {}).get("shortfall")
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _stored_shortfall(year: int) -> RawSQL:
    """data["years"][str(year)]["shortfall"] of a stored result, as text.  Not
    Django's KT(): it reads a key of digits as an array index."""
    table = connection.ops.quote_name(TeacherResult._meta.db_table)
    if connection.vendor == "postgresql":
        return RawSQL(f"({table}.data -> 'years' -> %s ->> 'shortfall')", (str(year),))  # noqa: S611 - constant SQL
    return RawSQL(f"json_extract({table}.data, %s)", (f'$.years."{year}".shortfall',))  # noqa: S611


def at_risk(node: Org, year: int) -> tuple[list[TeacherResult], int]:
    """Teachers under ``node`` who have not met this year's minimums (or have
    failed the cycle), the largest shortfall first."""
    qs = (TeacherResult.objects.filter(teacher__school__path__startswith=node.path)
          .filter(Q(year_passed=False) | Q(status=FAILED)).select_related("teacher__school"))
    total = qs.count()
    # Only the one figure of each stored evaluation, read in the database: decoding
    # every teacher's whole evaluation was most of a district dashboard's time
    # (issue 19's load goal).
    results: list[TeacherResult] = list(qs.defer("data").annotate(shortfall_text=_stored_shortfall(year))
                                        .order_by("year_total")[:2000])
    for r in results:
        text = getattr(r, "shortfall_text", None)
        r.year_shortfall = Decimal(str(text)) if text not in (None, "") else Decimal(0)  # type: ignore[attr-defined]
    results.sort(key=lambda r: (r.status != FAILED, -r.year_shortfall, r.teacher.teacher_no))  # type: ignore[attr-defined]
    return results[:AT_RISK_SHOWN], total


def _node(request: HttpRequest, p: Profile, pk: int | None) -> Org:
    assert p.org is not None
    if pk is None:
        return p.org
    return get_object_or_404(Org.objects.filter(perm.org_scope(request.user)), pk=pk)


def _school_teachers(request: HttpRequest, node: Org) -> QuerySet[Teacher]:
    return (Teacher.objects.for_user(request.user).filter(school__path__startswith=node.path)
            .select_related("result", "school").order_by("teacher_no"))


@login_required
def dashboard(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    p = _officer(request)
    assert p.org is not None
    node = _node(request, p, pk)
    today = timezone.localdate()
    year = today.year
    breadcrumb = [a for a in node.ancestors() if a.path.startswith(p.org.path)]
    totals = _counts(request.user, node)
    teachers: list[Teacher] | None = None
    status_filter = request.GET.get("status", "")
    if node.kind == OrgKind.SCHOOL:
        qs = _school_teachers(request, node)
        if status_filter == PASSED:  # as the 达标 figure counts them: ahead of time too
            qs = qs.filter(result__status__in=COMPLETED)
        elif status_filter in (EARLY, IN_PROGRESS, FAILED):
            qs = qs.filter(result__status=status_filter)
        elif status_filter == "year":
            qs = qs.filter(result__year_passed=False)
        teachers = list(qs)
        for t in teachers:
            result = getattr(t, "result", None)
            t.year_shortfall = _year_shortfall(result, year) if result else None  # type: ignore[attr-defined]
    risk, risk_total = at_risk(node, year)
    pending = Record.objects.for_user(request.user).filter(teacher__school__path__startswith=node.path)
    queue = {row["status"]: row["n"] for row in pending.filter(
        status__in=(Status.PENDING, Status.SCHOOL_APPROVED, Status.DISTRICT_APPROVED, Status.RETURNED))
        .values("status").annotate(n=Count("id"))}
    rows = unit_rows(node) if node.kind != OrgKind.SCHOOL else []
    own_threshold = school_threshold(Policies(), node, totals)
    floors = thresholds(rows)
    return render(request, "xuefen/dashboard.html", {
        "own_threshold": own_threshold, "thresholds": floors,
        "below_floor": [(r["org"], floors[r["org"].pk]) for r in rows if floors.get(r["org"].pk, {}).get("below")],
        "node": node, "breadcrumb": breadcrumb, "rows": rows, "teachers": teachers, "at_risk": risk,
        "at_risk_total": risk_total, "queue": queue, "chart": _chart(rows, floors), "totals": totals, "year": year,
        "today": today, "year_rate": _share(totals["year_passed"], totals["year_checked"]),
        "status_filter": status_filter, "show_full_id": show_full_ids(request, teachers, request.path),
        "can_review": perm.queue_state(request.user) is not None, "is_school": node.kind == OrgKind.SCHOOL,
    })


@login_required
def dashboard_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The unit's table and its teachers as XLSX (exports.unit_xlsx)."""
    from xuefen.web.exports import XLSX_TYPE, attachment_name, unit_xlsx

    p = _officer(request)
    node = _node(request, p, pk)
    year = timezone.localdate().year
    rows = unit_rows(node) if node.kind != OrgKind.SCHOOL else []
    listed = list(_school_teachers(request, node))
    content = unit_xlsx(node.name, rows, listed, year, full_id=show_full_ids(request, listed, request.path))
    response = HttpResponse(content, content_type=XLSX_TYPE)
    response["Content-Disposition"] = attachment_name(f"达标情况-{node.name}.xlsx")
    return response


@login_required
def publicity(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """公示 (永吉：校长审核、公示): the school's credits, teacher by teacher and
    category by category, as the engine last evaluated them.  Read-only,
    printable; the principal signs the printed list."""
    p = _officer(request)
    assert p.org is not None
    node = _node(request, p, pk)
    if node.kind != OrgKind.SCHOOL:
        schools = Org.objects.filter(perm.org_scope(request.user), kind=OrgKind.SCHOOL).order_by("path")
        return render(request, "xuefen/publicity.html", {"node": node, "schools": schools})
    teachers = list(_school_teachers(request, node))
    categories: list[str] = []
    results: list[tuple[Teacher, TeacherResult | None]] = [(t, getattr(t, "result", None)) for t in teachers]
    for _t, result in results:
        for name in (result.data if result else {}).get("categories", {}):
            if name not in categories:
                categories.append(name)
    rows: list[dict[str, Any]] = []
    for t, result in results:
        cats: dict[str, Any] = (result.data if result else {}).get("categories", {})
        rows.append({"teacher": t, "result": result,
                     "cells": [(cats.get(c) or {}).get("counted") for c in categories]})
    first = next((r for _t, r in results if r is not None), None)
    return render(request, "xuefen/publicity.html", {
        "node": node, "rows": rows, "categories": categories, "today": timezone.localdate(),
        "policy": (first.data.get("policy") or {}).get("name", "") if first else "",
        "cycle": (first.cycle_start, first.cycle_end) if first else None,
        "show_full_id": show_full_ids(request, teachers, request.path),
    })


@login_required
def teacher_detail(request: HttpRequest, pk: int) -> HttpResponse:
    teacher = get_object_or_404(Teacher.objects.for_user(request.user).select_related("school"), pk=pk)
    if perm.is_teacher(request.user):
        return redirect("teacher-home")
    # Institution staff see the records their institution imported, not the
    # teacher's other records, nor her verdict (permissions decides both).
    summary = teacher_summary(teacher) if perm.can_view_results(request.user, teacher) else {"evaluation": None}
    records = list(Record.objects.for_user(request.user).filter(teacher=teacher).order_by("-year", "uid"))
    p = perm.profile(request.user)
    breadcrumb = [a for a in teacher.school.ancestors() if p and p.org and a.path.startswith(p.org.path)]
    return render(request, "xuefen/teacher_detail.html", {
        "teacher": teacher, "records": records, "year_groups": _year_groups(records, summary), **summary,
        "show_full_id": show_full_ids(request, teacher, request.path), "breadcrumb": breadcrumb,
    })
