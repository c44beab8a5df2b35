"""Stuck imports (issue 19 item 6) and the broker drill (issue 17 item 5).

Before the fix: a server killed during 确认导入 left the batch at 写入中 for
ever, and a broker that could not be reached made a file of more than 2,000
rows a 500 in 0.9 s with its batch at 校验中 for ever."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.web.conftest import PASSWORD, World
from tests.web.test_imports import GOOD, act, csv_bytes, snapshot

from xuefen.web.models import AuditEntry, ImportBatch, Record
from xuefen.web.services import imports
from xuefen.web.worker import app

ROWS = [GOOD[0], GOOD[1]]  # alice and anna, both of 东区实验小学


def login(name: str) -> Client:
    c = Client()
    assert c.login(username=name, password=PASSWORD)
    return c


def _age(batch: ImportBatch, seconds: int) -> None:
    ImportBatch.objects.filter(pk=batch.pk).update(heartbeat=timezone.now() - dt.timedelta(seconds=seconds))
    batch.refresh_from_db()


def _valid_batch(world: World) -> ImportBatch:
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], "名册.csv", csv_bytes(ROWS))
    assert batch.state == ImportBatch.State.VALID, batch.errors
    return batch


def test_a_write_whose_worker_died_becomes_confirmable_again(world: World, settings: Any) -> None:
    batch = _valid_batch(world)
    assert imports.queue_commit(act(world, "bob"), batch)  # claimed 写入中, then the worker is killed
    before = snapshot()
    bob = login("bob")
    # within the lease it is a running batch: left alone
    response = bob.get(reverse("imports-detail", args=[batch.pk]))
    assert ImportBatch.objects.get(pk=batch.pk).state == ImportBatch.State.WRITING
    _age(batch, settings.IMPORT_LEASE_SECONDS + 1)
    assert bob.get(reverse("imports-progress", args=[batch.pk]))["HX-Refresh"] == "true"
    response = bob.get(reverse("imports-detail", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.VALID
    shown = response.content.decode()
    assert "上次写入在完成前中断" in shown and "确认导入" in shown
    assert AuditEntry.objects.filter(action="import_recover", object_id=str(batch.pk)).count() == 1
    assert snapshot()[0] == before[0]  # nothing was written by the dead run
    bob.post(reverse("imports-confirm", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.DONE and Record.objects.filter(import_batch=batch).count() == 2


def test_a_check_whose_worker_died_is_run_again(world: World, settings: Any) -> None:
    batch = imports.receive(act(world, "bob"), world.orgs["east-1"], "名册.csv", csv_bytes(ROWS))
    assert batch.state == ImportBatch.State.VALIDATING  # the check task was lost with its worker
    _age(batch, settings.IMPORT_LEASE_SECONDS + 1)
    response = login("bob").get(reverse("imports-detail", args=[batch.pk]))
    assert "已重新开始校验" in response.content.decode()
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.VALID and batch.attempt == 1


def test_a_run_given_up_on_changes_nothing_when_it_wakes(world: World, settings: Any) -> None:
    batch = _valid_batch(world)
    assert imports.queue_commit(act(world, "bob"), batch)
    stale_attempt = batch.attempt
    _age(batch, settings.IMPORT_LEASE_SECONDS + 1)
    assert imports.recover(batch) and batch.state == ImportBatch.State.VALID
    # the old task arrives late: it must not write
    imports.commit_batch(act(world, "bob"), ImportBatch.objects.get(pk=batch.pk), attempt=stale_attempt)
    assert Record.objects.count() == 0
    done = imports.commit_batch(act(world, "bob"), ImportBatch.objects.get(pk=batch.pk))
    assert done.state == ImportBatch.State.DONE and Record.objects.count() == 2


@pytest.fixture
def broker_down(settings: Any) -> Iterator[None]:
    """A configured broker nobody listens on; every file counts as large."""
    # read first: Celery loads its configuration from the Django settings on first use
    keys = ("task_always_eager", "broker_url", "broker_connection_timeout")
    saved = {k: app.conf.get(k) for k in keys}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.IMPORT_BACKGROUND_ROWS = 1
    app.conf.update(task_always_eager=False, broker_url="redis://127.0.0.1:9/0", broker_connection_timeout=1)
    _fresh_connections()
    yield
    app.conf.update(saved)
    _fresh_connections()


def _fresh_connections() -> None:
    """Celery keeps its producer connections once made: drop them, so the
    broker just configured is the one dialled."""
    app.pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None


def _upload(client: Client, world: World) -> Any:
    f = SimpleUploadedFile("名册.csv", csv_bytes(ROWS), content_type="text/csv")
    return client.post(reverse("imports"), {"org": world.orgs["east-1"].pk, "file": f})


def test_broker_unreachable_falls_back_to_the_request(world: World, broker_down: None) -> None:
    bob = login("bob")
    response = _upload(bob, world)
    assert response.status_code == 302
    batch = ImportBatch.objects.get()
    assert batch.state == ImportBatch.State.VALID  # checked in the request
    response = bob.post(reverse("imports-confirm", args=[batch.pk]))
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.DONE and Record.objects.count() == 2


def test_broker_unreachable_fails_clearly_when_so_configured(world: World, broker_down: None, settings: Any) -> None:
    settings.IMPORT_BROKER_FALLBACK = "fail"
    before = snapshot()
    bob = login("bob")
    response = _upload(bob, world)
    assert response.status_code == 302
    batch = ImportBatch.objects.get()
    assert batch.state == ImportBatch.State.INVALID and "后台任务服务暂时无法连接" in batch.errors[0]["message"]
    assert any("后台任务服务暂时无法连接" in str(m) for m in get_messages(response.wsgi_request))
    # a batch already checked: confirming is refused clearly and it stays confirmable
    settings.IMPORT_BROKER_FALLBACK = "inline"
    _upload(bob, world)
    valid = ImportBatch.objects.get(state=ImportBatch.State.VALID)
    settings.IMPORT_BROKER_FALLBACK = "fail"
    response = bob.post(reverse("imports-confirm", args=[valid.pk]), follow=True)
    assert "后台任务服务暂时无法连接" in response.content.decode()
    valid.refresh_from_db()
    assert valid.state == ImportBatch.State.VALID
    assert snapshot() == before


def test_large_batch_review_without_a_broker_runs_in_the_request(world: World, broker_down: None,
                                                                 settings: Any) -> None:
    """A batch review large enough for the background, with the broker
    unreachable (or Celery's pool closed): it runs in the request instead of
    answering 500 (the merged review queue called ``delay`` directly)."""
    from xuefen.web.models import BulkReview, Status

    settings.REVIEW_BACKGROUND_RECORDS = 1
    records = [world.record("alice"), world.record("anna")]
    bob = login("bob")
    response = bob.post("/review/bulk/", {"ids": [str(r.pk) for r in records], "action": "approve", "query": ""})
    job = BulkReview.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/review/jobs/{job.pk}/"
    assert job.state == BulkReview.State.DONE and job.done == 2
    assert Record.objects.filter(status=Status.SCHOOL_APPROVED).count() == 2
