"""Batch review: approve or return many records in one action.

One transaction for the whole selection — every record is locked, checked
(scope, role, the chain's state) and only then written; one refusal and
nothing is written.  Each record still gets its own audit entry and its
teacher her own notification, exactly as one-by-one review would; the
teachers are re-evaluated once each at the end (``refresh_results``), not
once per record.

Selections over ``settings.REVIEW_BACKGROUND_RECORDS`` run in the
background (``tasks.bulk_review``) on a ``BulkReview`` job whose ``done``
the queue page polls; without a broker the task runs in the request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from xuefen.web import permissions as perm
from xuefen.web.models import BulkReview, Notification, Record, Status, Teacher
from xuefen.web.services import audit
from xuefen.web.services.base import Actor, Conflict, Denied, ServiceError
from xuefen.web.services.evaluation import refresh_results
from xuefen.web.services.ledger import notice, snapshot

BULK_ACTIONS = ("approve", "return")
# Refusals named in the message (the rest are counted).
NAMED = 5


def _step(actor: Actor, action: str) -> tuple[str, str]:
    """The audit action and the target state of ``action`` for this actor."""
    if action == "approve":
        step = perm.approve_step(actor.user)
        if step is None:
            raise Denied("当前角色不参与审核")
        return step, perm.TRANSITIONS[step]["to"]
    return "return", Status.RETURNED


def _refusals(actor: Actor, records: list[Record], action: str) -> list[str]:
    out = []
    for r in records:
        allowed = perm.record_actions(actor.user, r)
        ok = bool(allowed & set(perm.TRANSITIONS)) if action == "approve" else "return" in allowed
        if not ok:
            out.append(f"{r.uid}（{r.teacher.name}，{r.get_status_display()}）")
    return out


# The widest id a database column holds (a signed 64-bit integer).
MAX_ID = 2**63 - 1


def bulk_review(actor: Actor, record_ids: Sequence[int], action: str, comment: str = "",
                progress: Callable[[int], None] | None = None) -> int:
    """Approve (the actor's step of the chain) or return every record of
    ``record_ids``; all or nothing.  Returns the number of records moved."""
    if action not in BULK_ACTIONS:
        raise ServiceError(f"未知操作 {action}")
    comment = comment.strip()
    if action == "return" and not comment:
        raise ServiceError("退回须填写理由")
    ids = sorted(set(record_ids))
    if not ids:
        raise ServiceError("未选择任何记录")
    if ids[0] < 1 or ids[-1] > MAX_ID:  # no such record; a wider integer would not even reach the database
        raise Denied("所选记录中有不存在或无权处理的记录")
    with transaction.atomic():
        # Locked in id order: two batch actions over overlapping selections cannot deadlock.
        records = list(Record.objects.select_for_update(of=("self",)).select_related("teacher__school")
                       .filter(pk__in=ids).order_by("pk"))
        if len(records) != len(ids) or any(not perm.can_transition(actor.user, r, "return") for r in records):
            # Outside scope or gone: said the same way, existence does not leak.
            raise Denied("所选记录中有不存在或无权处理的记录")
        step, target = _step(actor, action)
        refused = _refusals(actor, records, action)
        if refused:
            more = f"等 {len(refused)} 条" if len(refused) > NAMED else ""
            raise Conflict(f"以下记录的状态已变化，不能{'通过' if action == 'approve' else '退回'}："
                           f"{'、'.join(refused[:NAMED])}{more}；未处理任何记录，请刷新后重试")
        notes = []
        for i, r in enumerate(records, 1):
            before = snapshot(r)
            r.status = target
            r.status_reason = comment
            r.version += 1
            r.save(update_fields=["status", "status_reason", "version", "updated_at"])
            audit.log(actor.user, step, r, before=before, after=snapshot(r), comment=comment, ip=actor.ip,
                      org_path=r.teacher.school.path)
            if r.teacher.user_id:
                notes.append(Notification(user_id=r.teacher.user_id, record=r,
                                          message=notice(r, comment if action == "return" else "")))
            if progress is not None and (i % 100 == 0 or i == len(records)):
                progress(i)
        Notification.objects.bulk_create(notes)
        refresh_results(Teacher.objects.filter(pk__in={r.teacher_id for r in records}).select_related("school"))
    return len(records)


# ------------------------------------------------------------------ background jobs


def runs_in_background(count: int) -> bool:
    return count > settings.REVIEW_BACKGROUND_RECORDS


def start_job(actor: Actor, record_ids: Sequence[int], action: str, comment: str = "") -> BulkReview:
    """A job for a large selection; the task (or, without a broker, the
    request) runs it with :func:`run_job`."""
    if action not in BULK_ACTIONS:
        raise ServiceError(f"未知操作 {action}")
    if action == "return" and not comment.strip():
        raise ServiceError("退回须填写理由")
    if action == "approve" and perm.approve_step(actor.user) is None:
        raise Denied("当前角色不参与审核")
    ids = sorted(set(record_ids))
    return BulkReview.objects.create(actor=actor.user, action=action, comment=comment.strip(), record_ids=ids,
                                     total=len(ids))


class _Progress:
    """Progress written on a connection of its own, so the page sees it while
    the job's transaction is still open.  SQLite has one writer at a time, so
    there the count is written at the end only."""

    def __init__(self, job: BulkReview) -> None:
        self.job_id = job.pk
        self.side = (connections.create_connection("default")
                     if connection.vendor == "postgresql" and not connection.in_atomic_block else None)

    def __call__(self, done: int) -> None:
        if self.side is not None:
            with self.side.cursor() as cursor:
                # The table name is the model's own, not input.
                cursor.execute(f"UPDATE {BulkReview._meta.db_table} SET done = %s WHERE id = %s",  # noqa: S608
                               [done, self.job_id])

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


def run_job(job_id: int, ip: str | None = None) -> BulkReview:
    job = BulkReview.objects.select_related("actor").get(pk=job_id)
    if job.state != BulkReview.State.QUEUED:
        return job
    BulkReview.objects.filter(pk=job.pk).update(state=BulkReview.State.RUNNING)
    fields: dict[str, Any]
    progress = _Progress(job)
    try:
        moved = bulk_review(Actor(job.actor, ip), job.record_ids, job.action, job.comment, progress)
    except ServiceError as exc:
        fields = {"state": BulkReview.State.FAILED, "error": str(exc), "done": 0}
    else:
        fields = {"state": BulkReview.State.DONE, "done": moved}
    finally:
        progress.close()
    BulkReview.objects.filter(pk=job.pk).update(finished_at=timezone.now(), **fields)
    job.refresh_from_db()
    return job
