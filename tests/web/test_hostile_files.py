"""Hostile files (issue 19 items 3 and 4; issue 17 item 4): a crafted
workbook, an entity bomb, a zip bomb, a file whose content is not what its
name says, too many or too large uploads, and formula injection in every
export.

Before the fix a 98 KB sheet declaring A1:XFD1048576 with 20,000 one-cell
rows took the server from 597 MB to 2.8 GB (openpyxl's read-only mode pads
every row to the declared width); one request could upload 20 × 9 MB."""

from __future__ import annotations

import io
import resource
import zipfile
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from tests.web.conftest import PASSWORD, World
from tests.web.test_imports import GOOD, act, snapshot, xlsx_bytes

from xuefen.web.models import Evidence, ImportBatch, Record
from xuefen.web.services import imports

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def login(name: str) -> Client:
    c = Client()
    assert c.login(username=name, password=PASSWORD)
    return c


def _rewrite(data: bytes, member: str, change: Any) -> bytes:
    """The workbook with one part rewritten."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == member:
                body = change(body)
            dst.writestr(info.filename, body)
    return out.getvalue()


def wide_declared_sheet(rows: int) -> bytes:
    """A small sheet that declares the whole grid, A1:XFD1048576."""
    data = xlsx_bytes([[f"T{i:05d}"] for i in range(rows)], header=["教师编号"])

    def declare_all(xml: bytes) -> bytes:
        text = xml.decode()
        start = text.index("<dimension ref=\"") + len("<dimension ref=\"")
        end = text.index("\"", start)
        return (text[:start] + "A1:XFD1048576" + text[end:]).encode()

    return _rewrite(data, "xl/worksheets/sheet1.xml", declare_all)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_sheet_declaring_the_whole_grid_costs_what_it_holds(world: World) -> None:
    data = wide_declared_sheet(20_000)
    assert len(data) < 300_000
    before = _peak_mb()
    table = imports.read_table("名册.xlsx", data)
    # padded to the declared width it would be 20,000 × 16,384 cells (gigabytes)
    assert max(len(r) for r in table.rows) == 1
    assert _peak_mb() - before < 300
    assert imports.count_rows("名册.xlsx", data) == 20_000


def test_too_many_rows_or_columns_are_refused_with_a_message(world: World, settings: Any) -> None:
    settings.IMPORT_MAX_ROWS = 10
    before = snapshot()
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], "名册.xlsx", wide_declared_sheet(11))
    assert batch.state == ImportBatch.State.INVALID
    assert "超过 10 行" in batch.errors[0]["message"] and batch.errors[0]["file"] == "名册.xlsx"
    settings.IMPORT_MAX_COLUMNS = 5
    wide = xlsx_bytes([GOOD[0]])
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], "名册2.xlsx", wide)
    assert batch.state == ImportBatch.State.INVALID and "超过上限 5 列" in batch.errors[0]["message"]
    assert snapshot() == before


def test_a_zip_bomb_is_refused_before_it_is_unpacked(world: World, settings: Any) -> None:
    settings.IMPORT_MAX_UNPACKED_BYTES = 10 * 1024 * 1024
    # 50 MB of zeros compresses to ~50 KB
    bomb = _rewrite(xlsx_bytes(GOOD), "docProps/app.xml", lambda body: body + b" " * (50 * 1024 * 1024))
    assert len(bomb) < 200_000
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], "名册.xlsx", bomb)
    assert batch.state == ImportBatch.State.INVALID and "解压后" in batch.errors[0]["message"]


def test_xml_entities_are_refused(world: World) -> None:
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>')

    def with_entities(xml: bytes) -> bytes:
        body = xml.split(b"?>", 1)[-1]
        assert b"T0001" in body
        return laughs + body.replace(b"T0001", b"&lol2;")

    data = _rewrite(xlsx_bytes(GOOD), "xl/worksheets/sheet1.xml", with_entities)
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], "名册.xlsx", data)
    assert batch.state == ImportBatch.State.INVALID
    assert "XML 实体声明" in batch.errors[0]["message"] and Record.objects.count() == 0


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("名册.xlsx", b"<html><script>alert(1)</script></html>", "不是 Excel"),
    ("名册.csv", xlsx_bytes(GOOD), "扩展名是 .csv"),
    ("../../etc/名册.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "不支持的文件类型"),
])
def test_content_not_matching_the_name_is_refused(world: World, name: str, data: bytes, reason: str) -> None:
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], name, data)
    assert batch.state == ImportBatch.State.INVALID and reason in batch.errors[0]["message"], batch.errors
    assert "/" not in batch.file_name and "/etc/" not in batch.file.name


def _declaration(**extra: Any) -> dict[str, Any]:
    return {"year": "2026", "title": "培训", "form": "集中", "level": "区县级", "hours": "8", "result": "合格", **extra}


def test_evidence_per_declaration_is_limited(world: World, settings: Any) -> None:
    settings.EVIDENCE_MAX_FILES = 3
    settings.EVIDENCE_MAX_TOTAL_BYTES = 2 * 1024 * 1024
    alice = login("alice")
    files = [SimpleUploadedFile(f"{i}.pdf", PDF, content_type="application/pdf") for i in range(4)]
    response = alice.post(reverse("declare"), _declaration(evidence=files))
    assert response.status_code == 400 and "最多附 3 个" in response.content.decode()
    big = PDF + b"0" * (1024 * 1024)
    files = [SimpleUploadedFile(f"{i}.pdf", big, content_type="application/pdf") for i in range(2)]
    response = alice.post(reverse("declare"), _declaration(evidence=files))
    assert response.status_code == 400 and "合计不能超过 2MB" in response.content.decode()
    assert Record.objects.count() == 0 and Evidence.objects.count() == 0


def test_evidence_name_is_a_label_never_a_path_and_svg_is_refused(world: World) -> None:
    alice = login("alice")
    svg = SimpleUploadedFile("a.pdf", b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>",
                             content_type="application/pdf")
    response = alice.post(reverse("declare"), _declaration(evidence=[svg]))
    assert response.status_code == 400 and "不是 PDF" in response.content.decode()
    sneaky = SimpleUploadedFile("..\\..\\证书.pdf", PDF, content_type="application/pdf")
    assert alice.post(reverse("declare"), _declaration(evidence=[sneaky])).status_code == 302
    ev = Evidence.objects.get()
    assert ev.original_name == "证书.pdf" and ".." not in ev.file.name


def test_a_request_larger_than_the_limit_is_refused_before_it_is_read(world: World, settings: Any) -> None:
    settings.REQUEST_MAX_BYTES = 1024 * 1024
    alice = login("alice")
    files = [SimpleUploadedFile(f"{i}.pdf", PDF + b"0" * 400_000, content_type="application/pdf") for i in range(3)]
    response = alice.post(reverse("declare"), _declaration(evidence=files))
    assert response.status_code == 413 and "超过每次请求 1MB" in response.content.decode()
    assert Record.objects.count() == 0


FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


@pytest.mark.parametrize("payload", FORMULAS)
def test_every_export_neutralises_formulas(world: World, payload: str) -> None:
    from openpyxl import load_workbook

    world.record("alice", title=payload, status="school_approved")
    teacher = world.teachers["alice"]
    teacher.name = payload
    teacher.save()
    exports = [(login("alice"), reverse("teacher-export")),
               (login("carol"), reverse("dashboard-export", args=[world.orgs["east"].pk]))]
    for client, url in exports:
        response = client.get(url)
        assert response.status_code == 200, url
        wb = load_workbook(io.BytesIO(response.content))
        cells = [c.value for ws in wb.worksheets for r in ws.iter_rows() for c in r if isinstance(c.value, str)]
        assert not [v for v in cells if v.startswith(("=", "+", "-", "@", "\t", "\r"))], (url, cells)
        # (XML reads a CR back as LF)
        assert any(v.startswith("'") and v[1:] == payload.replace("\r", "\n") for v in cells), url


def test_a_csv_line_of_millions_of_cells_is_refused(world: World) -> None:
    data = ("教师编号" + "," * 3_000_000 + "\n").encode()
    before = _peak_mb()
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], "名册.csv", data)
    assert batch.state == ImportBatch.State.INVALID and "超过上限 1024KB" in batch.errors[0]["message"]
    assert _peak_mb() - before < 200

