"""Accounts: password change and reset, roles, API tokens, notifications read.

Password rules, forced change on first login and ending sessions and tokens
at a password change belong to the security work; they plug in here, in
:func:`change_password` and :func:`reset_password`, which every page and
command calls."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token

from xuefen.web import permissions as perm
from xuefen.web.models import Org, Profile, Role
from xuefen.web.services import audit
from xuefen.web.services.base import Actor, Denied, ServiceError


def _org_path(user: Any) -> str:
    p = perm.profile(user)
    return p.org.path if p and p.org else ""


def _validated(new: str, user: Any) -> None:
    try:
        password_validation.validate_password(new, user)
    except ValidationError as exc:
        raise ServiceError("；".join(exc.messages)) from None


@transaction.atomic
def change_password(actor: Actor, user: Any, new: str) -> None:
    """The user changes her own password (the old one is checked by the page's
    form before this is called)."""
    if actor.user.pk != user.pk:
        raise Denied("只能修改本人的密码")
    _validated(new, user)
    user.set_password(new)
    user.save(update_fields=["password"])
    audit.log(actor.user, "password_change", user, ip=actor.ip, org_path=_org_path(user))


@transaction.atomic
def reset_password(actor: Actor, user: Any) -> str:
    """The system administrator sets a new random password for a user and is
    shown it once, to hand over; the password is not stored anywhere else."""
    if not perm.can_administer(actor.user):
        raise Denied("只有系统管理员可以重置密码")
    temporary = secrets.token_urlsafe(12)
    user.set_password(temporary)
    user.save(update_fields=["password"])
    audit.log(actor.user, "password_reset", user, after={"username": user.username}, ip=actor.ip,
              org_path=_org_path(user))
    return temporary


@transaction.atomic
def create_account(actor: Actor, username: str, full_name: str, role: str, org: Org | None) -> tuple[Any, str]:
    """A new account with its role and unit, and a first password shown once."""
    if not perm.can_administer(actor.user):
        raise Denied("只有系统管理员可以创建账号")
    username = username.strip()
    if not username:
        raise ServiceError("用户名不能为空")
    if role not in Role.values:
        raise ServiceError(f"未知角色：{role}")
    if role != Role.SYSADMIN and org is None:
        raise ServiceError("须选择账号所属机构")
    model = get_user_model()
    if model.objects.filter(username__iexact=username).exists():
        raise ServiceError(f"用户名“{username}”已存在")
    temporary = secrets.token_urlsafe(12)
    user = model.objects.create_user(username=username, password=temporary, first_name=full_name.strip()[:150])
    Profile.objects.create(user=user, role=role, org=org)
    audit.log(actor.user, "account_create", user, after={"username": username, "role": role,
                                                         "org": org.name if org else ""},
              ip=actor.ip, org_path=org.path if org else "")
    return user, temporary


@transaction.atomic
def set_role(actor: Actor, user: Any, role: str, org: Org | None, active: bool) -> None:
    if not perm.can_administer(actor.user):
        raise Denied("只有系统管理员可以修改角色")
    if role not in Role.values:
        raise ServiceError(f"未知角色：{role}")
    if user.pk == actor.user.pk and (role != Role.SYSADMIN or not active):
        raise ServiceError("不能取消自己的系统管理员角色或停用自己的账号")
    profile = Profile.objects.select_for_update().filter(user=user).first()
    before = {"role": profile.role if profile else "", "org": profile.org.name if profile and profile.org else "",
              "active": user.is_active}
    if profile is None:
        profile = Profile(user=user)
    profile.role, profile.org = role, org
    profile.save()
    user.is_active = active
    user.save(update_fields=["is_active"])
    audit.log(actor.user, "account_update", user, before=before,
              after={"role": role, "org": org.name if org else "", "active": active}, ip=actor.ip,
              org_path=org.path if org else "")


@transaction.atomic
def issue_token(actor: Actor) -> Token:
    """A new API token for the actor (the old one ends); shown once."""
    Token.objects.filter(user=actor.user).delete()
    token = Token.objects.create(user=actor.user)
    audit.log(actor.user, "token_issue", actor.user, ip=actor.ip, org_path=_org_path(actor.user))
    return token


@transaction.atomic
def revoke_token(actor: Actor) -> None:
    if Token.objects.filter(user=actor.user).delete()[0]:
        audit.log(actor.user, "token_revoke", actor.user, ip=actor.ip, org_path=_org_path(actor.user))


def mark_notifications_read(actor: Actor) -> int:
    """The teacher has seen her notifications (her home page shows them).
    A visit with nothing unread writes nothing, so a read-only page takes no
    write lock (on SQLite an import may hold it for minutes)."""
    unread = actor.user.notifications.filter(read=False)
    return int(unread.update(read=True)) if unread.exists() else 0
