"""Login with throttling, logout."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from xuefen.web.services import throttle
from xuefen.web.views.common import client_ip


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    error = ""
    if request.method == "POST":
        username = request.POST.get("username", "").strip()
        password = request.POST.get("password", "")
        ip = client_ip(request)
        if throttle.locked(username, ip):
            error = "登录失败次数过多，请稍后再试"
        else:
            user = authenticate(request, username=username, password=password)
            if user is None:
                throttle.failed(username, ip)
                error = "用户名或密码错误"
            else:
                throttle.succeeded(username)
                login(request, user)
                return redirect(request.GET.get("next") or "home")
    return render(request, "xuefen/login.html", {"error": error}, status=429 if "过多" in error else 200)


@require_http_methods(["POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")
