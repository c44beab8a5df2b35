"""Login throttling (等保2.0 8.1.4.1 b 登录失败处理; ASVS V2.2.1).

* per username **and** client address together: ``LOGIN_MAX_FAILURES``
  failures from one address lock that username *at that address* for
  ``LOGIN_LOCK_SECONDS``.  A stranger cannot lock anyone out from elsewhere,
  and colleagues behind one school NAT do not lock each other (issue 19
  item 9);
* per address over many usernames (password spraying): failures for
  ``LOGIN_SPRAY_USERNAMES`` different usernames lock the address.

The address is the client's as ``views.common.client_ip`` sees it: the
forwarded one only from configured proxies.  A locked user gets in with her
second factor (views.auth) or after an administrator's unlock
(services.accounts.unlock).  A successful login clears the failures of that
username at that address; a refused attempt during a lock is not counted, so
the lock ends on time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Min
from django.utils import timezone

from xuefen.web.models import LoginFailure


def _key(username: str) -> str:
    return username.strip().lower()[:150]


@dataclass(frozen=True)
class Lock:
    seconds: int  # until the lock ends
    spray: bool  # the address as a whole, not this username

    @property
    def minutes(self) -> int:
        return max(1, -(-self.seconds // 60))


def _window() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=settings.LOGIN_LOCK_SECONDS)


def _remaining(oldest: dt.datetime) -> int:
    return max(1, int((oldest + dt.timedelta(seconds=settings.LOGIN_LOCK_SECONDS) - timezone.now()).total_seconds()))


def locked(username: str, ip: str | None) -> Lock | None:
    since = _window()
    mine = list(LoginFailure.objects.filter(at__gte=since, username=_key(username), ip=ip)
                .order_by("-at").values_list("at", flat=True)[: settings.LOGIN_MAX_FAILURES])
    if len(mine) >= settings.LOGIN_MAX_FAILURES:
        # The lock lasts until the oldest of the last N failures leaves the window.
        return Lock(_remaining(mine[-1]), spray=False)
    if ip:
        names = (LoginFailure.objects.filter(at__gte=since, ip=ip).values("username")
                 .annotate(first=Min("at")).order_by("-first"))
        firsts = [row["first"] for row in names[: settings.LOGIN_SPRAY_USERNAMES]]
        if len(firsts) >= settings.LOGIN_SPRAY_USERNAMES:
            return Lock(_remaining(firsts[-1]), spray=True)
    return None


def failed(username: str, ip: str | None) -> Lock | None:
    """Count a failure; the lock it starts, if it starts one."""
    LoginFailure.objects.create(username=_key(username), ip=ip)
    # Keep the table small: failures older than the window no longer matter.
    LoginFailure.objects.filter(at__lt=_window()).delete()
    return locked(username, ip)


def succeeded(username: str, ip: str | None) -> None:
    LoginFailure.objects.filter(username=_key(username), ip=ip).delete()


def unlock(username: str) -> int:
    """Forget the failures of this username from every address."""
    deleted, _ = LoginFailure.objects.filter(username=_key(username)).delete()
    return deleted


def current_locks() -> list[tuple[str, str | None, Lock]]:
    """The username–address pairs locked now, for the administrator's page."""
    since = _window()
    pairs = (LoginFailure.objects.filter(at__gte=since).values_list("username", "ip").distinct())
    out = []
    for username, ip in pairs:
        lock = locked(username, ip)
        if lock is not None and not lock.spray:
            out.append((username, ip, lock))
    return sorted(out, key=lambda p: (p[0], p[1] or ""))
