"""Shared view helpers: the navigation context and the role home page."""

from __future__ import annotations

from typing import Any

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
            "unread_notifications": unread}


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = perm.role(request.user)
    for name, _label, roles in NAV:
        if role in roles:
            return redirect(name)
    return redirect("login")
