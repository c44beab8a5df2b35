"""The audit log: searchable by auditors (and the system administrator)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from xuefen.web import permissions as perm
from xuefen.web.models import AuditEntry


@login_required
def log_view(request: HttpRequest) -> HttpResponse:
    if not perm.can_read_audit(request.user):
        raise Http404
    entries = AuditEntry.objects.all()
    for key, lookup in (("actor", "actor_name__icontains"), ("action", "action"), ("object", "object_id")):
        value = request.GET.get(key, "").strip()
        if value:
            entries = entries.filter(**{lookup: value})
    return render(request, "xuefen/audit_log.html", {"entries": entries[:200], "params": request.GET})
