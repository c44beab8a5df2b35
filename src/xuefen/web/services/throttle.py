"""Login throttling per username and per address: after N failures within
the lock window, further attempts are refused until the window passes."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from xuefen.web.models import LoginFailure


def locked(username: str, ip: str | None) -> bool:
    since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_LOCK_SECONDS)
    recent = LoginFailure.objects.filter(at__gte=since)
    by_user = recent.filter(username=username.lower()).count()
    by_ip = recent.filter(ip=ip).count() if ip else 0
    # An address gets more room than an account: one school shares an address.
    return by_user >= settings.LOGIN_MAX_FAILURES or by_ip >= settings.LOGIN_MAX_FAILURES * 4


def failed(username: str, ip: str | None) -> None:
    LoginFailure.objects.create(username=username.lower(), ip=ip)


def succeeded(username: str) -> None:
    LoginFailure.objects.filter(username=username.lower()).delete()


__all__ = ["Q", "failed", "locked", "succeeded"]
