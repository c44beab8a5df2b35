"""Background work (Celery, ``xuefen.web.worker.app``).  Without a broker the
settings run tasks inline in the caller, so the same code path serves the
embedded default and a deployment with workers.

Large roster imports (more than ``settings.IMPORT_BACKGROUND_ROWS`` rows) are
checked and written here; the batch's ``done_rows`` moves as they go and the
import page polls it."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from xuefen.web.models import ImportBatch
from xuefen.web.services import imports
from xuefen.web.services.ledger import Actor
from xuefen.web.worker import app


@app.task(name="xuefen.import.check")
def check_import(batch_id: int) -> str:
    batch = imports.check_batch(ImportBatch.objects.select_related("org").get(pk=batch_id))
    return str(batch.state)


@app.task(name="xuefen.import.commit")
def commit_import(batch_id: int, user_id: int, ip: str | None = None) -> str:
    user = get_user_model().objects.get(pk=user_id)
    batch = imports.commit_batch(Actor(user, ip), ImportBatch.objects.select_related("org").get(pk=batch_id))
    return str(batch.state)


@app.task(name="xuefen.review.bulk")
def bulk_review(job_id: int, ip: str | None = None) -> str:
    from xuefen.web.services import review

    return str(review.run_job(job_id, ip).state)
