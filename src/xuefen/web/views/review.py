"""The review queue: paginated, filtered, sorted, searched; one record at a
time or the whole selection in one action (services.review).

What a row offers comes from ``permissions.record_actions`` (the review
chain), never from a role test here."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from xuefen.web import permissions as perm
from xuefen.web.models import BulkReview, Org, OrgKind, Record, Source, Status
from xuefen.web.services import declarations, ledger, review
from xuefen.web.services.base import Actor, Denied, ServiceError
from xuefen.web.views.common import client_ip

QUEUE_STATES = (Status.PENDING, Status.SCHOOL_APPROVED, Status.DISTRICT_APPROVED, Status.CERTIFIED,
                Status.RETURNED, Status.REVOKED)
FILTERS = ("q", "year", "school", "category", "source", "status", "sort")
# sort key → (label, ordering)
SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "created": (_("提交时间（早→晚）"), ("created_at", "pk")),
    "-created": (_("提交时间（晚→早）"), ("-created_at", "-pk")),
    "year": (_("年度"), ("year", "teacher__teacher_no", "uid")),
    "teacher": (_("教师编号"), ("teacher__teacher_no", "year", "uid")),
    "-credits": (_("学分（高→低）"), ("-credits", "pk")),
    "school": (_("学校"), ("teacher__school__path", "teacher__teacher_no", "uid")),
}


def _reviewer(request: HttpRequest) -> str:
    mine = perm.queue_state(request.user)
    if mine is None:
        raise Http404
    return mine


def queue_records(user: Any, params: dict[str, str], mine: str) -> QuerySet[Record]:
    """The records a queue shows for these filter values (the page, the
    "select filtered" action and the API agree by calling this)."""
    records = Record.objects.for_user(user).select_related("teacher__school")
    status = params.get("status") or mine
    if status != "all":
        records = records.filter(status=status)
    q = params.get("q", "")
    if q:
        records = records.filter(Q(uid=q) | Q(teacher__teacher_no=q) | Q(teacher__name__contains=q)
                                 | Q(title__contains=q))
    if params.get("year", "").isdigit():
        records = records.filter(year=int(params["year"]))
    if params.get("school", "").isdigit():
        school = Org.objects.filter(perm.org_scope(user), pk=int(params["school"])).first()
        records = (records.filter(teacher__school__path__startswith=school.path) if school is not None
                   else records.none())
    if params.get("category"):
        records = records.filter(credit_category=params["category"])
    if params.get("source") in Source.values:
        records = records.filter(source=params["source"])
    return records.order_by(*SORTS.get(params.get("sort", ""), SORTS["created"])[1])


def _params(data: QueryDict) -> dict[str, str]:
    return {k: data.get(k, "").strip() for k in FILTERS}


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    mine = _reviewer(request)
    params = _params(request.GET)
    records = queue_records(request.user, params, mine)
    page = Paginator(records, settings.REVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page)
    duplicates = declarations.duplicate_notes(rows)
    for r in rows:
        r.allowed = perm.record_actions(request.user, r)  # type: ignore[attr-defined]
        r.duplicates = duplicates.get(r.pk, [])  # type: ignore[attr-defined]
    scoped = Record.objects.for_user(request.user).order_by()
    counts = {row["status"]: row["n"] for row in scoped.values("status").annotate(n=Count("id"))}
    query = request.GET.copy()
    query.pop("page", None)
    status = params["status"] or mine
    return render(request, "xuefen/review_queue.html", {
        "records": rows, "page": page, "count": page.paginator.count, "params": params, "status": status,
        "mine": mine, "approve_step": perm.approve_step(request.user), "query": query.urlencode(),
        "status_tabs": [(s, Status(s).label, counts.get(s, 0)) for s in QUEUE_STATES],
        "schools": Org.objects.filter(perm.org_scope(request.user), kind=OrgKind.SCHOOL).order_by("path"),
        # .order_by() drops the model's ordering: DISTINCT over (value, ordering columns) listed
        # each category once per record (issue 16 item 7).
        "years": list(scoped.values_list("year", flat=True).distinct().order_by("-year")),
        "categories": [c for c in scoped.values_list("credit_category", flat=True).distinct()
                       .order_by("credit_category") if c],
        "sources": Source.choices, "sorts": [(k, label) for k, (label, _o) in SORTS.items()],
        "bulk_ok": status == mine,
        "background_records": settings.REVIEW_BACKGROUND_RECORDS,
    })


def _back(request: HttpRequest, default: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect(default)


@login_required
@require_POST
def review_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    actor = Actor(request.user, client_ip(request))
    version = request.POST.get("version")
    expected = int(version) if version and version.isdigit() else None
    comment = request.POST.get("comment", "")
    try:
        if action in perm.TRANSITIONS:
            record = ledger.transition(actor, pk, action, expected, comment)
        elif action == "return":
            record = ledger.return_record(actor, pk, comment, expected)
        elif action == "revoke":
            record = ledger.revoke_record(actor, pk, comment, expected)
        else:
            raise Http404
    except (Record.DoesNotExist, Denied):
        raise Http404 from None
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(teacher)s 的“%(title)s”现为：%(status)s") % {
            "teacher": record.teacher.name, "title": record.title or record.uid, "status": record.get_status_display()})
    return _back(request, "review-queue")


@login_required
@require_POST
def review_bulk(request: HttpRequest) -> HttpResponse:
    """Approve or return the ticked records, or every record the filters
    match (``scope=filtered``, checked against the count the page showed)."""
    mine = _reviewer(request)
    action = request.POST.get("action", "")
    comment = request.POST.get("comment", "")
    query = QueryDict(request.POST.get("query", ""))
    back = f"{reverse('review-queue')}?{query.urlencode()}"
    if request.POST.get("scope") == "filtered":
        ids = list(queue_records(request.user, _params(query), mine).values_list("pk", flat=True))
        expected = request.POST.get("expected", "")
        if expected.isdigit() and int(expected) != len(ids):
            messages.error(request, _("筛选结果已变化（现为 %(n)s 条），未处理任何记录，请确认后重试") % {"n": len(ids)})
            return redirect(back)
    else:
        ids = [int(x) for x in request.POST.getlist("ids") if x.isdigit()]
    actor = Actor(request.user, client_ip(request))
    try:
        if review.runs_in_background(len(ids)):
            from xuefen.web.tasks import dispatch_review

            job = review.start_job(actor, ids, action, comment)
            dispatch_review(job.pk, actor.ip)
            return redirect("review-job", job.pk)
        moved = review.bulk_review(actor, ids, action, comment)
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    verb = _("通过") if action == "approve" else _("退回")
    messages.success(request, _("已%(verb)s %(n)s 条记录") % {"verb": verb, "n": moved})
    return redirect(back)


def _job(request: HttpRequest, pk: int) -> BulkReview:
    job = get_object_or_404(BulkReview, pk=pk)
    if not perm.can_view_bulk_job(request.user, job):
        raise Http404
    return job


def _job_context(job: BulkReview) -> dict[str, Any]:
    percent = 100 * job.done // job.total if job.total else 0
    running = job.state in (BulkReview.State.QUEUED, BulkReview.State.RUNNING)
    return {"job": job, "percent": min(percent, 100), "running": running}


@login_required
def review_job(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "xuefen/review_job.html", _job_context(_job(request, pk)))


@login_required
def review_job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    context = _job_context(_job(request, pk))
    response = render(request, "xuefen/review_job_progress.html", context)
    if not context["running"]:
        response["HX-Refresh"] = "true"
    return response
