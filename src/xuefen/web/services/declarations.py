"""A declaration checked like an import row before it is stored (issue 16
item 4), and the duplicates a reviewer should see.

Refused (errors): a 学分类别 or 主题 the unit's policy does not know; a 登记年度
in the future or before the declaration window — this year and
``settings.DECLARATION_YEARS_BACK`` years before it (default 1: training
finished late last year is declared in this year's first window, 朝阳 附件3
第三十条 opens declarations in March).

Warned (the teacher confirms and submits again): a record that comes to 0
credits under the policy (no rule converts it, or it lacks a fact its rule
needs — the engine's explanation says which); evidence whose SHA-256 is
already attached to another record of hers; the same 培训项目名称 + 学时 +
登记年度 as another record of hers.  The same two duplicate checks are shown
to the reviewer (:func:`duplicate_notes`)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict

from django.conf import settings

from xuefen.engine.words import accepted_categories, accepted_themes
from xuefen.numbers import fmt
from xuefen.web.models import Evidence, Record, Teacher
from xuefen.web.services.base import ServiceError
from xuefen.web.services.evaluation import policy_for
from xuefen.web.wording import explanation


class NeedsConfirmation(ServiceError):
    """Warnings the teacher has not confirmed yet; nothing was stored."""

    def __init__(self, warnings: list[str]) -> None:
        super().__init__("；".join(warnings))
        self.warnings = warnings


def refusals(teacher: Teacher, record: Record, today: dt.date) -> list[str]:
    problems = []
    if record.year > today.year:
        problems.append(f"登记年度 {record.year} 晚于今年（{today.year}），不能申报尚未发生的培训")
    earliest = today.year - settings.DECLARATION_YEARS_BACK
    if record.year < earliest:
        problems.append(f"登记年度 {record.year} 已不在申报范围内（可申报 {earliest}–{today.year} 年）")
    chosen = policy_for(teacher, today)
    if chosen is not None:
        policy = chosen[0]
        # the same words the CLI and the roster import accept: a sub-type written
        # as the category (朝阳 专业选修, 永吉 学区研修) is the policy's own word
        known = accepted_categories(policy)
        if record.category and record.category not in known:
            names = "、".join(c.id for c in policy.categories)
            problems.append(f"学分类别“{record.category}”不属于{policy.short_name}（可选：{names}）")
        themes = accepted_themes(policy)
        if record.theme and themes and record.theme not in themes:
            listed = [t for c in policy.categories for t in c.themes]
            problems.append(f"主题“{record.theme}”不属于{policy.short_name}（可选：{'、'.join(listed)}）")
    return problems


def warnings(teacher: Teacher, record: Record, files: list[tuple[str, bytes, str]]) -> list[str]:
    """What a teacher is asked to confirm before submitting; ``files`` are the
    uploads as the ledger checked and read them (name, content, type)."""
    found = []
    if record.credits == 0:
        why = explanation(record.explanation, record.year, record.title, record.uid)
        found.append(f"按本单位政策，此条记录计 0 学分（{why}）")
    others = teacher.records.exclude(pk=record.pk) if record.pk else teacher.records.all()
    for name, data, _ctype in files:
        digest = hashlib.sha256(data).hexdigest()
        same = Evidence.objects.filter(sha256=digest, record__in=others).select_related("record").first()
        if same is not None:
            found.append(f"证明材料“{name}”与已申报的“{same.record.title or same.record.uid}”的材料完全相同")
    twin = others.filter(title=record.title, hours=record.hours, year=record.year).exclude(title="").first()
    if twin is not None:
        found.append(f"已有同名、同学时、同年度的记录“{twin.title}”（{fmt(twin.hours) if twin.hours is not None else '—'}"
                     f"学时，{twin.year}年，{twin.get_status_display()}）")
    return found


def duplicate_notes(records: list[Record]) -> dict[int, list[str]]:
    """For the reviewer: each record's twins among its teacher's other records
    (same evidence file, or same title + hours + year)."""
    if not records:
        return {}
    teacher_ids = {r.teacher_id for r in records}
    by_digest: dict[tuple[int, str], set[int]] = defaultdict(set)
    for ev in Evidence.objects.filter(record__teacher_id__in=teacher_ids).values("record_id", "sha256",
                                                                                "record__teacher_id"):
        by_digest[(ev["record__teacher_id"], ev["sha256"])].add(ev["record_id"])
    by_fact: dict[tuple[int, str, str, int], set[int]] = defaultdict(set)
    for row in Record.objects.filter(teacher_id__in=teacher_ids).exclude(title="").values(
            "pk", "teacher_id", "title", "hours", "year"):
        by_fact[(row["teacher_id"], row["title"], str(row["hours"]), row["year"])].add(row["pk"])
    mine: dict[int, set[str]] = defaultdict(set)
    for ev in Evidence.objects.filter(record__in=records).values("record_id", "sha256", "record__teacher_id"):
        mine[ev["record_id"]].add(ev["sha256"])
    out: dict[int, list[str]] = {}
    for r in records:
        notes = []
        if any(len(by_digest[(r.teacher_id, d)] - {r.pk}) for d in mine.get(r.pk, ())):
            notes.append("证明材料与该教师的另一条记录完全相同")
        if r.title and len(by_fact[(r.teacher_id, r.title, str(r.hours), r.year)] - {r.pk}):
            notes.append("该教师另有同名、同学时、同年度的记录")
        if notes:
            out[r.pk] = notes
    return out
