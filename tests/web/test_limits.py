"""Issue 19 items 1 and 2: every number a record holds has a range, and the
declaration form, the API, the import check and the database all hold to
the same one (``web/limits.py``, derived from the model's fields).

Before the fix: hours=99999999 was accepted on SQLite and then every page
showing the record returned 500 (decimal.InvalidOperation); on PostgreSQL
the submit itself was a 500; 字数 10²⁵ was a 500 on both.  A roster row with
学时 1000000, 字数 10²⁵, a 培训项目名称 over 200 characters or a 记录编号 over
64 showed 待确认, and 确认导入 then returned 500."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from tests.web.conftest import PASSWORD, World
from tests.web.test_imports import HEADER, act, csv_bytes, row, snapshot

from xuefen.web.models import ImportBatch, Record, Source, Status
from xuefen.web.services import imports

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def login(name: str) -> Client:
    c = Client()
    assert c.login(username=name, password=PASSWORD)
    return c


def _pdf() -> SimpleUploadedFile:
    return SimpleUploadedFile("证书.pdf", PDF, content_type="application/pdf")


BAD_NUMBERS = [
    ("hours", "99999999", "学时"),
    ("hours", "1000000", "学时"),
    ("hours", "24.1234", "学时"),  # more places than the ledger keeps: refused, never rounded silently
    ("days", "100000", "天数"),
    ("words", "10000000000000000000000000", "字数"),
    ("year", "2300", "登记年度"),
]


@pytest.mark.parametrize(("field", "value", "label"), BAD_NUMBERS)
def test_declaration_form_refuses_an_out_of_range_number_and_pages_stay_up(
        world: World, field: str, value: str, label: str) -> None:
    alice = login("alice")
    data: dict[str, Any] = {"year": "2026", "title": "巨型培训", "form": "集中", "level": "区县级", "hours": "24",
                            "result": "合格", "evidence": _pdf()}
    data[field] = value
    before = Record.objects.count()
    response = alice.post(reverse("declare"), data)
    assert response.status_code == 400
    assert label in response.content.decode()
    assert Record.objects.count() == before
    for url in (reverse("teacher-home"), reverse("teacher-export")):
        assert alice.get(url).status_code == 200


@pytest.mark.parametrize(("field", "value", "label"), BAD_NUMBERS)
def test_api_declaration_refuses_an_out_of_range_number(world: World, field: str, value: str, label: str) -> None:
    alice = login("alice")
    data: dict[str, Any] = {"year": "2026", "title": "巨型培训", "form": "集中", "level": "区县级", "hours": "24",
                            "evidence": _pdf()}
    data[field] = value
    response = alice.post("/api/declarations/", data)
    assert response.status_code == 400, response.content
    assert label in response.content.decode()
    assert alice.get(f"/api/records/?teacher={world.teachers['alice'].pk}").status_code == 200


def test_the_range_check_accepts_the_edges(world: World) -> None:
    from xuefen.web import limits

    hi = limits.RANGES["hours"][1]
    assert limits.problems({"hours": hi, "words": limits.RANGES["words"][1], "year": 2026}) == []
    assert limits.problems({"hours": hi + Decimal("0.001")})[0][0] == "hours"
    assert limits.problems({"title": "长" * 200}) == []
    assert limits.problems({"title": "长" * 201})[0][0] == "title"


def test_the_database_refuses_what_the_check_refuses(world: World) -> None:
    """The constraint matches the range (so a write that bypasses the
    services cannot store a value the pages cannot read)."""
    from xuefen.web import limits

    t = world.teachers["alice"]
    for facts in ({"hours": limits.RANGES["hours"][1] + 1}, {"words": limits.RANGES["words"][1] + 1},
                  {"absent_hours": limits.RANGES["absent_hours"][1] + 1}, {"year": 1900}):
        values: dict[str, Any] = {"year": 2026, **facts}
        with pytest.raises(IntegrityError), transaction.atomic():
            Record.objects.create(teacher=t, uid=f"C{len(facts)}", source=Source.SCHOOL, status=Status.PENDING,
                                  **values)


ROSTER_CASES = [
    ("hours", [row("T0001", "1", hours="1000000")], "学时"),
    ("title", [row("T0001", "1", title="长" * 201)], "培训项目名称"),
    ("uid", [row("T0001", "U" * 65)], "记录编号"),
]


@pytest.mark.parametrize(("what", "rows", "column"), ROSTER_CASES, ids=[c[0] for c in ROSTER_CASES])
def test_import_check_finds_what_the_write_would_refuse(world: World, what: str, rows: list[list[Any]],
                                                        column: str) -> None:
    before = snapshot()
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], "名册.csv", csv_bytes(rows))
    assert batch.state == ImportBatch.State.INVALID, batch.errors
    assert [(e["row"], e["column"]) for e in batch.errors] == [(2, column)]
    assert snapshot() == before


def test_import_check_refuses_huge_word_counts(world: World) -> None:
    header = [*HEADER, "字数"]
    rows = [[*row("T0001", "1"), "10000000000000000000000000"]]
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], "名册.csv", csv_bytes(rows, header))
    assert batch.state == ImportBatch.State.INVALID
    assert [(e["row"], e["column"]) for e in batch.errors] == [(2, "字数")]
