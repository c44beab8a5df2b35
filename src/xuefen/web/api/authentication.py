"""API authentication: short-lived tokens, stored only as digests.

A token pair is obtained only by a user already logged in through the
throttled login page (``POST /api/token/``), never by sending a password to
the API, so the login throttle and the second factor cannot be bypassed.

* The database holds SHA-256 digests (``ApiToken.digest``), never a token: a
  copy of the database gives no access (issue 19 item 10; ASVS V3.5.2).
* An access token lives ``API_TOKEN_HOURS``; its refresh token
  ``API_REFRESH_DAYS`` and buys one new pair (``POST /api/token/refresh/``),
  after which both old ones are void.
* Logout and password change delete every token of the user
  (services.accounts.end_sessions).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from xuefen.web.models import ApiToken


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue(user: Any) -> tuple[ApiToken, str, str]:
    """A new pair for ``user``, replacing any she had; the keys are returned
    once and never stored."""
    key, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        ApiToken.objects.filter(user=user).delete()
        token = ApiToken.objects.create(
            user=user, digest=token_digest(key), refresh_digest=token_digest(refresh),
            expires=now + dt.timedelta(hours=settings.API_TOKEN_HOURS),
            refresh_expires=now + dt.timedelta(days=settings.API_REFRESH_DAYS))
    return token, key, refresh


def refresh_pair(refresh: str) -> tuple[ApiToken, str, str]:
    with transaction.atomic():
        old = (ApiToken.objects.select_for_update().select_related("user")
               .filter(refresh_digest=token_digest(refresh)).first())
        if old is None or old.refresh_expires < timezone.now() or not old.user.is_active:
            raise exceptions.AuthenticationFailed("刷新令牌无效或已过期，请登录后在 /api/token/ 重新生成")
        return issue(old.user)


class ExpiringTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("令牌格式不正确")
        try:
            key = auth[1].decode()
        except UnicodeError as e:
            raise exceptions.AuthenticationFailed("令牌格式不正确") from e
        token = ApiToken.objects.select_related("user").filter(digest=token_digest(key)).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("令牌无效")
        if token.expires < timezone.now():
            raise exceptions.AuthenticationFailed("令牌已过期，请用刷新令牌在 /api/token/refresh/ 换取新令牌")
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


class TokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """How the OpenAPI file describes the scheme: ``Authorization: Token <key>``."""

    target_class = "xuefen.web.api.authentication.ExpiringTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "令牌认证：`Token <令牌>`；令牌由已登录的会话在 /api/token/ 生成，"
                               "数小时后过期，可用刷新令牌在 /api/token/refresh/ 换取新令牌"}
