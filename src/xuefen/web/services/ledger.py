"""Credit ledger transitions: declare, enter, approve (school → district →
city), return, correct, revoke, spot-check.

Each function is one transaction: it locks the record row, checks that the
actor may act and that the record is still in the state the actor saw, moves
it, writes the audit entry, notifies the teacher, and re-evaluates the
teacher.  Two officers approving the same record at once: the second waits
for the lock, then finds the state changed and is refused — the credits
cannot count twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import CharField
from django.utils import timezone

from xuefen.errors import Problem
from xuefen.model import RECORD_FIELDS, parse_record
from xuefen.numbers import fmt
from xuefen.web import limits
from xuefen.web import permissions as perm
from xuefen.web.models import Evidence, Notification, Org, Record, Role, Source, Status, Teacher
from xuefen.web.services import audit

# Re-exported (``as``): callers written before services.base import them from here.
from xuefen.web.services.base import Actor as Actor
from xuefen.web.services.base import Conflict as Conflict
from xuefen.web.services.base import Denied as Denied
from xuefen.web.services.base import ServiceError as ServiceError
from xuefen.web.services.evaluation import FACT_FIELDS, price_records, refresh_result


def _year_open(teacher: Teacher, year: int | None) -> None:
    """A closed year is locked (services.annual; imported here, late, because it imports this module)."""
    from xuefen.web.services.annual import ensure_year_open

    ensure_year_open(teacher, year)


def snapshot(r: Record) -> dict[str, Any]:
    out: dict[str, Any] = {name: _plain(getattr(r, name)) for name in FACT_FIELDS}
    out.update(uid=r.uid, status=r.status, credits=fmt(r.credits), preset_credits=_plain(r.preset_credits),
               version=r.version)
    return out


def _plain(value: Any) -> Any:
    return fmt(value) if isinstance(value, Decimal) else value


def parse_facts(data: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Validate declared facts through the interchange parser, so a form, an
    import row and a JSON file are held to exactly the same rules."""
    raw = {k: v for k, v in data.items() if k in RECORD_FIELDS}
    raw.setdefault("id", data.get("uid") or "tmp")

    def here(key: str, message: str) -> Problem:
        return Problem(message, file=where or None, column=RECORD_FIELDS.get(key, (key,))[0])

    rec, problems = parse_record(raw, here)
    if problems or rec is None:
        raise ServiceError("；".join(str(p) for p in problems))
    facts = {name: getattr(rec, name) for name in FACT_FIELDS}
    facts["preset_credits"] = rec.credits
    out_of_range = limits.problems(facts)
    if out_of_range:
        raise ServiceError("；".join(reason for _, reason in out_of_range))
    return {k: ("" if v is None and isinstance(Record._meta.get_field(k), CharField) else v) for k, v in facts.items()}



# PDF, JPEG, PNG by their first bytes: the declared type and extension mean nothing.
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def _check_evidence(upload: UploadedFile) -> tuple[bytes, str]:
    if (upload.size or 0) > settings.EVIDENCE_MAX_BYTES:  # refused before it is read into memory
        raise ServiceError(f"证明材料“{_shown_name(upload)}”超过 {settings.EVIDENCE_MAX_BYTES // (1024 * 1024)}MB")
    data = upload.read(settings.EVIDENCE_MAX_BYTES + 1)
    if len(data) > settings.EVIDENCE_MAX_BYTES:
        raise ServiceError(f"证明材料“{_shown_name(upload)}”超过 {settings.EVIDENCE_MAX_BYTES // (1024 * 1024)}MB")
    for magic, ctype in _MAGIC:
        if data.startswith(magic):
            return data, ctype
    raise ServiceError(f"证明材料“{_shown_name(upload)}”不是 PDF、JPG 或 PNG 文件")


def _shown_name(upload: UploadedFile) -> str:
    """The name a user gave the file, as a label only: never a path (the
    stored file is named by its digest)."""
    return PurePath((upload.name or "file").replace("\\", "/")).name[:200] or "file"


def _checked_uploads(record: Record | None, uploads: list[UploadedFile]) -> list[tuple[str, bytes, str]]:
    """Every upload checked before anything is stored (issue 19 item 4): at
    most EVIDENCE_MAX_FILES files and EVIDENCE_MAX_TOTAL_BYTES per
    declaration, counting what a resubmitted one already has."""
    held = list(record.evidence.values_list("size", flat=True)) if record is not None and record.pk else []
    if len(held) + len(uploads) > settings.EVIDENCE_MAX_FILES:
        raise ServiceError(f"每条申报最多附 {settings.EVIDENCE_MAX_FILES} 个证明材料"
                           + (f"（已有 {len(held)} 个）" if held else ""))
    checked = []
    total = sum(held)
    for upload in uploads:
        data, ctype = _check_evidence(upload)
        total += len(data)
        if total > settings.EVIDENCE_MAX_TOTAL_BYTES:
            raise ServiceError(f"每条申报的证明材料合计不能超过 {settings.EVIDENCE_MAX_TOTAL_BYTES // (1024 * 1024)}MB")
        checked.append((_shown_name(upload), data, ctype))
    return checked


def _attach(record: Record, checked: list[tuple[str, bytes, str]]) -> None:
    from django.core.files.base import ContentFile

    for name, data, ctype in checked:
        digest = hashlib.sha256(data).hexdigest()
        ev = Evidence(record=record, original_name=name, content_type=ctype, size=len(data), sha256=digest)
        ext = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}[ctype]
        ev.file.save(f"{digest[:16]}.{ext}", ContentFile(data), save=False)
        ev.save()


def _next_uid(teacher: Teacher, prefix: str) -> str:
    n = teacher.records.filter(uid__startswith=prefix).count() + 1
    while teacher.records.filter(uid=f"{prefix}{n:04d}").exists():
        n += 1
    return f"{prefix}{n:04d}"


def notice(record: Record, reason: str = "") -> str:
    """The teacher's notification, worded once: a state's label already says
    what happened ("已认定", "学校已审核"), so nothing is put before it (it
    used to read "已已认定", "已学校已审核")."""
    title = record.title or record.uid
    if record.status == Status.RETURNED:
        return f"您的记录“{title}”被退回：{reason}"
    return f"您的记录“{title}”现为“{record.get_status_display()}”"


def _notify(record: Record, message: str) -> None:
    if record.teacher.user_id:
        Notification.objects.create(user_id=record.teacher.user_id, record=record, message=message)


def declaration_open(teacher: Teacher, today: dt.date | None = None) -> tuple[bool, list[int]]:
    """朝阳 附件3 第三十条: declarations in March and September; configurable
    per jurisdiction node (empty = always open)."""
    today = today or timezone.localdate()
    months: list[int] = []
    for node in reversed(teacher.school.ancestors()):
        if node.declaration_months:
            months = [int(m) for m in node.declaration_months]
            break
    return (not months or today.month in months), months


@transaction.atomic
def declare_record(actor: Actor, teacher: Teacher, facts: dict[str, Any], uploads: list[UploadedFile],
                   today: dt.date | None = None, warn: bool = False) -> Record:
    """``warn``: stop with ``NeedsConfirmation`` when the declaration draws a
    warning (0 credits, a duplicate) — the page and the API ask the teacher
    first; the refusals of services.declarations apply always."""
    if not perm.can_declare(actor.user, teacher):
        raise Denied("只能为本人申报")
    is_open, months = declaration_open(teacher, today)
    if not is_open:
        raise ServiceError(f"当前不在申报期（每年{'、'.join(f'{m}月' for m in months)}）")
    if not uploads:
        raise ServiceError("申报须附证明材料（PDF、JPG 或 PNG）")
    parsed = parse_facts(facts)
    checked = _checked_uploads(None, uploads)
    _year_open(teacher, parsed["year"])
    record = Record(teacher=teacher, uid=_next_uid(teacher, "D"), source=Source.DECLARATION,
                    status=Status.PENDING, created_by=actor.user, **parsed)
    price_records(teacher, [record])
    _checked(teacher, record, checked, today or timezone.localdate(), warn)
    record.save()
    _attach(record, checked)
    audit.log(actor.user, "declare", record, after=snapshot(record), ip=actor.ip, org_path=teacher.school.path)
    return record


@transaction.atomic
def enter_school_record(actor: Actor, teacher: Teacher, facts: dict[str, Any]) -> Record:
    """校本研修 and other school-organised credits, entered by the school officer
    (赤峰 第十五条; 永吉 学分管理专员).  They start as school-approved."""
    if not perm.can_enter_school_record(actor.user, teacher):
        raise Denied("只能为本校教师录入")
    record = _new_record(actor, teacher, _next_uid(teacher, "S"), facts, Source.SCHOOL, Status.SCHOOL_APPROVED,
                         "school_entry")
    refresh_result(teacher)
    return record


def _new_record(actor: Actor, teacher: Teacher, uid: str, facts: dict[str, Any], source: str, status: str,
                action: str, comment: str = "") -> Record:
    """The common write of a record an office or a programme creates: the facts
    through the interchange parser, priced by the engine, saved, logged."""
    parsed = parse_facts(facts)
    _year_open(teacher, parsed["year"])  # a closed year takes no new record (services.annual)
    record = Record(teacher=teacher, uid=uid, source=source, status=status, created_by=actor.user, **parsed)
    price_records(teacher, [record])
    record.save()
    audit.log(actor.user, action, record, after=snapshot(record), comment=comment, ip=actor.ip,
              org_path=teacher.school.path)
    return record


def enter_training_records(actor: Actor, items: list[tuple[Teacher, str, dict[str, Any]]], status: str,
                           comment: str) -> list[Record]:
    """Records of a closed class or an accepted 校本研修 project (issue 15),
    one per (teacher, stable uid, facts), source 培训项目.  Called only by
    services/training.py inside its transaction, after its permission and
    state checks (the class's 班主任 / the accepting office); the teachers are
    then re-evaluated together, as an import's are."""
    from xuefen.web.services.evaluation import refresh_results

    records = [_new_record(actor, teacher, uid, facts, Source.TRAINING, status, "training_credit", comment)
               for teacher, uid, facts in items]
    for r in records:
        _notify(r, f"培训“{r.title}”的学分已登记：{fmt(r.credits)} 学分（{r.get_status_display()}）")
    refresh_results({t.pk: t for t, _uid, _facts in items}.values())
    return records


def _locked(record_id: int, expected_version: int | None, actor: Actor | None = None, action: str = "") -> Record:
    """The record, row-locked.  Scope is checked before the version, so a
    stale-version answer never tells an outsider that a record exists."""
    record = Record.objects.select_for_update().select_related("teacher__school").get(pk=record_id)
    if actor is not None and not perm.can_transition(actor.user, record, action):
        raise Denied("无权处理该记录")
    if expected_version is not None and record.version != expected_version:
        raise Conflict("该记录已被他人处理，请刷新后再试")
    if action != "revoke":  # a revocation (fraud) reaches into a closed year: services.annual
        _year_open(record.teacher, record.year)
    return record


def _held_by_actor(actor: Actor, record: Record, verb: str) -> None:
    """Issue 19 item 7: only the level holding a record (permissions.REVIEW_CHAIN)
    may return or correct it; a school officer cannot pull back a record the
    district has already approved."""
    if not perm.holds(actor.user, record):
        holder = perm.HOLDER.get(record.status)
        where = f"，现由{Role(holder).label}处理" if holder else ""
        raise Conflict(f"记录当前状态为“{record.get_status_display()}”{where}，不能{verb}")


def _settle(actor: Actor, record: Record, action: str, before: dict[str, Any], comment: str, message: str) -> Record:
    """The common end of every officer's action: bump the version, save, log
    before/after, tell the teacher, re-evaluate her."""
    record.version += 1
    record.save()
    audit.log(actor.user, action, record, before=before, after=snapshot(record), comment=comment, ip=actor.ip,
              org_path=record.teacher.school.path)
    _notify(record, message)
    refresh_result(record.teacher)
    return record


@transaction.atomic
def transition(actor: Actor, record_id: int, action: str, expected_version: int | None = None,
               comment: str = "") -> Record:
    """school_approve / district_approve / certify."""
    if action not in perm.TRANSITIONS:
        raise ServiceError(f"未知操作 {action}")
    record = _locked(record_id, expected_version, actor, action)
    step = perm.TRANSITIONS[action]
    if record.status != step["from"]:
        raise Conflict(f"记录当前状态为“{record.get_status_display()}”，不能执行该操作")
    before = snapshot(record)
    record.status = step["to"]
    record.status_reason = comment
    return _settle(actor, record, action, before, comment, notice(record))


@transaction.atomic
def return_record(actor: Actor, record_id: int, comment: str, expected_version: int | None = None) -> Record:
    if not comment.strip():
        raise ServiceError("退回须填写理由")
    record = _locked(record_id, expected_version, actor, "return")
    _held_by_actor(actor, record, "退回")
    before = snapshot(record)
    record.status = Status.RETURNED
    record.status_reason = comment.strip()
    return _settle(actor, record, "return", before, comment,
                   f"您的记录“{record.title or record.uid}”被退回：{comment.strip()}")


@transaction.atomic
def correct_record(actor: Actor, record_id: int, changes: dict[str, Any], comment: str,
                   expected_version: int | None = None) -> Record:
    """An officer corrects the facts before approving; the teacher is told."""
    if not comment.strip():
        raise ServiceError("更正须说明理由")
    record = _locked(record_id, expected_version, actor, "correct")
    _held_by_actor(actor, record, "更正")
    before = snapshot(record)
    current = {name: getattr(record, name) for name in FACT_FIELDS}
    current["credits"] = record.preset_credits
    current.update({k: v for k, v in changes.items() if k in RECORD_FIELDS and k != "id"})
    parsed = parse_facts({k: ("" if v is None else v) for k, v in current.items()})
    for key, value in parsed.items():
        setattr(record, key, value)
    _year_open(record.teacher, record.year)
    price_records(record.teacher, [record])
    return _settle(actor, record, "correct", before, comment,
                   f"您的记录“{record.title or record.uid}”已被更正：{comment.strip()}")


@transaction.atomic
def revoke_record(actor: Actor, record_id: int, reason: str, expected_version: int | None = None) -> Record:
    """山东 第二十三条: credits obtained by fraud are cancelled.  The record and
    the reason stay; the teacher is re-evaluated without it."""
    if not reason.strip():
        raise ServiceError("撤销须填写理由")
    record = _locked(record_id, expected_version, actor, "revoke")
    if record.status == Status.REVOKED:
        raise Conflict("记录已撤销")
    before = snapshot(record)
    record.status = Status.REVOKED
    record.status_reason = reason.strip()
    return _settle(actor, record, "revoke", before, reason,
                   f"您的记录“{record.title or record.uid}”已被撤销：{reason.strip()}")


def _checked(teacher: Teacher, record: Record, files: list[tuple[str, bytes, str]], today: dt.date, warn: bool) -> None:
    """Refusals, then (when asked) the warnings to confirm; ``files`` were
    checked and read by :func:`_checked_uploads` already, so a file that is
    not evidence is an error before any warning."""
    from xuefen.web.services import declarations

    refused = declarations.refusals(teacher, record, today)
    if refused:
        raise ServiceError("；".join(refused))
    if warn:
        found = declarations.warnings(teacher, record, files)
        if found:
            raise declarations.NeedsConfirmation(found)


@transaction.atomic
def resubmit_record(actor: Actor, record_id: int, facts: dict[str, Any], uploads: list[UploadedFile],
                    warn: bool = False) -> Record:
    """A teacher fixes a returned declaration and sends it again."""
    record = _locked(record_id, None)
    if not (perm.role(actor.user) == Role.TEACHER and record.teacher.user_id == actor.user.pk):
        raise Denied("只能修改本人的申报")
    if record.status != Status.RETURNED:
        raise Conflict("只有被退回的申报可以修改后重新提交")
    before = snapshot(record)
    for key, value in parse_facts(facts).items():
        setattr(record, key, value)
    checked = _checked_uploads(record, uploads)
    _year_open(record.teacher, record.year)
    price_records(record.teacher, [record])
    _checked(record.teacher, record, checked, timezone.localdate(), warn)
    record.status = Status.PENDING
    record.status_reason = ""
    record.version += 1
    record.save()
    _attach(record, checked)
    audit.log(actor.user, "resubmit", record, before=before, after=snapshot(record), ip=actor.ip,
              org_path=record.teacher.school.path)
    return record


@transaction.atomic
def spot_check(actor: Actor, org: Org, size: int, seed: int | None = None) -> list[Record]:
    """抽检 (朝阳 第三十条; 山东 第十四条): a random sample of the approved
    records under the district, recorded in the audit log so the draw can be
    shown later."""
    p = perm.profile(actor.user)
    if p is None or p.role != Role.DISTRICT_OFFICE or p.org is None or not org.path.startswith(p.org.path):
        raise Denied("只有区县继教办可以在本辖区内抽检")
    pool = list(Record.objects.filter(teacher__school__path__startswith=org.path,
                                      status__in=perm.COUNTING).values_list("pk", flat=True).order_by("pk"))
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    # The seed comes from the OS; a seeded generator lets the draw be replayed from the audit log.
    chosen = sorted(random.Random(seed).sample(pool, min(size, len(pool))))  # noqa: S311
    audit.log(actor.user, "spot_check", org, after={"seed": seed, "records": chosen, "pool": len(pool)},
              ip=actor.ip, org_path=org.path)
    return list(Record.objects.filter(pk__in=chosen))
