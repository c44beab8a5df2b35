"""Roster imports (institution staff and offices): upload → the check's
result row by row → 确认导入 → written.  Large files are checked and written
in the background; the batch page polls its progress (htmx).

The views parse the form, call :mod:`xuefen.web.services.imports`, and
render; who may import for which unit is permissions.can_import."""

from __future__ import annotations

import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from xuefen.io.template import write_template
from xuefen.web import permissions as perm
from xuefen.web.models import ImportBatch, Org
from xuefen.web.services import imports as service
from xuefen.web.services.ledger import Actor, Denied, ServiceError
from xuefen.web.views.common import client_ip

IMPORT_ROLES = perm.IMPORT_ROLES  # kept for importers of this name
HISTORY_SHOWN = 50
RUNNING = service.RUNNING


def _importer(request: HttpRequest) -> Org:
    p = perm.profile(request.user)
    if p is None or p.org is None or not perm.is_importer(request.user):
        raise Http404
    return p.org


def _targets(request: HttpRequest, home: Org) -> QuerySet[Org]:
    """The units this user may import for: an institution for itself; an
    office for any node of its subtree."""
    return Org.objects.filter(perm.import_targets(request.user)).order_by("path")


def _history(request: HttpRequest, home: Org) -> QuerySet[ImportBatch]:
    return ImportBatch.objects.select_related("org", "uploaded_by").filter(perm.import_scope(request.user))


def _batch(request: HttpRequest, pk: int) -> ImportBatch:
    _importer(request)
    batch = get_object_or_404(ImportBatch.objects.select_related("org", "uploaded_by"), pk=pk)
    if not perm.can_import(request.user, batch.org):
        raise Http404
    return batch


def _course_hours(text: str) -> Decimal | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ServiceError(f"课程学时“{text}”不是数字") from None
    if not value.is_finite() or value <= 0:
        raise ServiceError("课程学时须为大于 0 的数字")
    return value


@login_required
def index(request: HttpRequest) -> HttpResponse:
    home = _importer(request)
    targets = _targets(request, home)
    if request.method == "POST":
        return _upload(request, targets)
    return render(request, "xuefen/imports.html", {
        "can_import_teachers": perm.offers_teacher_import(request.user),
        "targets": targets, "home": home, "history": _history(request, home)[:HISTORY_SHOWN],
        "background_rows": settings.IMPORT_BACKGROUND_ROWS,
        "max_mb": settings.IMPORT_MAX_BYTES // (1024 * 1024),
    })


def _upload(request: HttpRequest, targets: QuerySet[Org]) -> HttpResponse:
    upload = request.FILES.get("file")
    org_id = request.POST.get("org", "")
    org = targets.filter(pk=int(org_id)).first() if org_id.isdigit() else targets.first()
    if org is None:
        raise Http404
    if upload is None:
        messages.error(request, _("请选择要导入的文件"))
        return redirect("imports")
    actor = Actor(request.user, client_ip(request))
    try:
        hours = _course_hours(request.POST.get("course_hours", ""))
        if upload.size is not None and upload.size > settings.IMPORT_MAX_BYTES:
            raise ServiceError(f"文件超过 {settings.IMPORT_MAX_BYTES // (1024 * 1024)}MB")
        batch = service.receive(actor, org, upload.name or "import", upload.read(), hours,
                                kind=request.POST.get("kind", "records"))
    except Denied:
        raise Http404 from None
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("imports")
    if batch.state == ImportBatch.State.DONE:
        messages.info(request, _("该文件已于 %(at)s 导入过（批次 %(batch)s），本次未重复导入任何记录")
                      % {"at": f"{timezone.localtime(batch.created_at):%Y-%m-%d %H:%M}", "batch": batch.pk})
        return redirect("imports-detail", batch.pk)
    try:
        _start_check(batch)
    except ServiceError as exc:
        messages.error(request, str(exc))
    return redirect("imports-detail", batch.pk)


def _start_check(batch: ImportBatch) -> None:
    if service.runs_in_background(batch):
        from xuefen.web.tasks import check_import, dispatch

        dispatch(check_import, batch)
    else:
        service.check_batch(batch)


def _recover(request: HttpRequest, batch: ImportBatch) -> None:
    """A running batch whose worker is gone is taken over (services.imports.recover)."""
    if not service.recover(batch) or batch.state == ImportBatch.State.VALID:
        return  # a write taken over: the page itself says so (imports_detail.html, attempt > 1)
    messages.warning(request, _("上次校验在完成前中断（处理进程已停止），已重新开始校验"))
    try:
        _start_check(batch)
    except ServiceError as exc:
        messages.error(request, str(exc))


def _context(batch: ImportBatch) -> dict[str, Any]:
    percent = 100 * batch.done_rows // batch.total_rows if batch.total_rows else 0
    return {"batch": batch, "running": batch.state in RUNNING, "percent": min(percent, 100)}


@login_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch(request, pk)
    _recover(request, batch)
    context = _context(batch)
    context["records"] = batch.records.select_related("teacher")[:200] if batch.state == ImportBatch.State.DONE else []
    return render(request, "xuefen/imports_detail.html", context)


@login_required
def progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar fragment the batch page polls; once the work is over
    it tells htmx to reload the page, which then shows the result."""
    batch = _batch(request, pk)
    if service.is_stale(batch):
        # the page reloads and takes the batch over, with its message
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    response = render(request, "xuefen/imports_progress.html", _context(batch))
    if batch.state not in RUNNING:
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def confirm(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch(request, pk)
    actor = Actor(request.user, client_ip(request))
    try:
        if service.runs_in_background(batch):
            from xuefen.web.tasks import commit_import, dispatch

            if not service.queue_commit(actor, batch) or dispatch(commit_import, batch, request.user.pk, actor.ip):
                return redirect("imports-detail", batch.pk)
            batch.refresh_from_db()
            return _confirmed(request, batch, batch)
        result = service.commit_batch(actor, batch)
    except Denied:
        raise Http404 from None
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("imports-detail", batch.pk)
    return _confirmed(request, batch, result)


def _confirmed(request: HttpRequest, batch: ImportBatch, result: ImportBatch) -> HttpResponse:
    if result.pk != batch.pk:
        messages.info(request, _("该文件已由批次 %(batch)s 导入，本次未重复导入任何记录") % {"batch": result.pk})
    elif result.state == ImportBatch.State.DONE:
        messages.success(request, _("已导入 %(n)s 条记录") % {"n": result.created_rows})
    elif result.state == ImportBatch.State.INVALID:
        messages.error(request, _("再次校验时发现问题，未写入任何记录；请按下表修改后重新上传"))
    return redirect("imports-detail", result.pk)


@login_required
def template(request: HttpRequest) -> HttpResponse:
    """The XLSX template (the same file ``xuefen template`` writes)."""
    from xuefen.web.exports import XLSX_TYPE, attachment_name

    _importer(request)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "template.xlsx"
        write_template(path)
        content = path.read_bytes()
    response = HttpResponse(content, content_type=XLSX_TYPE)
    response["Content-Disposition"] = attachment_name("学分导入模板.xlsx")
    return response
