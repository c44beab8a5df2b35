"""Certificates, 补办 and the public check.

Which documents a policy provides (the seeds; a policy not listed provides
none, so its teachers get the 学分证明 only):

========================  ========  =====  ==================================================
policy                    annual    cycle  seed
========================  ========  =====  ==================================================
beijing-2021                        yes    北京 第三条 "由市教委统一核发教师培训结业证书"
chaoyang-2016                       yes    朝阳 附件3 第三条 (同上，市教委)
chaoyang-private-2016     yes       yes    朝阳 附件8 第十九条 年度结业证书（区教委）、第二十条 周期结业证书
yongji                    yes              永吉 "《继续教育证书》，按年度进行登记 … 如有丢失，需要补办"
suzhou                    yes              肃州 第十一条 "登记手册 … 审核盖章"
chifeng                   yes       yes    赤峰 第十二条 "分年度登记、五年一周期核定"
shandong-2009             yes              山东2009 (十三)(十四) 每学年末审核，"审核合格者，予以确定"
========================  ========  =====  ==================================================

A certificate is issued when the district confirms a year (annual: the
teacher's year passed; cycle: the year closes her cycle and the cycle
passed).  Its URL token is a random 128-bit value signed with the secret
key (django.core.signing), so a token cannot be guessed nor forged; the page
shows the name masked.  Status 已撤销: voided (补办, a reopened year) or a
record it counted revoked since (山东 第二十三条)."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from xuefen.web import permissions as perm
from xuefen.web.models import AnnualClose, Certificate, Org, OrgKind, Record, Status, Teacher
from xuefen.web.services import audit
from xuefen.web.services.ledger import Actor, Conflict, Denied, ServiceError

# policy id -> (annual, cycle, citation)
PROVIDES: dict[str, tuple[bool, bool, str]] = {
    "beijing-2021": (False, True, "北京 第三条"),
    "chaoyang-2016": (False, True, "朝阳 附件3 第三条"),
    "chaoyang-private-2016": (True, True, "朝阳 附件8 第十九、二十条"),
    "yongji": (True, False, "永吉 学分登记与管理方式"),
    "suzhou": (True, False, "肃州 第十一条"),
    "chifeng": (True, True, "赤峰 第十二条"),
    "shandong-2009": (True, False, "山东2009 (十三)(十四)"),
}

SALT = "xuefen.certificate"


def provides(policy_id: str, kind: str) -> bool:
    entry = PROVIDES.get(policy_id)
    if entry is None:
        return False
    if kind == Certificate.Kind.ANNUAL:
        return entry[0]
    if kind == Certificate.Kind.CYCLE:
        return entry[1]
    return True


def citation(policy_id: str) -> str:
    entry = PROVIDES.get(policy_id)
    return entry[2] if entry else ""


def url_token(cert: Certificate) -> str:
    return signing.Signer(salt=SALT).sign(cert.token)


def by_url_token(value: str) -> Certificate | None:
    """The certificate a URL names, or None for a forged or unknown token."""
    try:
        raw = signing.Signer(salt=SALT).unsign(value)
    except signing.BadSignature:
        return None
    return Certificate.objects.select_related("teacher__school").filter(token=raw).first()


def verify_url(cert: Certificate, base: str | None = None) -> str:
    """The public check's address; ``base`` "" gives the path alone (a view adds its host)."""
    prefix = settings.PUBLIC_BASE_URL if base is None else base
    return prefix.rstrip("/") + reverse("verify", args=[url_token(cert)])


def is_valid(cert: Certificate) -> bool:
    if cert.voided_at is not None:
        return False
    return not Record.objects.filter(pk__in=cert.record_ids or [], status=Status.REVOKED).exists()


def masked_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def issuer_for(school: Org, kind: str) -> str:
    """The issuing authority printed: the district for annual documents
    (朝阳 附件8 第十九条 区教委; 永吉 县级年审), the city above it for cycle ones
    (北京 第三条 市教委), else the nearest node with a policy."""
    want = OrgKind.DISTRICT if kind != Certificate.Kind.CYCLE else OrgKind.CITY
    line = school.ancestors()
    for node in reversed(line):
        if node.kind == want:
            return f"{node.name}教育行政部门"
    binding = school.binding()
    return f"{(binding or school).name}教育行政部门"


def _number(teacher: Teacher, kind: str, period_end: int) -> str:
    prefix = {Certificate.Kind.ANNUAL: "ND", Certificate.Kind.CYCLE: "JY", Certificate.Kind.STATEMENT: "XF"}[
        Certificate.Kind(kind)]
    base = f"{prefix}{period_end}-{teacher.teacher_no}-"
    n = Certificate.objects.filter(number__startswith=base).count() + 1
    while Certificate.objects.filter(number=f"{base}{n:02d}").exists():
        n += 1
    return f"{base}{n:02d}"


def _create(actor: Actor, teacher: Teacher, kind: str, start: int, end: int, total: Decimal,
            categories: dict[str, str], record_ids: list[int], policy_id: str, action: str = "certificate_issue",
            comment: str = "") -> Certificate:
    cert = Certificate.objects.create(
        teacher=teacher, kind=kind, number=_number(teacher, kind, end), token=secrets.token_urlsafe(16),
        period_start=start, period_end=end, school_name=teacher.school.name, issuer=issuer_for(teacher.school, kind),
        issued_by=actor.user if getattr(actor.user, "is_authenticated", False) else None, total=total,
        categories=categories, record_ids=record_ids, policy_id=policy_id,
    )
    audit.log(actor.user, action, cert, after={"number": cert.number, "kind": kind, "teacher": teacher.pk,
                                               "period": [start, end]},
              comment=comment, ip=actor.ip, org_path=teacher.school.path)
    return cert


def issue_for_close(actor: Actor, close: AnnualClose) -> list[Certificate]:
    """Called by annual.confirm, inside its transaction."""
    out: list[Certificate] = []
    teachers = {str(t.pk): t for t in Teacher.objects.filter(pk__in=[int(k) for k in close.snapshot])
                .select_related("school")}
    for key, entry in sorted(close.snapshot.items(), key=lambda kv: kv[1]["teacher_no"]):
        teacher = teachers.get(key)
        if teacher is None or teacher.school_id != close.school_id:
            continue
        policy_id = entry["policy_id"]
        if entry["passed"] is True and provides(policy_id, Certificate.Kind.ANNUAL):
            out.append(_create(actor, teacher, Certificate.Kind.ANNUAL, close.year, close.year,
                               Decimal(entry["total"]), entry["categories"], entry["records"], policy_id))
        start, end = entry["cycle"]
        if end == close.year and entry["cycle_passed"] and provides(policy_id, Certificate.Kind.CYCLE):
            ids = list(Record.objects.filter(teacher=teacher, year__gte=start, year__lte=end,
                                             status__in=perm.COUNTING).values_list("pk", flat=True))
            out.append(_create(actor, teacher, Certificate.Kind.CYCLE, start, end, Decimal(entry["cycle_total"]),
                               entry["cycle_categories"], ids, policy_id))
    return out


def void_for_close(actor: Actor, close: AnnualClose, reason: str) -> int:
    certs = list(Certificate.objects.select_for_update().filter(
        teacher__school=close.school, voided_at__isnull=True, period_end=close.year,
        kind__in=(Certificate.Kind.ANNUAL, Certificate.Kind.CYCLE)))
    now = timezone.now()
    for cert in certs:
        cert.voided_at, cert.void_reason = now, reason
        cert.save(update_fields=["voided_at", "void_reason"])
        audit.log(actor.user, "certificate_void", cert, after={"number": cert.number}, comment=reason, ip=actor.ip,
                  org_path=close.school.path)
    return len(certs)


def current(teacher: Teacher, kind: str, year: int | None = None) -> Certificate | None:
    """The teacher's certificate in force of ``kind`` (the latest issued),
    for ``year`` (annual: that year; cycle: the cycle ending in it, or her latest)."""
    qs = Certificate.objects.filter(teacher=teacher, kind=kind, voided_at__isnull=True)
    if year is not None:
        qs = qs.filter(period_end=year)
    return qs.order_by("-period_end", "-issued_at", "-pk").first()


def explain_missing(teacher: Teacher, kind: str, year: int | None) -> str:
    """Why there is no certificate: the reason in Chinese, for the page and the CLI."""
    from xuefen.web.services.evaluation import policy_for

    chosen = policy_for(teacher)
    policy_id = chosen[0].id if chosen else ""
    if not provides(policy_id, kind):
        label = Certificate.Kind(kind).label
        return f"{teacher.school.name}所执行的政策（{policy_id or '未绑定'}）不颁发{label}"
    close = None
    if year is not None:
        close = AnnualClose.objects.filter(school=teacher.school, year=year).first()
        if close is None or close.state != AnnualClose.State.CONFIRMED:
            state = close.get_state_display() if close else "未登记"
            return f"{teacher.school.name} {year} 年度尚未经区县确认（当前：{state}），不能发证"
        entry = close.snapshot.get(str(teacher.pk))
        if entry is None:
            return f"{teacher.name} 不在 {year} 年度登记名单中"
        if kind == Certificate.Kind.ANNUAL and entry["passed"] is not True:
            return f"{teacher.name} {year} 年度未达标（计入 {entry['total']} 学分），不能发证"
        if kind == Certificate.Kind.CYCLE:
            start, end = entry["cycle"]
            if end != year:
                return f"{year} 年不是 {teacher.name} 所在周期（{start}–{end}）的最后一年"
            if not entry["cycle_passed"]:
                return f"{teacher.name} {start}–{end} 周期未达标，不能发证"
    else:
        return f"{teacher.name} 尚无已确认周期的结业证书（周期最后一年经区县确认后颁发）"
    return f"{teacher.name} 的证书已作废且尚未补办"


@transaction.atomic
def reissue(actor: Actor, certificate_id: int, reason: str) -> Certificate:
    """补办: a new number and token; the old one is void and points to it."""
    old = Certificate.objects.select_for_update().select_related("teacher__school").get(pk=certificate_id)
    if not perm.can_reissue_certificate(actor.user, old.teacher):
        raise Denied("只有区县继教办可以补办证书")
    if old.voided_at is not None:
        raise Conflict("该证书已作废，请补办现行证书")
    if old.kind == Certificate.Kind.STATEMENT:
        raise ServiceError("学分证明可随时重新打印，无需补办")
    if not reason.strip():
        raise ServiceError("补办须填写理由（如：遗失，校长已开具证明）")
    new = _create(actor, old.teacher, old.kind, old.period_start, old.period_end, old.total, old.categories,
                  old.record_ids, old.policy_id, action="certificate_reissue", comment=reason.strip())
    old.voided_at, old.void_reason, old.replaced_by = timezone.now(), f"补办：{reason.strip()}", new
    old.save(update_fields=["voided_at", "void_reason", "replaced_by"])
    audit.log(actor.user, "certificate_void", old, after={"number": old.number, "replaced_by": new.number},
              comment=reason.strip(), ip=actor.ip, org_path=old.teacher.school.path)
    return new


@transaction.atomic
def issue_statement(actor: Actor, teacher: Teacher) -> Certificate:
    """学分证明: the teacher's current cycle so far, from her stored result,
    numbered and checkable like a certificate."""
    from xuefen.web.models import TeacherResult
    from xuefen.web.services.evaluation import refresh_result

    if not perm.can_get_certificate(actor.user, teacher):
        raise Denied("无权为该教师开具学分证明")
    # the stored verdict is kept current by every write; a teacher never evaluated is evaluated now
    result = TeacherResult.objects.filter(teacher=teacher).first() or refresh_result(teacher)
    if result is None:
        raise ServiceError(f"{teacher.school.name}未绑定学分政策，无法开具学分证明")
    cats: dict[str, Any] = (result.data or {}).get("categories") or {}
    categories = {str(k): str(v.get("counted", "0")) for k, v in cats.items()}
    ids = list(Record.objects.filter(teacher=teacher, year__gte=result.cycle_start, year__lte=result.cycle_end,
                                     status__in=perm.COUNTING).values_list("pk", flat=True))
    return _create(actor, teacher, Certificate.Kind.STATEMENT, result.cycle_start,
                   min(result.cycle_end, timezone.localdate().year), result.total, categories, ids, result.policy_id)


def booklet(actor: Actor, teacher: Teacher) -> bytes:
    """登记手册 PDF (肃州 第十一条; 永吉 按年度登记): every year's entries with who
    verified them and the year's close; each print is audited, so a reissued
    booklet is on record."""
    from xuefen.web import pdfs
    from xuefen.web.models import AuditEntry

    if not perm.can_get_certificate(actor.user, teacher):
        raise Denied("无权打印该教师的登记手册")
    records = list(Record.objects.filter(teacher=teacher).exclude(status=Status.REVOKED).order_by("year", "uid"))
    verifiers: dict[int, str] = {}
    for entry in (AuditEntry.objects.filter(object_type="Record", object_id__in=[str(r.pk) for r in records],
                                            action__in=list(perm.TRANSITIONS)).order_by("at", "id")):
        verifiers[int(entry.object_id)] = entry.actor_name
    closes = {c.year: c.get_state_display() for c in AnnualClose.objects.filter(school=teacher.school)}
    printed = AuditEntry.objects.filter(action="booklet_print", object_type="Teacher", object_id=str(teacher.pk)).count()
    audit.log(actor.user, "booklet_print", teacher, after={"copy": printed + 1}, ip=actor.ip,
              org_path=teacher.school.path, comment="补印" if printed else "")
    return pdfs.booklet_pdf(teacher, records, verifiers, closes)
