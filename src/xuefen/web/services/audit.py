"""The audit trail: who did what, when, from where, before and after.

Tamper-evident (等保2.0 8.1.4.3 安全审计 c: 审计记录应进行保护，避免受到未预期的删除、修改或覆盖):
every committed entry is sealed into a hash chain — ``seq`` its position,
``prev_hash`` the hash of the entry before it, ``hash`` the SHA-256 of that
and of the entry's own content.  Editing, deleting or inserting an entry in
the middle breaks the link after it; :func:`verify` names the first broken
link.  The head is written aside as an :class:`AuditAnchor` at intervals
(every ``AUDIT_ANCHOR_EVERY`` entries or ``AUDIT_ANCHOR_SECONDS``, and by
``xuefen manage audit anchor``, and to ``AUDIT_ANCHOR_FILE`` when set), so
rewriting the whole chain from some point on also disagrees with an anchor.

Sealing happens right after the writing transaction commits, in a short
transaction of its own holding one lock (the chain's head), so a service's
row locks and the chain's never wait on each other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from xuefen.web.models import AuditAnchor, AuditEntry

log_ = logging.getLogger(__name__)

GENESIS = "0" * 64
_CONTENT = ("id", "at", "actor_name", "ip", "action", "object_type", "object_id", "org_path", "before", "after",
            "comment")


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
    entry = AuditEntry.objects.create(
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
    transaction.on_commit(_seal_quietly)
    return entry


def _canonical(row: dict[str, Any]) -> bytes:
    """An entry's content as read back from the database.  ``actor_id`` is
    left out: deleting a user account sets it to NULL (the name stays)."""
    content = {k: row[k] for k in _CONTENT}
    at = content["at"]
    if isinstance(at, dt.datetime):
        content["at"] = at.astimezone(dt.UTC).isoformat()
    return json.dumps(content, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":")).encode()


def link(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(row)).hexdigest()


def _lock_head() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('xuefen.audit.chain'))")


def _head() -> tuple[int, str]:
    head = AuditEntry.objects.filter(seq__isnull=False).order_by("-seq").values("seq", "hash").first()
    if head is None or head["seq"] is None:
        return 0, GENESIS
    return int(head["seq"]), str(head["hash"])


def seal(limit: int = 5000) -> int:
    """Chain the committed entries not sealed yet, in id order; returns how
    many.  Safe to run concurrently: the head is locked on PostgreSQL, and
    the unique ``seq`` turns any race elsewhere into a retry."""
    sealed = 0
    for _attempt in range(5):
        try:
            with transaction.atomic():
                _lock_head()
                seq, prev = _head()
                rows = list(AuditEntry.objects.filter(seq__isnull=True).order_by("id").values(*_CONTENT)[:limit])
                for row in rows:
                    seq += 1
                    digest = link(prev, row)
                    AuditEntry.objects.filter(pk=row["id"], seq__isnull=True)._seal(seq=seq, prev_hash=prev, hash=digest)
                    prev = digest
                if rows:
                    _maybe_anchor(seq, prev)
                sealed += len(rows)
                if len(rows) < limit:
                    return sealed
        except IntegrityError:
            continue
    return sealed


def _seal_quietly() -> None:
    # A failure to seal must not turn a committed change into an error page:
    # the entry stays unsealed (verify reports it) and the next seal takes it.
    try:
        seal()
    except Exception:
        log_.exception("audit entries could not be sealed now; the next seal will take them")


def _maybe_anchor(seq: int, head_hash: str) -> None:
    last = AuditAnchor.objects.order_by("-seq").first()
    due = (last is None or seq - last.seq >= settings.AUDIT_ANCHOR_EVERY
           or timezone.now() - last.at >= dt.timedelta(seconds=settings.AUDIT_ANCHOR_SECONDS))
    if due:
        _write_anchor(seq, head_hash)


def _write_anchor(seq: int, head_hash: str) -> AuditAnchor:
    anchor = AuditAnchor.objects.create(seq=seq, hash=head_hash)
    if settings.AUDIT_ANCHOR_FILE:
        path = Path(settings.AUDIT_ANCHOR_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(f"{anchor.at.isoformat()} {seq} {head_hash}\n")
    return anchor


def anchor() -> AuditAnchor | None:
    """Seal what is pending and write the head aside now."""
    seal()
    with transaction.atomic():
        _lock_head()
        seq, head_hash = _head()
        if seq == 0:
            return None
        return _write_anchor(seq, head_hash)


@dataclass
class Verdict:
    ok: bool
    checked: int = 0
    unsealed: int = 0
    problems: list[str] = field(default_factory=list)


def verify(anchor_file: str | None = None) -> Verdict:
    """Walk the chain from the first entry; the first broken link, in
    Chinese, with its position and entry id.  Anchors (table and file) must
    each match the entry at their position."""
    verdict = Verdict(ok=True)
    prev, expected_seq = GENESIS, 1
    hashes: dict[int, str] = {}
    fields = (*_CONTENT, "seq", "prev_hash", "hash")
    for row in AuditEntry.objects.filter(seq__isnull=False).order_by("seq").values(*fields).iterator(chunk_size=2000):
        verdict.checked += 1
        where = f"第 {row['seq']} 条（审计记录 id {row['id']}）"
        if row["seq"] != expected_seq:
            verdict.problems.append(f"链在第 {expected_seq} 条处断开：缺少该位置的记录（下一条为{where}），可能有记录被删除")
            break
        if row["prev_hash"] != prev:
            verdict.problems.append(f"链在{where}断开：其记录的前一条哈希与第 {expected_seq - 1} 条的哈希不一致")
            break
        if link(prev, row) != row["hash"]:
            verdict.problems.append(f"链在{where}断开：记录内容与其哈希不一致，该记录被修改过")
            break
        hashes[row["seq"]] = row["hash"]
        prev, expected_seq = row["hash"], expected_seq + 1
    anchors = [(a.seq, a.hash, "锚点表") for a in AuditAnchor.objects.order_by("seq")]
    path = anchor_file or settings.AUDIT_ANCHOR_FILE
    if path and Path(path).exists():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit():
                anchors.append((int(parts[1]), parts[2], f"锚点文件 {path}"))
    if not verdict.problems:
        for seq, digest, source in anchors:
            if seq not in hashes:
                verdict.problems.append(f"{source}记录了第 {seq} 条的哈希，但链中没有这一条：记录被删除或链被截断")
                break
            if hashes[seq] != digest:
                verdict.problems.append(f"第 {seq} 条的哈希与{source}不一致：链在该位置之前被重写过")
                break
    verdict.unsealed = AuditEntry.objects.filter(seq__isnull=True).count()
    verdict.ok = not verdict.problems
    return verdict


def id_numbers_shown(user: Any, teacher_ids: list[int], where: str, *, ip: str | None = None) -> None:
    """PIPL: each view of 身份证号 in full is recorded — who, where, whose
    (teacher ids; never the numbers)."""
    if teacher_ids:
        log(user, "id_number_viewed", where, after={"teachers": teacher_ids[:1000], "count": len(teacher_ids)}, ip=ip)
