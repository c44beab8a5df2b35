"""Office pages: 抽检, 更正, 录入校本研修学分 (issue 16 item 2).  Each view
parses, calls one service (services.spotcheck, ledger.correct_record,
services.schoolcredits), renders."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from xuefen import vocab
from xuefen.web import permissions as perm
from xuefen.web.models import Org, Record, Source, SpotCheck, SpotCheckItem, Teacher
from xuefen.web.services import ledger, schoolcredits, spotcheck
from xuefen.web.services.base import Actor, Denied, ServiceError
from xuefen.web.views.common import client_ip
from xuefen.web.views.teacher import CHOICE_FIELDS, DECLARE_FIELDS, _record_values

# --- 抽检 -----------------------------------------------------------------------------------


def _district(request: HttpRequest) -> Org:
    p = perm.profile(request.user)
    if p is None or p.org is None or not perm.can_spot_check(request.user, p.org):
        raise Http404
    return p.org


@login_required
@require_http_methods(["GET", "POST"])
def spot_checks(request: HttpRequest) -> HttpResponse:
    district = _district(request)
    values = {k: request.POST.get(k, "").strip() for k in ("year", "source", "category", "size", "seed")}
    if request.method == "POST":
        try:
            size = int(values["size"]) if values["size"].isdigit() else 0
            seed = int(values["seed"]) if values["seed"].isdigit() else None
            check = spotcheck.draw(Actor(request.user, client_ip(request)), district, size, seed,
                                   values["year"], values["source"], values["category"])
        except ServiceError as exc:
            messages.error(request, str(exc))
        else:
            return redirect("spot-check", check.pk)
    checks = SpotCheck.objects.filter(org__path__startswith=district.path).select_related("actor")
    page = Paginator(checks, 20).get_page(request.GET.get("page"))
    scoped = Record.objects.for_user(request.user).order_by()
    return render(request, "xuefen/spot_checks.html", {
        "district": district, "page": page, "values": values, "sources": Source.choices,
        "years": list(scoped.values_list("year", flat=True).distinct().order_by("-year")),
        "categories": [c for c in scoped.values_list("credit_category", flat=True).distinct()
                       .order_by("credit_category") if c],
        "this_year": timezone.localdate().year,
    })


def _check(request: HttpRequest, pk: int) -> SpotCheck:
    check = get_object_or_404(SpotCheck.objects.select_related("org", "actor"), pk=pk)
    if not perm.can_spot_check(request.user, check.org):
        raise Http404
    return check


@login_required
def spot_check(request: HttpRequest, pk: int) -> HttpResponse:
    check = _check(request, pk)
    items = list(check.items.select_related("record__teacher__school", "checked_by"))
    done = sum(1 for i in items if i.result != SpotCheckItem.Result.OPEN)
    failed = sum(1 for i in items if i.result == SpotCheckItem.Result.FAILED)
    return render(request, "xuefen/spot_check.html", {"check": check, "items": items, "done": done,
                                                      "failed": failed, "results": SpotCheckItem.Result})


@login_required
@require_POST
def spot_check_result(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(SpotCheckItem.objects.select_related("spot_check__org"), pk=pk)
    _check(request, item.spot_check_id)
    try:
        spotcheck.record_result(Actor(request.user, client_ip(request)), item.pk, request.POST.get("result", ""),
                                request.POST.get("note", ""), revoke=request.POST.get("revoke") == "1")
    except Denied:
        raise Http404 from None
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已记录核查结果"))
    return redirect("spot-check", item.spot_check_id)


# --- 更正 -----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def correct(request: HttpRequest, pk: int) -> HttpResponse:
    """An officer corrects a record's facts with a reason; the old values stay
    in the audit history the record page shows."""
    record = get_object_or_404(Record.objects.for_user(request.user).select_related("teacher__school"), pk=pk)
    if "correct" not in perm.record_actions(request.user, record):
        raise Http404
    values: dict[str, Any] = _record_values(record)
    error = ""
    comment = ""
    if request.method == "POST":
        values = {k: request.POST.get(k, "").strip() for k in DECLARE_FIELDS}
        comment = request.POST.get("comment", "")
        version = request.POST.get("version", "")
        try:
            ledger.correct_record(Actor(request.user, client_ip(request)), record.pk, values, comment,
                                  int(version) if version.isdigit() else None)
        except Denied:
            raise Http404 from None
        except ServiceError as exc:
            error = str(exc)
        else:
            messages.success(request, _("已更正，原值保留在记录的历史中"))
            return redirect("record-detail", record.pk)
    return render(request, "xuefen/correct.html", {
        "record": record, "values": values, "error": error, "comment": comment,
        "choices": {f: vocab.allowed(f) for f in CHOICE_FIELDS},
    }, status=400 if error else 200)


# --- 录入校本研修学分 ------------------------------------------------------------------------

COMMON_FIELDS = ("year", "title", "form", "level", "result", "category", "theme")


@login_required
@require_http_methods(["GET", "POST"])
def school_credits(request: HttpRequest) -> HttpResponse:
    if not perm.can_enter_school_credits(request.user):
        raise Http404
    teachers = list(Teacher.objects.for_user(request.user).select_related("school").order_by("teacher_no"))
    common = {"year": str(timezone.localdate().year), "form": "校本", "result": "合格", "title": "", "level": "",
              "category": "", "theme": ""}
    hours: dict[int, str] = {}
    error = ""
    if request.method == "POST":
        common = {k: request.POST.get(k, "").strip() for k in COMMON_FIELDS}
        hours = {t.pk: request.POST.get(f"hours-{t.pk}", "") for t in teachers}
        try:
            made = schoolcredits.enter_for_teachers(Actor(request.user, client_ip(request)),
                                                    {k: v for k, v in common.items() if v}, hours)
        except ServiceError as exc:
            error = str(exc)
        else:
            messages.success(request, _("已为 %(n)s 名教师录入“%(title)s”") % {"n": len(made), "title": common["title"]})
            return redirect("school-credits")
    rows = [{"teacher": t, "hours": hours.get(t.pk, "")} for t in teachers]
    return render(request, "xuefen/school_credits.html", {
        "rows": rows, "common": common, "error": error, "choices": {f: vocab.allowed(f) for f in CHOICE_FIELDS},
    }, status=400 if error else 200)
