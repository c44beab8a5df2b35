"""Accounts: password rules, changes and resets, ending sessions, unlocking;
accounts and roles made by the administrator, API tokens, notifications read.

等保2.0 8.1.4.1 身份鉴别 (a 口令复杂度并定期更换, b 登录失败处理与超时退出) and
ASVS V2.1 / V3.3: every password a user sets passes the rules below (through
Django's validators, settings.AUTH_PASSWORD_VALIDATORS); a password an
administrator set (a new account, a reset) must be changed at the next login
(``AccountState.must_change_password``); logout and a password change end
every session and API token of the user.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from xuefen.web import permissions as perm
from xuefen.web.models import AccountState, ApiToken, Org, Profile, Role
from xuefen.web.services import audit, throttle
from xuefen.web.services.base import Actor, Denied, ServiceError

_CLASSES = (
    ("小写字母", re.compile(r"[a-z]")),
    ("大写字母", re.compile(r"[A-Z]")),
    ("数字", re.compile(r"[0-9]")),
    ("符号", re.compile(r"[^A-Za-z0-9]")),
)


class CharacterClassesValidator:
    """At least ``classes`` of: lower case, upper case, digits, symbols."""

    def __init__(self, classes: int = 3) -> None:
        self.classes = classes

    def validate(self, password: str, user: Any = None) -> None:
        present = sum(1 for _name, pattern in _CLASSES if pattern.search(password))
        if present < self.classes:
            raise ValidationError(
                f"密码须包含小写字母、大写字母、数字、符号中的至少 {self.classes} 类（现有 {present} 类）",
                code="password_too_simple")

    def get_help_text(self) -> str:
        return f"至少包含小写字母、大写字母、数字、符号中的 {self.classes} 类"


class NotIdentityValidator:
    """Not the username, nor a teacher's 身份证号 (or its last six or eight
    characters, the usual birthday or tail pick), in any case."""

    def validate(self, password: str, user: Any = None) -> None:
        if user is None:
            return
        text = password.strip().lower()
        username = (getattr(user, "username", "") or "").lower()
        if username and (text == username or (username in text and len(username) >= 4)):
            raise ValidationError("密码不能是或包含用户名", code="password_is_username")
        teacher = getattr(user, "teacher", None) if getattr(user, "pk", None) else None
        number = teacher.id_number.lower() if teacher is not None else ""
        if number and (number in text or number[-8:] in text or text in (number[-6:], number[-8:])):
            raise ValidationError("密码不能包含身份证号", code="password_is_id_number")

    def get_help_text(self) -> str:
        return "不能是用户名或身份证号"


# Django's own validators, in Chinese whatever the active language (the UI
# speaks Chinese first; their catalogue may lack a plural form).
_CHINESE = {
    "password_too_short": "密码太短，至少须 {min_length} 个字符",
    "password_too_common": "密码太常见，容易被猜中",
    "password_entirely_numeric": "密码不能全是数字",
    "password_too_similar": "密码与用户名或姓名太相似",
}


def check_password_rules(password: str, user: Any) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as e:
        reasons = []
        for error in e.error_list:
            template = _CHINESE.get(error.code or "")
            reasons.append(template.format(**(error.params or {})) if template else "；".join(error.messages))
        raise ServiceError("；".join(reasons)) from e


def state(user: Any) -> AccountState:
    account, _ = AccountState.objects.get_or_create(user=user)
    return account


def stamp_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """At login (``user_logged_in``): the epoch, login time and last activity
    that views.security.SessionGuard checks on every request."""
    if request is None or not hasattr(request, "session"):
        return
    now = int(timezone.now().timestamp())
    request.session["xuefen_epoch"] = state(user).session_epoch
    request.session["xuefen_login_at"] = now
    request.session["xuefen_seen"] = now


def end_sessions(user: Any) -> None:
    """Every session (the epoch every session carries moves on, see
    views.security.SessionGuard) and every API token of the user."""
    with transaction.atomic():
        account, _ = AccountState.objects.select_for_update().get_or_create(user=user)
        account.session_epoch += 1
        account.save(update_fields=["session_epoch"])
        ApiToken.objects.filter(user=user).delete()


def _actor_user(actor: Any) -> Any:
    return actor.user if isinstance(actor, Actor) else actor


def _ip(actor: Any) -> str | None:
    return actor.ip if isinstance(actor, Actor) else None


def change_password(actor: Any, user: User, new: str, *, old: str | None = None) -> None:
    """Set ``user``'s password to ``new``: by herself (``old`` must then be
    her current password when given) or by the account manager.  The rules
    apply; all her sessions and tokens end; audited."""
    who = _actor_user(actor)
    if not perm.can_change_password(who, user):
        raise Denied("无权修改该用户的密码")
    if old is not None and not user.check_password(old):
        raise ServiceError("当前密码不正确")
    if old is not None and old == new:
        raise ServiceError("新密码不能与当前密码相同")
    check_password_rules(new, user)
    with transaction.atomic():
        locked_user = User.objects.select_for_update().get(pk=user.pk)
        locked_user.set_password(new)
        locked_user.save(update_fields=["password"])
        account, _ = AccountState.objects.select_for_update().get_or_create(user=locked_user)
        # Set by someone else: she must choose her own at the next login.
        account.must_change_password = who.pk != user.pk
        account.password_changed_at = timezone.now()
        account.save(update_fields=["must_change_password", "password_changed_at"])
        end_sessions(locked_user)
        audit.log(who, "password_changed" if who.pk == user.pk else "password_set", locked_user, ip=_ip(actor),
                  org_path=_org_path(locked_user))
    user.password = locked_user.password


def reset_password(actor: Any, user: User) -> str:
    """A new random password for ``user``, returned once for the
    administrator to hand over; she must change it at the next login."""
    who = _actor_user(actor)
    if not perm.can_manage_accounts(who):
        raise Denied("只有系统管理员可以重置密码")
    alphabet = string.ascii_letters + string.digits
    while True:
        temporary = "".join(secrets.choice(alphabet) for _ in range(12)) + secrets.choice("!@#%+=")
        try:
            password_validation.validate_password(temporary, user)
            break
        except ValidationError:
            continue
    with transaction.atomic():
        locked_user = User.objects.select_for_update().get(pk=user.pk)
        locked_user.set_password(temporary)
        locked_user.save(update_fields=["password"])
        account, _ = AccountState.objects.select_for_update().get_or_create(user=locked_user)
        account.must_change_password = True
        account.password_changed_at = timezone.now()
        account.save(update_fields=["must_change_password", "password_changed_at"])
        end_sessions(locked_user)
        throttle.unlock(locked_user.username)
        audit.log(who, "password_reset", locked_user, ip=_ip(actor), org_path=_org_path(locked_user))
    user.password = locked_user.password
    return temporary


def create_account(actor: Any, username: str, full_name: str = "", role: str = "", org: Org | None = None
                   ) -> tuple[User, str]:
    """An account made by the administrator, with its role and unit: a
    random first password she hands over, to be changed at the first login."""
    who = _actor_user(actor)
    if not perm.can_manage_accounts(who):
        raise Denied("只有系统管理员可以创建账号")
    username = username.strip()
    if not username:
        raise ServiceError("用户名不能为空")
    if role not in Role.values:
        raise ServiceError(f"未知角色：{role}")
    if role != Role.SYSADMIN and org is None:
        raise ServiceError("须选择账号所属机构")
    if User.objects.filter(username__iexact=username).exists():
        raise ServiceError(f"用户名“{username}”已存在")
    with transaction.atomic():
        user = User.objects.create_user(username, first_name=full_name.strip()[:150])
        Profile.objects.create(user=user, role=role, org=org)
        temporary = reset_password(actor, user)
        audit.log(who, "account_created", user, after={"username": username, "role": role,
                                                       "org": org.name if org else ""},
                  ip=_ip(actor), org_path=org.path if org else "")
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
    if not active:  # a deactivated account keeps no session and no token
        end_sessions(user)
    audit.log(actor.user, "account_update", user, before=before,
              after={"role": role, "org": org.name if org else "", "active": active}, ip=actor.ip,
              org_path=org.path if org else "")


def issue_token(actor: Actor) -> tuple[ApiToken, str, str]:
    """A new API token pair for the actor (the old pair ends); the keys are
    shown once and only their digests are stored."""
    from xuefen.web.api import authentication as api_auth

    with transaction.atomic():
        token, key, refresh = api_auth.issue(actor.user)
        audit.log(actor.user, "token_issue", actor.user, ip=actor.ip, org_path=_org_path(actor.user))
    return token, key, refresh


@transaction.atomic
def revoke_token(actor: Actor) -> None:
    if ApiToken.objects.filter(user=actor.user).delete()[0]:
        audit.log(actor.user, "token_revoke", actor.user, ip=actor.ip, org_path=_org_path(actor.user))


def mark_notifications_read(actor: Actor) -> int:
    """The teacher has seen her notifications (her home page shows them).
    A visit with nothing unread writes nothing, so a read-only page takes no
    write lock (on SQLite an import may hold it for minutes)."""
    unread = actor.user.notifications.filter(read=False)
    return int(unread.update(read=True)) if unread.exists() else 0


def unlock(actor: Any, username: str) -> int:
    """Lift the login lock of ``username`` at every address; audited."""
    who = _actor_user(actor)
    if not perm.can_manage_accounts(who):
        raise Denied("只有系统管理员可以解除登录锁定")
    lifted = throttle.unlock(username)
    audit.log(who, "login_unlocked", username, after={"failures_cleared": lifted}, ip=_ip(actor))
    return lifted


def _org_path(user: Any) -> str:
    p = perm.profile(user)
    return p.org.path if p is not None and p.org is not None else ""
