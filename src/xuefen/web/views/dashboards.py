"""The at-risk list in full: paginated and exported (issue 16 item 6).  The
dashboard shows its first rows; this is every teacher under the unit who has
not met this year's minimums or has failed the cycle."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from xuefen.engine.core import FAILED
from xuefen.web import permissions as perm
from xuefen.web.models import Org, Teacher, TeacherResult
from xuefen.web.services import audit
from xuefen.web.views.common import client_ip, show_full_ids
from xuefen.web.views.officer import _node, _officer, _year_shortfall

PER_PAGE = 50


def at_risk_results(user: object, node: Org) -> QuerySet[TeacherResult]:
    """Failed cycles first, then the lowest credits this year (the database
    orders; the shortfall itself is read from each result for display)."""
    teachers = Teacher.objects.for_user(user).filter(school__path__startswith=node.path).values("pk")
    return (TeacherResult.objects.filter(teacher__in=teachers)
            .filter(Q(year_passed=False) | Q(status=FAILED)).select_related("teacher__school")
            .annotate(failed_first=Case(When(status=FAILED, then=Value(0)), default=Value(1),
                                        output_field=IntegerField()))
            .order_by("failed_first", "year_total", "teacher__teacher_no"))


@login_required
def at_risk(request: HttpRequest, pk: int) -> HttpResponse:
    p = _officer(request)
    node = _node(request, p, pk)
    year = timezone.localdate().year
    page = Paginator(at_risk_results(request.user, node), PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page)
    for r in rows:
        r.year_shortfall = _year_shortfall(r, year)  # type: ignore[attr-defined]
    return render(request, "xuefen/at_risk.html", {"node": node, "page": page, "rows": rows, "year": year,
                                                    "show_full_id": show_full_ids(request, [r.teacher for r in rows],
                                                                                  request.path)})


@login_required
def at_risk_export(request: HttpRequest, pk: int) -> HttpResponse:
    from xuefen.web.exports import XLSX_TYPE, attachment_name, workbook

    p = _officer(request)
    node = _node(request, p, pk)
    year = timezone.localdate().year
    full = perm.sees_full_id_number(request.user)
    if full:  # PIPL: an export with the numbers in full is a view of them, recorded with whose
        audit.id_numbers_shown(request.user, list(at_risk_results(request.user, node).values_list("teacher_id", flat=True)),
                               request.path, ip=client_ip(request))
    headers = ["教师编号", "姓名", "身份证号", "学校", "周期结论", f"{year}年计入学分", "本年尚缺"]
    rows = ([r.teacher.teacher_no, r.teacher.name, r.teacher.id_number if full else r.teacher.masked_id,
             r.teacher.school.name, r.status, r.year_total, _year_shortfall(r, year)]
            for r in at_risk_results(request.user, node).iterator(chunk_size=2000))
    content = workbook([("需要关注的教师", headers, rows)], {"教师编号", "身份证号"})
    response = HttpResponse(content, content_type=XLSX_TYPE)
    response["Content-Disposition"] = attachment_name(f"需要关注的教师-{node.name}.xlsx")
    return response
