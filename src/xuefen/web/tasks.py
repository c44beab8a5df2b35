"""Background work (Celery, ``xuefen.web.worker.app``).  Without a broker the
settings run tasks inline in the caller, so the same code path serves the
embedded default and a deployment with workers.

Large roster imports (more than ``settings.IMPORT_BACKGROUND_ROWS`` rows) are
checked and written here; the batch's ``done_rows`` moves as they go and the
import page polls it.  Each task carries the batch's ``attempt`` it was
started for, so a task that arrives after its batch was recovered
(services.imports.recover) does nothing.

When the broker cannot be reached (issue 19 item 6: a 2,000-row file was a
500 in 0.9 s and its batch stayed 校验中 for ever), :func:`dispatch` runs the
work in the request (``IMPORT_BROKER_FALLBACK=inline``, the default) or ends
the run clearly with nothing written (``fail``)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from xuefen.web.models import ImportBatch
from xuefen.web.services import imports
from xuefen.web.services.ledger import Actor, ServiceError
from xuefen.web.worker import app

log = logging.getLogger(__name__)
BROKER_DOWN = "后台任务服务暂时无法连接，本批次未写入任何记录；请稍后重试或联系系统管理员"


@app.task(name="xuefen.import.check")
def check_import(batch_id: int, attempt: int | None = None) -> str:
    batch = imports.check_batch(ImportBatch.objects.select_related("org").get(pk=batch_id), attempt)
    return str(batch.state)


@app.task(name="xuefen.import.commit")
def commit_import(batch_id: int, user_id: int, ip: str | None = None, attempt: int | None = None) -> str:
    user = get_user_model().objects.get(pk=user_id)
    batch = imports.commit_batch(Actor(user, ip), ImportBatch.objects.select_related("org").get(pk=batch_id), attempt)
    return str(batch.state)


@app.task(name="xuefen.review.bulk")
def bulk_review(job_id: int, ip: str | None = None) -> str:
    from xuefen.web.services import review

    return str(review.run_job(job_id, ip).state)


def dispatch(task: Any, batch: ImportBatch, *args: Any) -> bool:
    """Queue ``task(batch.pk, *args, attempt)``; True when queued.  When the
    broker is unreachable: run it here (inline fallback, False) or give the
    run up with a message (ServiceError)."""
    call = (batch.pk, *args, batch.attempt)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        task.apply(args=call, throw=True)
        return False
    if _queued(task, call, f"import batch {batch.pk}"):
        return True
    if settings.IMPORT_BROKER_FALLBACK == "inline":
        task.apply(args=call, throw=True)
        return False
    imports.give_up(batch, BROKER_DOWN)
    raise ServiceError(BROKER_DOWN)


def dispatch_review(job_id: int, ip: str | None) -> bool:
    """Queue a batch review job (True), or run it here when there is no
    broker to take it: the job is all or nothing either way, and its page
    shows the state it reached."""
    call = (job_id, ip)
    if not settings.CELERY_TASK_ALWAYS_EAGER and _queued(bulk_review, call, f"review job {job_id}"):
        return True
    bulk_review.apply(args=call, throw=True)
    return False


def _queued(task: Any, call: tuple[Any, ...], what: str) -> bool:
    try:
        task.apply_async(args=call, retry=False)
        return True
    except Exception as exc:  # kombu's OperationalError, a closed pool, the transport's own socket errors
        log.warning("broker unreachable for %s: %s: %s", what, type(exc).__name__, exc)
        return False
