"""Annual close pages (年度登记): the school's year step by step, its 公示
list with objections, the district's table of schools (late ones marked),
the district's settings; certificates, the 学分证明, the 登记手册 and the public
verification page.  Views parse, call services.annual / services.certificates,
render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from xuefen.web import pdfs
from xuefen.web import permissions as perm
from xuefen.web.models import AnnualClose, AuditEntry, Certificate, Org, OrgKind, Record, Role, Teacher
from xuefen.web.services import annual, certificates
from xuefen.web.services.ledger import Actor, Denied, ServiceError
from xuefen.web.views.common import client_ip


def _actor(request: HttpRequest) -> Actor:
    return Actor(request.user, client_ip(request))


def _default_year() -> int:
    return timezone.localdate().year - 1


def _pdf(content: bytes, name: str) -> HttpResponse:
    from xuefen.web.exports import attachment_name

    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = attachment_name(name)
    return response


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """Where each role starts: a school's year, or the district's table."""
    p = perm.profile(request.user)
    if p is None or p.org is None:
        raise Http404
    year = int(request.GET["year"]) if request.GET.get("year", "").isdigit() else _default_year()
    if p.role == Role.TEACHER:
        return redirect("annual-school", pk=p.org.pk, year=year)
    if p.role in (Role.SCHOOL_OFFICER, Role.PRINCIPAL) and p.org.kind == OrgKind.SCHOOL:
        return redirect("annual-school", pk=p.org.pk, year=year)
    if p.role not in (Role.DISTRICT_OFFICE, Role.CITY_CENTER):
        raise Http404
    districts = (Org.objects.filter(perm.org_scope(request.user), kind=OrgKind.DISTRICT).order_by("path")
                 if p.org.kind != OrgKind.DISTRICT else [p.org])
    tables = [{"district": d, "rows": annual.school_rows(d, year),
               "publicity_days": annual.publicity_days(d), "due": annual.close_due(d, year),
               "can_set": perm.can_set_district(request.user, d)} for d in districts]
    return render(request, "xuefen/annual_index.html", {"tables": tables, "year": year,
                                                         "years": list(range(year + 1, year - 5, -1))})


STEP_LABELS = {"year_close": "登记", "year_sign": "校长签发，开始公示", "year_submit": "报送区县",
               "year_confirm": "区县确认", "year_return": "区县退回", "year_reopen": "区县重新开放"}


def _name(user: Any) -> str:
    return (user.get_full_name() or user.username) if user is not None else ""


@login_required
def school_year(request: HttpRequest, pk: int, year: int) -> HttpResponse:
    school = get_object_or_404(Org, pk=pk, kind=OrgKind.SCHOOL)
    if not perm.can_view_close(request.user, school):
        raise Http404
    close = annual.close_of(school, year)
    role = perm.role(request.user)
    rows: list[dict[str, Any]] = []
    categories: list[str] = []
    if close is not None:
        for entry in close.snapshot.values():
            for name in entry["categories"]:
                if name not in categories:
                    categories.append(name)
        for key, entry in sorted(close.snapshot.items(), key=lambda kv: kv[1]["teacher_no"]):
            rows.append({"id": int(key), **entry, "cells": [entry["categories"].get(c) for c in categories]})
    own: Teacher | None = None
    if role == Role.TEACHER:
        own = Teacher.objects.for_user(request.user).first()
        # a teacher sees the list only once it is public (from the principal's sign-off)
        if close is not None and close.state == AnnualClose.State.CLOSED:
            rows = []
    objections = list(close.objections.select_related("teacher")) if close else []
    if own is not None:
        objections = [o for o in objections if o.teacher_id == own.pk]
    today = timezone.localdate()
    certs_count = (Certificate.objects.filter(teacher__school=school, period_end=year, voided_at__isnull=True,
                                              kind__in=(Certificate.Kind.ANNUAL, Certificate.Kind.CYCLE)).count()
                   if close is not None and close.state == AnnualClose.State.CONFIRMED else 0)
    history = ([(e, STEP_LABELS.get(e.action, e.action)) for e in AuditEntry.objects.filter(
        object_type="AnnualClose", object_id=str(close.pk)).order_by("at", "id")] if close is not None else [])
    names = {step: _name(getattr(close, f"{step}_by", None)) for step in ("closed", "signed", "confirmed")}
    return render(request, "xuefen/annual_school.html", {
        "names": names, "school": school, "year": year, "close": close, "rows": rows, "categories": categories,
        "objections": objections, "own": own, "today": today, "certs_count": certs_count, "history": history,
        "can_close": perm.can_close_year(request.user, school), "can_sign": perm.can_sign_year(request.user, school),
        "can_confirm": perm.can_confirm_year(request.user, school),
        "publicity_open": close is not None and close.state == AnnualClose.State.PUBLICITY
        and close.publicity_end is not None and today <= close.publicity_end,
        "pending": Record.objects.filter(teacher__school=school, year=year, status="pending").count(),
        "publicity_days": annual.publicity_days(school), "due": annual.close_due(school, year),
        "years": list(range(today.year, today.year - 5, -1)),
    })


@login_required
@require_POST
def school_year_action(request: HttpRequest, pk: int, year: int, action: str) -> HttpResponse:
    school = get_object_or_404(Org, pk=pk, kind=OrgKind.SCHOOL)
    if not perm.can_view_close(request.user, school):
        raise Http404
    actor = _actor(request)
    close = annual.close_of(school, year)
    version = request.POST.get("version", "")
    expected = int(version) if version.isdigit() else None
    text = request.POST.get("reason", "")
    try:
        if action == "close":
            annual.close_year(actor, school.pk, year)
            messages.success(request, _("%(year)s 年度已登记，待校长签发") % {"year": year})
        elif close is None:
            raise Http404
        elif action == "sign":
            close = annual.sign_off(actor, close.pk, expected)
            messages.success(request, _("已签发，公示至 %(d)s") % {"d": close.publicity_end})
        elif action == "object":
            annual.file_objection(actor, close.pk, text)
            messages.success(request, _("异议已提交，学分管理专员将答复"))
        elif action == "answer":
            objection = request.POST.get("objection", "")
            if not objection.isdigit() or not close.objections.filter(pk=int(objection)).exists():
                raise Http404
            annual.answer_objection(actor, int(objection), request.POST.get("answer", ""))
            messages.success(request, _("已答复"))
        elif action == "submit":
            annual.submit(actor, close.pk, expected)
            messages.success(request, _("已报送区县"))
        elif action == "confirm":
            annual.confirm(actor, close.pk, expected)
            messages.success(request, _("已确认，证书已颁发"))
        elif action == "return":
            annual.return_close(actor, close.pk, text, expected)
            messages.success(request, _("已退回学校"))
        elif action == "reopen":
            annual.reopen(actor, close.pk, text, expected)
            messages.success(request, _("已重新开放"))
        else:
            raise Http404
    except Denied:
        raise Http404 from None
    except ServiceError as exc:
        messages.error(request, str(exc))
    return redirect("annual-school", pk=school.pk, year=year)


@login_required
def district_settings(request: HttpRequest, pk: int) -> HttpResponse:
    district = get_object_or_404(Org, pk=pk, kind=OrgKind.DISTRICT)
    if not perm.can_set_district(request.user, district):
        raise Http404
    error = ""
    if request.method == "POST":
        raw = request.POST.get("publicity_days", "").strip()
        try:
            days = int(raw) if raw else None
            annual.set_district_settings(_actor(request), district.pk, publicity_days=days,
                                         close_due=request.POST.get("close_due", ""))
        except ValueError:
            error = _("公示天数须为整数")
        except ServiceError as exc:
            error = str(exc)
        else:
            messages.success(request, _("已保存"))
            return redirect("annual-index")
        district.refresh_from_db()
    return render(request, "xuefen/annual_settings.html", {
        "district": district, "error": error, "default_days": annual.DEFAULT_PUBLICITY_DAYS,
        "default_due": annual.DEFAULT_CLOSE_DUE,
    }, status=400 if error else 200)


# ------------------------------------------------------------------ certificates


def _teacher(request: HttpRequest, pk: int) -> Teacher:
    teacher = get_object_or_404(Teacher.objects.select_related("school"), pk=pk)
    if not perm.can_get_certificate(request.user, teacher):
        raise Http404
    return teacher


def _url(request: HttpRequest, cert: Certificate) -> str:
    return request.build_absolute_uri(reverse("verify", args=[certificates.url_token(cert)]))


@login_required
def my_certificates(request: HttpRequest) -> HttpResponse:
    if perm.role(request.user) != Role.TEACHER:
        raise Http404
    teacher = Teacher.objects.for_user(request.user).select_related("school").first()
    if teacher is None:
        raise Http404
    return teacher_certificates(request, teacher.pk)


@login_required
def teacher_certificates(request: HttpRequest, pk: int) -> HttpResponse:
    teacher = _teacher(request, pk)
    certs = list(Certificate.objects.filter(teacher=teacher).order_by("-period_end", "kind", "-issued_at"))
    for cert in certs:
        cert.valid = certificates.is_valid(cert)  # type: ignore[attr-defined]
    return render(request, "xuefen/certificates.html", {
        "teacher": teacher, "certs": certs,
        "can_reissue": perm.can_reissue_certificate(request.user, teacher),
    })


@login_required
def certificate_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    cert = get_object_or_404(Certificate.objects.select_related("teacher__school"), pk=pk)
    if not perm.can_get_certificate(request.user, cert.teacher):
        raise Http404
    content = pdfs.certificates_pdf([(cert, _url(request, cert))], title=cert.number)
    return _pdf(content, f"{cert.number}.pdf")


@login_required
def school_certificates_pdf(request: HttpRequest, pk: int, year: int) -> HttpResponse:
    """All valid certificates of a school's confirmed year, merged for printing."""
    school = get_object_or_404(Org, pk=pk, kind=OrgKind.SCHOOL)
    if perm.role(request.user) not in perm.OFFICER_ROLES or not perm.can_view_close(request.user, school):
        raise Http404
    certs = (Certificate.objects.filter(teacher__school=school, period_end=year, voided_at__isnull=True,
                                        kind__in=(Certificate.Kind.ANNUAL, Certificate.Kind.CYCLE))
             .select_related("teacher__school").order_by("teacher__teacher_no", "kind"))
    content = pdfs.certificates_pdf([(c, _url(request, c)) for c in certs], title=f"{school.name} {year}")
    return _pdf(content, f"证书-{school.name}-{year}.pdf")


@login_required
@require_POST
def statement(request: HttpRequest, pk: int) -> HttpResponse:
    teacher = _teacher(request, pk)
    try:
        cert = certificates.issue_statement(_actor(request), teacher)
    except Denied:
        raise Http404 from None
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("teacher-certificates", pk=teacher.pk)
    return _pdf(pdfs.certificates_pdf([(cert, _url(request, cert))], title=cert.number), f"学分证明-{cert.number}.pdf")


@login_required
def booklet(request: HttpRequest, pk: int) -> HttpResponse:
    teacher = _teacher(request, pk)
    try:
        content = certificates.booklet(_actor(request), teacher)
    except Denied:
        raise Http404 from None
    return _pdf(content, f"登记手册-{teacher.teacher_no}.pdf")


@login_required
@require_POST
def reissue(request: HttpRequest, pk: int) -> HttpResponse:
    cert = get_object_or_404(Certificate.objects.select_related("teacher"), pk=pk)
    if not perm.can_get_certificate(request.user, cert.teacher):
        raise Http404
    try:
        new = certificates.reissue(_actor(request), cert.pk, request.POST.get("reason", ""))
    except Denied:
        raise Http404 from None
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已补办，新证书编号 %(n)s；原证书 %(o)s 已作废") % {"n": new.number, "o": cert.number})
    return redirect("teacher-certificates", pk=cert.teacher_id)


def verify(request: HttpRequest, token: str) -> HttpResponse:
    """Public: no login.  A forged or unknown token is 404."""
    cert = certificates.by_url_token(token)
    if cert is None:
        raise Http404
    return render(request, "xuefen/verify.html", {
        "cert": cert, "valid": certificates.is_valid(cert), "name": certificates.masked_name(cert.teacher.name),
    })
