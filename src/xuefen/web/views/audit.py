"""The audit log: searchable by auditors (within their organisation's subtree)
and the system administrator.  Read-only: nothing here writes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from xuefen.model import RECORD_FIELDS
from xuefen.web import permissions as perm
from xuefen.web.logmask import ID_NUMBER
from xuefen.web.models import AuditEntry, Org, Role, Status, mask_id_number

PAGE_SIZE = 50

ACTION_LABELS: dict[str, Any] = {
    "declare": _("教师申报"), "school_entry": _("学校录入"), "school_approve": _("学校审核"),
    "district_approve": _("区县审核"),
    "certify": _("市级认定"), "return": _("退回"), "correct": _("更正"), "revoke": _("撤销"), "resubmit": _("重新提交"),
    "spot_check": _("抽检"),
    # office work (issue 16)
    "spot_check_result": _("抽检结果"), "password_change": _("修改密码"), "password_reset": _("重置密码"),
    "account_create": _("新建账号"), "account_update": _("修改账号"), "token_issue": _("生成令牌"),
    "token_revoke": _("吊销令牌"),
    "org_update": _("修改单位设置"), "org_create": _("新建单位"), "import": _("导入"),
    # security (issues 17 and 19)
    "password_changed": _("修改密码"), "password_set": _("设置密码"), "account_created": _("新建账号"),
    "login": _("登录"), "logout": _("退出"), "login_failed": _("登录失败"), "login_locked": _("登录锁定"),
    "login_refused_locked": _("锁定期间拒绝登录"), "login_second_factor_while_locked": _("锁定期间以动态口令登录"),
    "login_unlocked": _("解除登录锁定"), "otp_enabled": _("启用动态口令"), "otp_removed": _("停用动态口令"),
    "id_number_viewed": _("查看身份证号全号"), "import_recover": _("恢复中断的导入"),
}
OBJECT_LABELS: dict[str, Any] = {"Record": _("学分记录"), "Org": _("单位"), "User": _("账号"), "ImportBatch": _("导入批次"),
                                 "Teacher": _("教师"), "SpotCheck": _("抽检")}
# Stored codes shown as their labels: a reader sees 学校已审核, not school_approved.
VALUE_LABELS: dict[str, dict[str, str]] = {
    "status": {s.value: str(s.label) for s in Status},
    "role": {r.value: str(r.label) for r in Role},
    "result": {"open": "待核查", "passed": "属实", "failed": "不属实"},
}
FIELD_LABELS = {key: label for key, (label, _kind) in RECORD_FIELDS.items()}
FIELD_LABELS.update(uid="记录编号", status="状态", credits="学分", preset_credits="认定学分", version="版本",
                    seed="随机种子", records="抽中记录", pool="候选记录数", rule="抽取条件", note="说明",
                    policy="学分政策", policy_options="政策选项", declaration_months="申报月份", username="用户名",
                    org="所属单位", active="启用", name="名称", kind="类型", parent="上级单位")


def _day(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _show(value: Any, full_ids: bool) -> str:
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if full_ids else ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)


def diff(entry: AuditEntry, full_ids: bool) -> list[dict[str, Any]]:
    """Rows (field, before, after) for a readable before/after view: for an
    update only the fields that changed; for a creation every value set."""
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    rows = []
    for key in list(dict.fromkeys([*before, *after])):
        old, new = before.get(key), after.get(key)
        if old == new or (not before and new in (None, "")):
            continue
        labels = VALUE_LABELS.get(key, {})
        old = labels.get(old, old) if isinstance(old, str) else old
        new = labels.get(new, new) if isinstance(new, str) else new
        rows.append({"field": FIELD_LABELS.get(key, key), "key": key, "before": _show(old, full_ids),
                     "after": _show(new, full_ids), "had_before": key in before, "has_after": key in after})
    return rows


def _operator(entry: AuditEntry) -> str:
    """The operator's name (the account's full name), with the user name."""
    full = entry.actor.get_full_name() if entry.actor is not None else ""
    return f"{full}（{entry.actor_name}）" if full else entry.actor_name


@login_required
def log_view(request: HttpRequest) -> HttpResponse:
    if not perm.can_read_audit(request.user):
        raise Http404
    p = perm.profile(request.user)
    assert p is not None
    scoped = AuditEntry.objects.filter(perm.audit_scope(request.user))
    orgs = Org.objects.all() if perm.is_sysadmin(request.user) else (p.org.subtree() if p.org else Org.objects.none())

    params = {key: request.GET.get(key, "").strip() for key in
              ("actor", "action", "object_type", "object", "org", "from", "to")}
    entries = scoped
    if params["actor"]:
        entries = entries.filter(actor_name__icontains=params["actor"])
    if params["action"]:
        entries = entries.filter(action=params["action"])
    if params["object_type"]:
        entries = entries.filter(object_type=params["object_type"])
    if params["object"]:
        entries = entries.filter(object_id=params["object"])
    if params["org"].isdigit():
        org = orgs.filter(pk=int(params["org"])).first()
        entries = entries.filter(org_path__startswith=org.path) if org else entries.none()
    start, end = _day(params["from"]), _day(params["to"])
    if start:
        entries = entries.filter(at__gte=_start_of(start))
    if end:
        entries = entries.filter(at__lt=_start_of(end + dt.timedelta(days=1)))

    page = Paginator(entries.select_related("actor").order_by("-at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    full_ids = perm.sees_full_id_number(request.user)
    rows = [{"entry": e, "label": ACTION_LABELS.get(e.action, e.action), "diff": diff(e, full_ids),
             "object": OBJECT_LABELS.get(e.object_type, e.object_type), "operator": _operator(e),
             "comment": _show(e.comment, full_ids)} for e in page]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "xuefen/audit_log.html", {
        "rows": rows, "page": page, "params": params, "query": query.urlencode(), "orgs": orgs,
        "actions": [(a, ACTION_LABELS.get(a, a)) for a in
                    sorted(set(scoped.values_list("action", flat=True).order_by()))],
        "object_types": [(t, OBJECT_LABELS.get(t, t)) for t in
                         sorted(set(scoped.values_list("object_type", flat=True).order_by()))],
    })
