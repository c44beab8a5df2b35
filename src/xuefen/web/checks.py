"""Deployment checks of the security area (``xuefen manage check --deploy``)."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def security_settings(app_configs: Any, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    if not settings.PRODUCTION:
        return problems
    if not (os.environ.get("XUEFEN_ID_KEYS") and os.environ.get("XUEFEN_ID_HMAC_KEY")):
        problems.append(Error("生产环境须设置 XUEFEN_ID_KEYS 与 XUEFEN_ID_HMAC_KEY（身份证号加密与检索密钥）",
                              id="xuefen.E001"))
    if not settings.AUDIT_ANCHOR_FILE:
        problems.append(Warning("未设置 XUEFEN_AUDIT_ANCHOR_FILE：审计锚点只写入数据库，建议另存到数据库之外的存储",
                                id="xuefen.W001"))
    return problems
