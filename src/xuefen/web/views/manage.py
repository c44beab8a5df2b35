"""Administration for the system administrator: the organisation tree, each
unit's policy binding, options and declaration months, accounts and roles,
password resets.  Every change goes through services.administration or
services.accounts (audited, re-evaluating what it affects)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from xuefen.web import permissions as perm
from xuefen.web.models import Org, OrgKind, Role
from xuefen.web.services import accounts, administration
from xuefen.web.services.base import Actor, ServiceError
from xuefen.web.views.common import client_ip

USERS_PER_PAGE = 50


def _admin(request: HttpRequest) -> Actor:
    if not perm.can_administer(request.user):
        raise Http404
    return Actor(request.user, client_ip(request))


def _depth(org: Org) -> int:
    return max(0, org.path.count("/") - 2)


@login_required
@require_http_methods(["GET", "POST"])
def orgs(request: HttpRequest) -> HttpResponse:
    """The tree, each unit with its binding; a form to add a unit."""
    actor = _admin(request)
    if request.method == "POST":
        parent_id = request.POST.get("parent", "")
        parent = Org.objects.filter(pk=int(parent_id)).first() if parent_id.isdigit() else None
        try:
            org = administration.create_org(actor, request.POST.get("name", ""), request.POST.get("kind", ""), parent)
        except ServiceError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("已新建单位“%(name)s”") % {"name": org.name})
        return redirect("manage-orgs")
    tree = [{"org": o, "depth": range(_depth(o))} for o in Org.objects.order_by("path")]
    return render(request, "xuefen/manage_orgs.html", {"tree": tree, "kinds": OrgKind.choices,
                                                       "policies": administration.policies()})


def _posted_settings(request: HttpRequest, known: dict[str, Any]) -> administration.OrgSettings:
    policy = request.POST.get("policy", "").strip()
    options: dict[str, str] = {}
    if policy in known:
        for option in known[policy].options:
            value = request.POST.get(f"option-{option.id}", "")
            if value:
                options[option.id] = value
    months = [int(m) for m in request.POST.getlist("months") if m.isdigit()]
    return administration.OrgSettings(policy=policy, options=options, months=months)


@login_required
@require_http_methods(["GET", "POST"])
def org_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _admin(request)
    org = get_object_or_404(Org, pk=pk)
    known = administration.policies()
    if request.method == "POST":
        try:
            outcome = administration.update_org(actor, org.pk, _posted_settings(request, known))
        except ServiceError as exc:
            messages.error(request, str(exc))
        else:
            if outcome is None:
                messages.success(request, _("已保存"))
            else:
                messages.success(request, _("已保存，并重新评估了该单位的 %(n)s 名教师（%(changed)s 名结果有变化）")
                                 % {"n": outcome.teachers, "changed": outcome.refreshed})
        return redirect("manage-org", org.pk)
    inherited = org.binding() if not org.policy else None
    policy = known.get(org.policy)
    options = [{"option": o, "value": (org.policy_options or {}).get(o.id, o.default)}
               for o in (policy.options if policy else [])]
    return render(request, "xuefen/manage_org.html", {
        "org": org, "policies": known, "policy": policy, "options": options, "inherited": inherited,
        "months": [(m, m in (org.declaration_months or [])) for m in range(1, 13)],
        "ancestors": org.ancestors()[:-1],
    })


@login_required
@require_http_methods(["GET", "POST"])
def users(request: HttpRequest) -> HttpResponse:
    actor = _admin(request)
    if request.method == "POST":
        org_id = request.POST.get("org", "")
        org = Org.objects.filter(pk=int(org_id)).first() if org_id.isdigit() else None
        try:
            user, temporary = accounts.create_account(actor, request.POST.get("username", ""),
                                                      request.POST.get("full_name", ""),
                                                      request.POST.get("role", ""), org)
        except ServiceError as exc:
            messages.error(request, str(exc))
            return redirect("manage-users")
        return render(request, "xuefen/manage_password_shown.html", {"account": user, "temporary": temporary})
    q = request.GET.get("q", "").strip()
    people = get_user_model().objects.select_related("profile__org").order_by("username")
    if q:
        people = people.filter(username__icontains=q) | people.filter(first_name__icontains=q)
    page = Paginator(people, USERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "xuefen/manage_users.html", {
        "page": page, "q": q, "roles": Role.choices, "orgs": Org.objects.order_by("path"),
    })


@login_required
@require_http_methods(["GET", "POST"])
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _admin(request)
    account = get_object_or_404(get_user_model().objects.select_related("profile__org"), pk=pk)
    if request.method == "POST":
        org_id = request.POST.get("org", "")
        org = Org.objects.filter(pk=int(org_id)).first() if org_id.isdigit() else None
        try:
            accounts.set_role(actor, account, request.POST.get("role", ""), org, request.POST.get("active") == "on")
        except ServiceError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("已保存"))
        return redirect("manage-user", account.pk)
    return render(request, "xuefen/manage_user.html", {
        "account": account, "profile": perm.profile(account), "roles": Role.choices,
        "orgs": Org.objects.order_by("path"),
    })


@login_required
@require_POST
def user_reset_password(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _admin(request)
    account = get_object_or_404(get_user_model(), pk=pk)
    try:
        temporary = accounts.reset_password(actor, account)
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("manage-user", account.pk)
    return render(request, "xuefen/manage_password_shown.html", {"account": account, "temporary": temporary})
