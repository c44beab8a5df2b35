"""Request-level guards for reliability (issue 19 items 4 and 5).

* :class:`RequestSizeLimit` refuses a body larger than ``REQUEST_MAX_BYTES``
  from its declared length, before Django reads or spools any of it (one
  request carried 20 × 9 MB of evidence).
* :class:`SessionTouch` keeps the 30-minute idle timeout without writing the
  session on every request: the session is saved (and its expiry pushed on)
  at most once per ``SESSION_TOUCH_SECONDS``.  Saving it on every request made
  every page view a database write, which on SQLite queued behind a long
  import and failed with "database is locked".
* :class:`DatabaseBusy` answers 503 with ``Retry-After`` when the embedded
  database stays locked past its busy timeout, instead of a bare 500.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

Handler = Callable[[HttpRequest], HttpResponse]


def _plain(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class RequestSizeLimit:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _plain(400, "请求长度无效")
        limit = settings.REQUEST_MAX_BYTES
        if length > limit:
            return _plain(413, f"上传内容共 {length // (1024 * 1024)}MB，超过每次请求 {limit // (1024 * 1024)}MB 的上限")
        return self.get_response(request)


class SessionTouch:
    """Placed after SessionMiddleware, so its mark is seen when that one saves."""

    KEY = "_touched"

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.session_key and not session.is_empty():
            now = int(timezone.now().timestamp())  # the clock the session's expiry is computed from
            if now - int(session.get(self.KEY, 0)) >= settings.SESSION_TOUCH_SECONDS:
                session[self.KEY] = now
        return response


class DatabaseBusy:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError) and "locked" in str(exception):
            response = _plain(503, "系统繁忙（数据库正被其他操作占用），请稍后重试")
            response["Retry-After"] = "5"
            return response
        return None
