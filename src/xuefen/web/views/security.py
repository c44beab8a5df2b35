"""Account security pages and middleware: the password change page (forced
after an administrator set the password), the optional TOTP second factor,
the administrator's login locks page; session timeouts and the CSP header."""

from __future__ import annotations

from collections.abc import Callable

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from xuefen.web import permissions as perm
from xuefen.web.models import AccountState
from xuefen.web.services import accounts, audit, throttle
from xuefen.web.services.ledger import Actor, ServiceError
from xuefen.web.views.common import client_ip

# --- middleware -------------------------------------------------------------

# Self only: scripts and styles come from static files (no inline code, no
# eval); the QR code of the TOTP page is a data: image.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


class ContentSecurityPolicy:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


# Paths a user who must change her password may still reach.
_FREE = ("/static/", "/i18n/", "/logout/", "/login/", "/account/password/")
_TOUCH_EVERY = 60  # seconds: the idle clock is written at most once a minute


class SessionGuard:
    """Ends a session that is idle for ``SESSION_IDLE_SECONDS`` (30 min),
    older than ``SESSION_ABSOLUTE_SECONDS`` (12 h), or whose user logged out
    or changed her password elsewhere since (the epoch moved on); sends a
    user whose password was set by an administrator to the change page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            # One query per request for both checks.
            epoch, must_change = AccountState.objects.filter(user=user).values_list(
                "session_epoch", "must_change_password").first() or (0, False)
            ended = self._ended(request, epoch)
            if ended:
                logout(request)
                messages.info(request, ended)
                if request.path.startswith("/api/"):
                    return self.get_response(request)
                return redirect(f"{reverse('login')}?next={request.path}")
            if must_change and not request.path.startswith(_FREE):
                if request.path.startswith("/api/"):
                    return HttpResponse("须先修改密码", status=403, content_type="text/plain; charset=utf-8")
                return redirect("account-password")
        return self.get_response(request)

    def _ended(self, request: HttpRequest, current: int) -> str:
        session = request.session
        now = int(timezone.now().timestamp())
        login_at, seen = session.get("xuefen_login_at"), session.get("xuefen_seen")
        epoch = session.get("xuefen_epoch")
        if login_at is None or seen is None or epoch is None:
            return "会话无效，请重新登录"
        if now - int(login_at) > settings.SESSION_ABSOLUTE_SECONDS:
            return "登录已超过 12 小时，请重新登录"
        if now - int(seen) > settings.SESSION_IDLE_SECONDS:
            return "长时间未操作，已自动退出，请重新登录"
        if int(epoch) != current:
            return "您已在别处退出或修改了密码，请重新登录"
        if now - int(seen) >= _TOUCH_EVERY:
            session["xuefen_seen"] = now
        return ""


# --- pages ------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    forced = accounts.state(request.user).must_change_password
    error = ""
    if request.method == "POST":
        new, again = request.POST.get("new", ""), request.POST.get("again", "")
        if new != again:
            error = "两次输入的新密码不一致"
        else:
            try:
                accounts.change_password(Actor(request.user, client_ip(request)), request.user,  # type: ignore[arg-type]
                                         new, old=request.POST.get("old", ""))
            except ServiceError as e:
                error = str(e)
            else:
                # Every session ended, this one too: log in again with the new password.
                logout(request)
                messages.success(request, _("密码已修改，请用新密码重新登录"))
                return redirect("login")
    return render(request, "xuefen/account_password.html",
                  {"forced": forced, "error": error, "help": _password_help()}, status=400 if error else 200)


def _password_help() -> list[str]:
    from django.contrib.auth import password_validation

    return list(password_validation.password_validators_help_texts())


def _qr_data_uri(device: TOTPDevice) -> str:
    qr = segno.make(device.config_url, error="m")
    return str(qr.svg_data_uri(scale=4, border=2))


@login_required
@require_http_methods(["GET", "POST"])
def otp_setup(request: HttpRequest) -> HttpResponse:
    if not perm.can_use_second_factor(request.user):
        raise Http404
    confirmed = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
    error = ""
    if request.method == "POST" and request.POST.get("action") == "remove" and confirmed is not None:
        if not confirmed.verify_token(request.POST.get("token", "").strip()):
            error = "动态口令不正确"
        else:
            confirmed.delete()
            audit.log(request.user, "otp_removed", request.user, ip=client_ip(request))
            messages.success(request, _("已停用动态口令"))
            return redirect("account-otp")
    pending = None
    if confirmed is None:
        pending = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
        if pending is None:
            pending = TOTPDevice.objects.create(user=request.user, name="TOTP", confirmed=False)
        if request.method == "POST" and request.POST.get("action") == "confirm":
            if pending.verify_token(request.POST.get("token", "").strip()):
                pending.confirmed = True
                pending.save(update_fields=["confirmed"])
                otp_login(request, pending)
                audit.log(request.user, "otp_enabled", request.user, ip=client_ip(request))
                messages.success(request, _("已启用动态口令：以后登录须同时输入动态口令"))
                return redirect("account-otp")
            error = "动态口令不正确，请确认手机时间准确后重试"
    context = {"confirmed": confirmed, "error": error}
    if pending is not None:
        context.update(qr=_qr_data_uri(pending), secret=_base32(pending))
    return render(request, "xuefen/account_otp.html", context, status=400 if error else 200)


def _base32(device: TOTPDevice) -> str:
    import base64

    text = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


@login_required
def locks(request: HttpRequest) -> HttpResponse:
    if not perm.can_manage_accounts(request.user):
        raise Http404
    return render(request, "xuefen/account_locks.html", {"locks": throttle.current_locks()})


@login_required
@require_POST
def unlock(request: HttpRequest) -> HttpResponse:
    if not perm.can_manage_accounts(request.user):
        raise Http404
    username = request.POST.get("username", "")
    accounts.unlock(Actor(request.user, client_ip(request)), username)
    messages.success(request, _("已解除“%(user)s”的登录锁定") % {"user": username})
    return redirect("account-locks")
