"""Shared view helpers: the navigation context and the role home page."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from xuefen.web import permissions as perm
from xuefen.web.models import Role

# (url name, label, roles that see it)
NAV: list[tuple[str, str | Promise, tuple[str, ...]]] = [
    ("teacher-home", _("我的学分"), (Role.TEACHER,)),
    ("dashboard", _("达标情况"), (Role.SCHOOL_OFFICER, Role.PRINCIPAL, Role.DISTRICT_OFFICE, Role.CITY_CENTER)),
    ("review-queue", _("审核"), (Role.SCHOOL_OFFICER, Role.DISTRICT_OFFICE, Role.CITY_CENTER)),
    ("publicity", _("公示"), (Role.SCHOOL_OFFICER, Role.PRINCIPAL)),
    ("imports", _("导入"), (Role.INSTITUTION_STAFF, Role.SCHOOL_OFFICER, Role.DISTRICT_OFFICE, Role.CITY_CENTER)),
    ("audit-log", _("审计日志"), (Role.AUDITOR, Role.SYSADMIN)),
    ("spot-checks", _("抽检"), (Role.DISTRICT_OFFICE,)),
    ("school-credits", _("录入校本研修学分"), (Role.SCHOOL_OFFICER,)),
    ("manage-orgs", _("管理"), (Role.SYSADMIN,)),
    ("account-locks", _("登录锁定"), (Role.SYSADMIN,)),
    ("annual-index", _("年度登记"), (Role.TEACHER, Role.SCHOOL_OFFICER, Role.PRINCIPAL, Role.DISTRICT_OFFICE,
                                   Role.CITY_CENTER)),
    ("my-certificates", _("我的证书"), (Role.TEACHER,)),
    ("training-mine", _("我的培训"), (Role.TEACHER,)),
    ("training-home", _("培训项目"), (Role.INSTITUTION_STAFF, Role.SCHOOL_OFFICER, Role.PRINCIPAL, Role.DISTRICT_OFFICE,
                                    Role.CITY_CENTER, Role.EXPERT)),
]


def nav(request: HttpRequest) -> dict[str, Any]:
    role = perm.role(getattr(request, "user", None))
    items = [(name, label) for name, label, roles in NAV if role in roles]
    unread = 0
    if role == Role.TEACHER:
        unread = request.user.notifications.filter(read=False).count()  # type: ignore[union-attr]
    return {"nav_items": items, "user_role": role, "user_profile": perm.profile(getattr(request, "user", None)),
            "unread_notifications": unread, "otp_roles": settings.OTP_ROLES}


def _trusted(address: str) -> bool:
    from django.conf import settings

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p, strict=False) for p in settings.TRUSTED_PROXIES)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address.  ``X-Forwarded-For`` is believed only when the
    connection comes from a configured proxy (settings.TRUSTED_PROXIES), and
    then read from the right, skipping our own proxies: the first address a
    trusted proxy saw.  Anyone else's header is ignored, so a client cannot
    choose the address its failures are counted against (issue 19 item 9)."""
    remote = request.META.get("REMOTE_ADDR")
    if not remote or not _trusted(remote):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote
    return remote


@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = perm.role(request.user)
    for name, _label, roles in NAV:
        if role in roles:
            return redirect(name)
    return redirect("login")


def show_full_ids(request: HttpRequest, teachers: Any, where: str) -> bool:
    """Whether this user sees 身份证号 in full here; if so, the view is
    audited with the teachers shown (services.audit.id_numbers_shown)."""
    from xuefen.web.services import audit

    full = perm.sees_full_id_number(request.user)
    if full:
        ids = [] if teachers is None else [teachers.pk] if hasattr(teachers, "pk") else [t.pk for t in teachers]
        audit.id_numbers_shown(request.user, ids, where, ip=client_ip(request))
    return full
