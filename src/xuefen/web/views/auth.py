"""Login with throttling and the optional second factor, logout.

Every login, failure and lock is audited (等保2.0 8.1.4.3 a: 审计覆盖到每个用户，
对重要的用户行为进行审计).  A locked username at this address still gets in
with her password *and* a valid TOTP code (issue 19 item 9), or after an
administrator's unlock (views.security.unlock)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from xuefen.web.services import accounts, audit, throttle
from xuefen.web.views.common import client_ip


def _safe_next(request: HttpRequest) -> str | None:
    """The ``next`` target only if it stays on this site (no open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return None


def _device(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def _lock_message(lock: throttle.Lock) -> str:
    if lock.spray:
        return f"该地址登录失败次数过多，已暂停登录，请约 {lock.minutes} 分钟后再试，或联系系统管理员"
    return (f"登录失败次数过多，该账号在本机已被锁定，请约 {lock.minutes} 分钟后再试；"
            "已启用动态口令的用户可输入动态口令立即登录，或联系系统管理员解锁")


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    error = ""
    status = 200
    show_otp = False
    wait = None
    if request.method == "POST":
        username = request.POST.get("username", "").strip()
        password = request.POST.get("password", "")
        code = request.POST.get("otp", "").strip()
        ip = client_ip(request)
        target = User.objects.filter(username=username).first() or username
        lock = throttle.locked(username, ip)
        if lock is not None:
            # Refused before the password is checked — unless a second factor
            # comes with it: a correct password alone during the lock does not
            # get in and does not reveal itself.
            user = authenticate(request, username=username, password=password) if code else None
            device = _device(user) if user is not None else None
            if user is not None and device is not None and device.verify_token(code):
                throttle.succeeded(username, ip)
                audit.log(user, "login_second_factor_while_locked", user, ip=ip)
                return _logged_in(request, user, device)
            audit.log(None, "login_refused_locked", target, ip=ip, after={"username": username[:150]})
            error, status, wait, show_otp = _lock_message(lock), 429, lock.minutes, True
        else:
            user = authenticate(request, username=username, password=password)
            device = _device(user) if user is not None else None
            if user is not None and device is not None and not code:
                # The password was right; ask for the second factor without counting a failure.
                error, show_otp = "该账号已启用动态口令，请输入手机上显示的 6 位动态口令", True
            elif user is None or (device is not None and not device.verify_token(code)):
                started = throttle.failed(username, ip)
                reason = "动态口令不正确" if user is not None else "用户名或密码错误"
                audit.log(None, "login_failed", target, ip=ip, after={"username": username[:150], "reason": reason})
                if started is not None:
                    audit.log(None, "login_locked", target, ip=ip,
                              after={"username": username[:150], "seconds": started.seconds})
                    error, status, wait, show_otp = _lock_message(started), 429, started.minutes, True
                else:
                    error, show_otp = reason, device is not None
            else:
                throttle.succeeded(username, ip)
                return _logged_in(request, user, device)
    return render(request, "xuefen/login.html", {"error": error, "next": _safe_next(request) or "",
                                                 "show_otp": show_otp, "wait": wait}, status=status)


def _logged_in(request: HttpRequest, user: Any, device: TOTPDevice | None) -> HttpResponse:
    login(request, user)
    if device is not None:
        otp_login(request, device)
    audit.log(user, "login", user, ip=client_ip(request), after={"second_factor": device is not None})
    if accounts.state(user).must_change_password:
        return redirect("account-password")
    return redirect(_safe_next(request) or "home")


@require_http_methods(["POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_authenticated:
        # Every session and API token of the user, not only this browser's.
        accounts.end_sessions(user)
        audit.log(user, "logout", user, ip=client_ip(request))
    logout(request)
    return redirect("login")
