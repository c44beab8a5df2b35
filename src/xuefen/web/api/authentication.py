"""API authentication: DRF tokens that expire.

A token is obtained (and rotated) only by a user already logged in through the
throttled login page (``POST /api/token/``), never by sending a password to
the API, so the login throttle cannot be bypassed.  A token older than
``API_TOKEN_MAX_AGE_DAYS`` is refused; the user rotates it to get a new one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication


class ExpiringTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        user, token = super().authenticate_credentials(key)
        max_age = dt.timedelta(days=settings.API_TOKEN_MAX_AGE_DAYS)
        if token.created < timezone.now() - max_age:
            raise exceptions.AuthenticationFailed("令牌已过期，请登录后在 /api/token/ 重新生成")
        return user, token
