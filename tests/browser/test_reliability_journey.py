"""Journeys for issue 19: an import interrupted by a dead worker is shown
as such and confirmed again; a declaration with an impossible number is
refused with the field named, and the teacher's pages stay up."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from tests.web.conftest import World

from xuefen.web.models import ImportBatch, Record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = "教师编号,姓名,记录编号,登记年度,培训项目名称,形式,级别,学时,考核结果\n"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_an_interrupted_import_is_shown_and_confirmed_again(world: World, sessions: Any, tmp_path: Path,
                                                            settings: Any) -> None:
    bob = sessions("bob")
    page = bob.goto("/imports/")
    roster = tmp_path / "roster.csv"
    roster.write_text(HEADER + "T0001,alice,R-1,2026,校级研修,集中,区县级,12,合格\n"
                      "T0002,anna,R-1,2026,校级研修,集中,区县级,12,合格\n", encoding="utf-8")
    page.set_input_files("input[name=file]", str(roster))
    page.click("button:has-text('上传并校验')")
    page.wait_for_load_state()
    batch = ImportBatch.objects.get()
    assert batch.state == ImportBatch.State.VALID
    # The server confirming it is killed: the batch is left 写入中 with an old heartbeat.
    ImportBatch.objects.filter(pk=batch.pk).update(
        state=ImportBatch.State.WRITING, attempt=1,
        heartbeat=timezone.now() - dt.timedelta(seconds=settings.IMPORT_LEASE_SECONDS + 60))
    page = bob.goto(f"/imports/{batch.pk}/")
    bob.shot("r1-import-interrupted")
    assert "上次写入在完成前中断" in page.content()
    page.click("button:has-text('确认导入')")
    page.wait_for_load_state()
    bob.shot("r2-import-confirmed-again")
    assert "已导入 2 条记录" in page.content()
    assert Record.objects.filter(import_batch=batch).count() == 2


def test_an_impossible_number_is_refused_and_the_pages_stay_up(world: World, sessions: Any, tmp_path: Path) -> None:
    alice = sessions("alice")
    page = alice.goto("/me/declare/")
    page.fill("input[name=title]", "巨型培训")
    page.fill("input[name=hours]", "99999999")
    evidence = tmp_path / "证书.pdf"
    evidence.write_bytes(PDF)
    page.set_input_files("input[name=evidence]", str(evidence))
    page.click("form button.primary")
    page.wait_for_load_state()
    alice.shot("r3-declare-out-of-range")
    assert "学时须在 0–10000 之间" in page.content()
    assert Record.objects.count() == 0
    assert alice.goto("/me/").title() != ""
    assert "巨型培训" not in alice.page.content()
