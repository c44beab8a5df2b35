"""抽检 (朝阳 第三十条: 区县对学分记录进行抽查; 山东 第十四条): the district
office draws a sample of the counting records under its district by a rule
and a seed, records each result, and revokes a record found untrue
(山东 第二十三条) from the same page.

The draw is reproducible: the pool is the counting records matching the rule
in id order, and ``random.Random(seed).sample`` picks from it, so the rule
and the seed stored with the check replay it."""

from __future__ import annotations

import random
from typing import Any

from django.db import transaction
from django.utils import timezone

from xuefen.web import permissions as perm
from xuefen.web.models import Org, Record, Source, SpotCheck, SpotCheckItem
from xuefen.web.services import audit, ledger
from xuefen.web.services.base import Actor, Conflict, Denied, ServiceError

MAX_SAMPLE = 500


def pool(org: Org, rule: dict[str, Any]) -> list[int]:
    records = Record.objects.filter(teacher__school__path__startswith=org.path, status__in=perm.COUNTING)
    if rule.get("year"):
        records = records.filter(year=int(rule["year"]))
    if rule.get("source"):
        records = records.filter(source=rule["source"])
    if rule.get("category"):
        records = records.filter(credit_category=rule["category"])
    return list(records.order_by("pk").values_list("pk", flat=True))


def _rule(year: str, source: str, category: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if year:
        if not year.isdigit():
            raise ServiceError(f"年度“{year}”不是数字")
        rule["year"] = int(year)
    if source:
        if source not in Source.values:
            raise ServiceError(f"未知来源：{source}")
        rule["source"] = source
    if category:
        rule["category"] = category
    return rule


@transaction.atomic
def draw(actor: Actor, org: Org, size: int, seed: int | None = None, year: str = "", source: str = "",
         category: str = "") -> SpotCheck:
    if not perm.can_spot_check(actor.user, org):
        raise Denied("只有区县继教办可以在本辖区内抽检")
    if size < 1 or size > MAX_SAMPLE:
        raise ServiceError(f"抽检数量须在 1–{MAX_SAMPLE} 之间")
    rule = _rule(year, source, category)
    candidates = pool(org, rule)
    if not candidates:
        raise ServiceError("没有符合条件的已审核记录可供抽检")
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    # The seed comes from the OS; a seeded generator lets the draw be replayed from the rule and the seed.
    chosen = sorted(random.Random(seed).sample(candidates, min(size, len(candidates))))  # noqa: S311
    check = SpotCheck.objects.create(org=org, actor=actor.user, seed=seed, size=size, rule=rule,
                                     pool=len(candidates))
    SpotCheckItem.objects.bulk_create([SpotCheckItem(spot_check=check, record_id=pk) for pk in chosen])
    audit.log(actor.user, "spot_check", org, after={"seed": seed, "rule": rule, "records": chosen,
                                                    "pool": len(candidates)},
              ip=actor.ip, org_path=org.path)
    return check


@transaction.atomic
def record_result(actor: Actor, item_id: int, result: str, note: str, revoke: bool = False) -> SpotCheckItem:
    """One sampled record's result; ``revoke`` (only with 不属实) revokes the
    record through ``ledger.revoke_record`` in the same transaction."""
    item = SpotCheckItem.objects.select_for_update().select_related("spot_check__org", "record").get(pk=item_id)
    if not perm.can_spot_check(actor.user, item.spot_check.org):
        raise Denied("无权处理该抽检")
    if result not in (SpotCheckItem.Result.PASSED, SpotCheckItem.Result.FAILED):
        raise ServiceError("请选择核查结果")
    note = note.strip()
    if result == SpotCheckItem.Result.FAILED and not note:
        raise ServiceError("核查不属实须说明理由")
    if revoke and result != SpotCheckItem.Result.FAILED:
        raise Conflict("只有核查不属实的记录可以撤销")
    before = {"result": item.result, "note": item.note}
    item.result, item.note = result, note
    item.checked_by, item.checked_at = actor.user, timezone.now()
    item.save()
    audit.log(actor.user, "spot_check_result", item.record, before=before, after={"result": result, "note": note},
              comment=note, ip=actor.ip, org_path=item.spot_check.org.path)
    if revoke:
        ledger.revoke_record(actor, item.record_id, f"抽检不属实：{note}")
    return item
