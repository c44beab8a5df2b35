"""The system administrator's changes to the organisation tree: new units,
each unit's policy binding and options, declaration windows.

Each change is one transaction with an audit entry (before and after), and
re-evaluates what it affects: a binding or an option changes the verdicts of
every teacher under the unit, so ``reevaluate`` runs over that subtree before
the transaction ends — the stored results and tallies never show the old
policy's figures under the new setting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from xuefen.policy.loader import default_registry
from xuefen.policy.schema import Policy
from xuefen.web import permissions as perm
from xuefen.web.models import Org, OrgKind
from xuefen.web.services import audit
from xuefen.web.services.base import Actor, Denied, ServiceError
from xuefen.web.services.reevaluate import Outcome, reevaluate


@dataclass(frozen=True)
class OrgSettings:
    policy: str
    options: dict[str, str]
    months: list[int]


def policies() -> dict[str, Policy]:
    return dict(sorted(default_registry().policies.items()))


def _settings(org: Org) -> dict[str, Any]:
    return {"policy": org.policy, "policy_options": dict(org.policy_options or {}),
            "declaration_months": list(org.declaration_months or [])}


def _check(new: OrgSettings) -> None:
    if new.policy:
        known = policies()
        if new.policy not in known:
            raise ServiceError(f"没有编号为 {new.policy} 的政策")
        declared = {o.id: o for o in known[new.policy].options}
        for key, value in new.options.items():
            if key not in declared:
                raise ServiceError(f"政策 {new.policy} 没有选项“{key}”")
            if value not in declared[key].choices:
                raise ServiceError(f"选项“{declared[key].label}”没有取值“{value}”")
    elif new.options:
        raise ServiceError("未绑定政策的单位不能设置政策选项")
    if any(m < 1 or m > 12 for m in new.months):
        raise ServiceError("申报月份须在 1–12 之间")


@transaction.atomic
def update_org(actor: Actor, org_id: int, new: OrgSettings) -> Outcome | None:
    """Bind a policy (or none), set its options and the declaration months;
    re-evaluates the unit's teachers when the binding or the options changed."""
    if not perm.can_administer(actor.user):
        raise Denied("只有系统管理员可以修改单位设置")
    _check(new)
    org = Org.objects.select_for_update().get(pk=org_id)
    before = _settings(org)
    org.policy = new.policy
    # Options equal to the policy's default are stored too: the explanation
    # names the choice applied either way, and the record shows who chose it.
    org.policy_options = dict(sorted(new.options.items()))
    org.declaration_months = sorted(set(new.months))
    after = _settings(org)
    if after == before:
        return None
    org.save(update_fields=["policy", "policy_options", "declaration_months"])
    audit.log(actor.user, "org_update", org, before=before, after=after, ip=actor.ip, org_path=org.path)
    if (before["policy"], before["policy_options"]) != (after["policy"], after["policy_options"]):
        return reevaluate(org, bound_here=True)
    return None


@transaction.atomic
def create_org(actor: Actor, name: str, kind: str, parent: Org | None) -> Org:
    if not perm.can_administer(actor.user):
        raise Denied("只有系统管理员可以新建单位")
    name = name.strip()
    if not name:
        raise ServiceError("单位名称不能为空")
    if kind not in OrgKind.values:
        raise ServiceError(f"未知的单位类型：{kind}")
    if parent is None and kind not in (OrgKind.PROVINCE, OrgKind.CITY):
        raise ServiceError("只有省、市可以作为顶层单位")
    if parent is not None and parent.kind in (OrgKind.SCHOOL, OrgKind.INSTITUTION):
        raise ServiceError(f"“{parent.name}”是{parent.get_kind_display()}，其下不能再设单位")
    org = Org.objects.create(name=name, kind=kind, parent=parent)
    audit.log(actor.user, "org_create", org, after={"name": name, "kind": kind,
                                                    "parent": parent.name if parent else ""},
              ip=actor.ip, org_path=org.path)
    return org
