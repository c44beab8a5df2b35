"""The user's own account: password change (on Django's form, which checks
the old password; the change itself is services.accounts.change_password)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from xuefen.web.services import accounts
from xuefen.web.services.base import Actor, ServiceError
from xuefen.web.views.common import client_ip


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accounts.change_password(Actor(request.user, client_ip(request)), request.user,
                                     form.cleaned_data["new_password1"])
        except ServiceError as exc:
            form.add_error("new_password1", str(exc))
        else:
            # The session goes on under the new password; other sessions end.
            update_session_auth_hash(request, request.user)  # type: ignore[arg-type]
            messages.success(request, _("密码已修改"))
            return redirect("home")
    return render(request, "xuefen/password_change.html", {"form": form}, status=400 if form.errors else 200)
