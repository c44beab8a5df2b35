"""Login throttling per username and per address: after N failures within
the lock window, further attempts are refused until the window passes.

* per username (case-insensitive): ``LOGIN_MAX_FAILURES`` failures lock the
  account name, from any address;
* per address: four times as many, since a whole school may share one
  address.  (Behind a reverse proxy the address must be the client's, see
  ``views.common.client_ip``.)

A successful login clears the failures recorded against that username; a
refused attempt during a lock is not counted, so the lock ends on time.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from xuefen.web.models import LoginFailure


def _key(username: str) -> str:
    return username.strip().lower()[:150]


def locked(username: str, ip: str | None) -> bool:
    since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_LOCK_SECONDS)
    recent = LoginFailure.objects.filter(at__gte=since)
    by_user = recent.filter(username=_key(username)).count()
    by_ip = recent.filter(ip=ip).count() if ip else 0
    return by_user >= settings.LOGIN_MAX_FAILURES or by_ip >= settings.LOGIN_MAX_FAILURES * 4


def failed(username: str, ip: str | None) -> None:
    LoginFailure.objects.create(username=_key(username), ip=ip)
    # Keep the table small: failures older than the window no longer matter.
    stale = timezone.now() - dt.timedelta(seconds=settings.LOGIN_LOCK_SECONDS)
    LoginFailure.objects.filter(at__lt=stale).delete()


def succeeded(username: str) -> None:
    LoginFailure.objects.filter(username=_key(username)).delete()
