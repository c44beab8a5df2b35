"""Login with throttling, logout."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from xuefen.web.services import throttle
from xuefen.web.views.common import client_ip


def _safe_next(request: HttpRequest) -> str | None:
    """The ``next`` target only if it stays on this site (no open redirect)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return None


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    error = ""
    status = 200
    if request.method == "POST":
        username = request.POST.get("username", "").strip()
        password = request.POST.get("password", "")
        ip = client_ip(request)
        if throttle.locked(username, ip):
            # Refused before the password is even checked: a correct password
            # during the lock does not get in and does not reveal itself.
            error, status = "登录失败次数过多，请稍后再试", 429
        else:
            user = authenticate(request, username=username, password=password)
            if user is None:
                throttle.failed(username, ip)
                error = "用户名或密码错误"
            else:
                throttle.succeeded(username)
                login(request, user)
                return redirect(_safe_next(request) or "home")
    return render(request, "xuefen/login.html", {"error": error, "next": _safe_next(request) or ""}, status=status)


@require_http_methods(["POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")
