"""The audit trail: who did what, when, from where, before and after."""

from __future__ import annotations

from typing import Any

from xuefen.web.models import AuditEntry


def log(
    actor: Any,
    action: str,
    obj: Any,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    comment: str = "",
    ip: str | None = None,
    org_path: str = "",
) -> AuditEntry:
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_name=getattr(user, "username", "") if user else "system",
        ip=ip,
        action=action,
        object_type=type(obj).__name__,
        object_id=str(getattr(obj, "pk", obj)),
        org_path=org_path,
        before=before,
        after=after,
        comment=comment,
    )
