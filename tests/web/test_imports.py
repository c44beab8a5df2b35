"""Roster imports: every bad file is refused row by row with the database
unchanged; a good file imports in one go and only once; who is refused.

Every input file is built here, in the test."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from tests.web.conftest import PASSWORD, World

from xuefen import idnumber
from xuefen.web.models import (
    AuditEntry,
    ImportBatch,
    Notification,
    Org,
    OrgKind,
    Profile,
    Record,
    Role,
    Source,
    Status,
    TeacherResult,
)
from xuefen.web.services import evaluation, imports
from xuefen.web.services.ledger import Actor, Denied

HEADER = ["教师编号", "姓名", "记录编号", "登记年度", "培训项目名称", "形式", "级别", "学时", "考核结果"]
TITLE = "2026年区级骨干教师培训"


def row(teacher_no: Any, uid: Any = "1", *, title: str = TITLE, hours: Any = "24", result: str = "合格",
        name: str = "") -> list[Any]:
    return [teacher_no, name, uid, "2026", title, "集中", "区县级", hours, result]


GOOD = [row("T0001", "1", name="alice"), row("T0002", "1", name="anna"), row("T0003", "1", name="ella"),
        row("T0004", "1", name="will")]


def csv_bytes(rows: list[list[Any]], header: list[str] = HEADER, encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[Any]], header: list[str] = HEADER) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "学分记录"
    ws.append(header)
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def act(world: World, name: str) -> Actor:
    return Actor(world.users[name], "127.0.0.1")


def snapshot() -> tuple[int, int, int, int]:
    return (Record.objects.count(), ImportBatch.objects.filter(state=ImportBatch.State.DONE).count(),
            AuditEntry.objects.filter(action="import").count(), Notification.objects.count())


def id_of(world: World, name: str) -> str:
    return world.teachers[name].id_number


def with_ids(world: World, rows: list[list[Any]], ids: list[Any]) -> tuple[list[list[Any]], list[str]]:
    return [[*r, i] for r, i in zip(rows, ids, strict=True)], [*HEADER, "身份证号"]


# ------------------------------------------------------------------ the error corpus
#
# Each case: who uploads for which unit, the file, and the (row, column, reason)
# problems the page must show.  Rows are spreadsheet rows: the header is row 1.

Case = Callable[[World], tuple[str, str, str, bytes, list[tuple[int | None, str | None, str]]]]


def unknown_teacher(w: World) -> Any:
    return "ivan", "inst", "名册.csv", csv_bytes([GOOD[0], row("T9999")]), [(3, "教师编号", "不存在")]


def outside_scope(w: World) -> Any:
    # bob is the officer of 东区实验小学; ella teaches at 东区第二中学
    return "bob", "east-1", "名册.csv", csv_bytes([GOOD[0], GOOD[2]]), [(3, "教师编号", "不在“东区实验小学”范围内")]


def bad_id_number(w: World) -> Any:
    wrong = id_of(w, "alice")[:17] + ("0" if id_of(w, "alice")[17] != "0" else "1")
    other = idnumber.make("110101", "19900101", 7)  # well formed, but not anna's
    rows, header = with_ids(w, GOOD[:3], [wrong, other, "12345"])
    return "ivan", "inst", "名册.csv", csv_bytes(rows, header), [
        (2, "身份证号", "校验位不正确"), (3, "身份证号", "不一致"), (4, "身份证号", "应为18位")]


def mangled_xlsx(w: World) -> Any:
    rows, header = with_ids(w, [GOOD[0], GOOD[1], row(1.10101e17, "2")], [id_of(w, "alice"), 1.10101e17, None])
    return "ivan", "inst", "名册.xlsx", xlsx_bytes(rows, header), [
        (3, "身份证号", "科学计数法"), (4, "教师编号", "科学计数法")]


def mangled_csv(w: World) -> Any:
    rows, header = with_ids(w, [GOOD[0], GOOD[1], row("1.10101E+17", "2")], [id_of(w, "alice"), "1.10101E+17", ""])
    return "ivan", "inst", "名册.csv", csv_bytes(rows, header), [
        (3, "身份证号", "科学计数法"), (4, "教师编号", "科学计数法")]


def undecodable(w: World) -> Any:
    data = csv_bytes(GOOD[:1]) + "\n".join(["T0002,安娜,2,2026,培训,集中,区县级,24,合格"]).encode("utf-8") + b"\x80\xff"
    return "ivan", "inst", "名册.csv", data, [(None, None, "无法识别的文字编码")]


def utf16(w: World) -> Any:
    return "ivan", "inst", "名册.csv", csv_bytes(GOOD, encoding="utf-16"), [(None, None, "UTF-16")]


def duplicate_rows(w: World) -> Any:
    return "ivan", "inst", "名册.csv", csv_bytes([GOOD[0], GOOD[1], GOOD[0]]), [(4, "记录编号", "与第2行重复")]


def duplicate_of_stored(w: World) -> Any:
    w.record("alice")  # stored as X001
    return "ivan", "inst", "名册.csv", csv_bytes([row("T0001", "X001"), GOOD[1]]), [(2, "记录编号", "已存在于平台")]


def hours_above_course_column(w: World) -> Any:
    rows = [[*GOOD[0], "20"], [*row("T0002", hours="18"), "20"], [*row("T0003", hours="20.5"), "20"]]
    return "ivan", "inst", "名册.csv", csv_bytes(rows, [*HEADER, "课程学时"]), [
        (2, "学时", "超过本行的课程学时 20"), (4, "学时", "超过本行的课程学时 20")]


def course_hours_disagree(w: World) -> Any:
    rows = [[*GOOD[0], "24"], [*GOOD[1], "30"]]
    return "ivan", "inst", "名册.csv", csv_bytes(rows, [*HEADER, "课程学时"]), [(3, "课程学时", "与第2行（24）不一致")]


def too_many_excellent(w: World) -> Any:
    w.orgs["east"].policy = "chifeng"
    w.orgs["east"].save()
    rows = [row("T0001", result="优秀"), row("T0002", result="优秀"), row("T0003"), row("T0004")]
    why = "共 4 人，优秀 2 人，超过 25%（最多 1 人；赤峰市办法 第十九条）"
    return "ivan", "inst", "名册.xlsx", xlsx_bytes(rows), [(2, "考核结果", why), (3, "考核结果", why)]


def wrong_name(w: World) -> Any:
    # a mistyped 教师编号 that hits another teacher is caught by the name
    return "ivan", "inst", "名册.csv", csv_bytes([GOOD[0], row("T0002", name="ella")]), [(3, "姓名", "姓名与教师编号“T0002”")]


def reader_problems_and_platform_problems(w: World) -> Any:
    # the reader's findings (a bad 形式) and the platform's (unknown teacher) in one pass
    bad = row("T0002")
    bad[5] = "飞行"
    return "ivan", "inst", "名册.csv", csv_bytes([GOOD[0], bad, row("T8888")]), [
        (3, "形式", "不是可识别的取值"), (4, "教师编号", "不存在")]


def category_the_policy_does_not_know(w: World) -> Any:
    # alice's school is bound to 永吉 (东区): a category it does not name is
    # refused with the accepted values, never stored as 0 credits
    rows = [[*GOOD[0], "选秀"], [*GOOD[1], ""]]
    return "ivan", "inst", "名册.csv", csv_bytes(rows, [*HEADER, "学分类别"]), [
        (2, "学分类别", "学分类别“选秀”不属于")]


CASES: list[Case] = [unknown_teacher, outside_scope, bad_id_number, mangled_xlsx, mangled_csv, undecodable, utf16,
                     duplicate_rows, duplicate_of_stored, hours_above_course_column, course_hours_disagree,
                     too_many_excellent, wrong_name, reader_problems_and_platform_problems,
                     category_the_policy_does_not_know]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_every_bad_file_is_refused_row_by_row_and_nothing_is_stored(world: World, case: Case) -> None:
    who, unit, name, data, expected = case(world)
    before = snapshot()
    batch = imports.validate_roster(act(world, who), world.orgs[unit], name, data)
    assert batch.state == ImportBatch.State.INVALID
    got = [(e["row"], e["column"], e["message"]) for e in batch.errors]
    for exp_row, exp_column, reason in expected:
        assert any(r == exp_row and c == exp_column and reason in m for r, c, m in got), (exp_row, exp_column,
                                                                                           reason, got)
    assert all(e["file"] == name for e in batch.errors)
    assert len(got) == len(expected), got
    assert snapshot() == before
    # confirming an invalid batch is refused and still writes nothing
    with pytest.raises(imports.ServiceError):
        imports.commit_batch(act(world, who), batch)
    assert snapshot() == before


def test_gbk_csv_reads_fine_and_imports(world: World) -> None:
    data = csv_bytes([row("T0001", title="师德师风专题培训（第二期）", name="alice")], encoding="gbk")
    data.decode("gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    batch = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.csv", data)
    assert batch.state == ImportBatch.State.VALID, batch.errors
    batch = imports.commit_batch(act(world, "ivan"), batch)
    assert Record.objects.get().title == "师德师风专题培训（第二期）"


def test_excellent_share_applies_only_where_a_policy_sets_it(world: World) -> None:
    rows = [row("T0001", result="优秀"), row("T0002", result="优秀"), row("T0003"), row("T0004")]
    batch = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.csv", csv_bytes(rows))
    assert batch.state == ImportBatch.State.VALID  # yongji and shandong set no share
    world.orgs["east"].policy = "chifeng"
    world.orgs["east"].save()
    one_in_four = [row("T0001", "2", result="优秀"), row("T0002", "2"), row("T0003", "2"), row("T0004", "2")]
    batch = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册2.csv", csv_bytes(one_in_four))
    assert batch.state == ImportBatch.State.VALID, batch.errors
    imports.commit_batch(act(world, "ivan"), batch)
    # the class counts what this institution imported before: 2 of 8 is fine, 3 of 8 is not
    more = [row("T0001", "3", result="优秀"), row("T0002", "3"), row("T0003", "3"), row("T0004", "3")]
    assert imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册3.csv",
                                   csv_bytes(more)).state == ImportBatch.State.VALID
    worse = [row("T0001", "4", result="优秀"), row("T0002", "4", result="优秀"), row("T0003", "4"), row("T0004", "4")]
    batch = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册4.csv", csv_bytes(worse))
    assert batch.state == ImportBatch.State.INVALID
    assert "共 8 人（含本单位此前导入的 4 人），优秀 3 人" in batch.errors[0]["message"]


def test_excellent_share_can_be_switched_off_by_setting(world: World, settings: Any) -> None:
    world.orgs["east"].policy = "chifeng"
    world.orgs["east"].save()
    settings.XUEFEN_IMPORT_EXCELLENT_LIMITS = {}
    rows = [row("T0001", result="优秀"), row("T0002", result="优秀")]
    batch = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.csv", csv_bytes(rows))
    assert batch.state == ImportBatch.State.VALID


def test_course_hours_from_the_upload_form(world: World) -> None:
    data = csv_bytes([GOOD[0], row("T0002", hours="30")])
    batch = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.csv", data, Decimal(24))
    assert [(e["row"], e["column"]) for e in batch.errors] == [(3, "学时")]
    assert "超过上传时填写的课程学时 24" in batch.errors[0]["message"]


# ------------------------------------------------------------------ a good file


def test_good_file_imports_in_one_go_and_only_once(world: World) -> None:
    rows, header = with_ids(world, GOOD, [id_of(world, n) for n in ("alice", "anna", "ella", "will")])
    data = xlsx_bytes(rows, header)
    batch = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.xlsx", data)
    assert batch.state == ImportBatch.State.VALID and batch.errors == [] and batch.total_rows == 4
    assert not Record.objects.exists()
    batch = imports.commit_batch(act(world, "ivan"), batch)
    assert batch.state == ImportBatch.State.DONE and batch.created_rows == 4
    records = Record.objects.order_by("teacher__teacher_no")
    assert [r.teacher.name for r in records] == ["alice", "anna", "ella", "will"]
    assert all(r.source == Source.INSTITUTION and r.status == Status.PENDING and r.import_batch == batch
               and r.created_by == world.users["ivan"] and r.policy_id for r in records)
    assert records[0].credits == Decimal(24)  # 24 h of 区县级 集中 × 1.0 under yongji, converted by the system
    assert TeacherResult.objects.count() == 4  # every touched teacher re-evaluated
    entry = AuditEntry.objects.get(action="import")
    assert entry.object_id == str(batch.pk) and entry.after and entry.after["records"] == 4
    assert Notification.objects.filter(user=world.users["alice"], message__contains="市教师进修学院").exists()

    before = snapshot()
    again = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册（副本）.xlsx", data)
    assert again.pk == batch.pk and again.state == ImportBatch.State.DONE
    assert imports.commit_batch(act(world, "ivan"), again).pk == batch.pk
    assert snapshot() == before
    assert ImportBatch.objects.count() == 1


def test_status_follows_the_importer(world: World) -> None:
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], "校本.csv", csv_bytes(GOOD[:2]))
    imports.commit_batch(act(world, "bob"), batch)
    assert set(Record.objects.values_list("status", flat=True)) == {Status.SCHOOL_APPROVED}
    # approved records count at once
    assert TeacherResult.objects.get(teacher=world.teachers["alice"]).year_total == Decimal(24)
    batch = imports.validate_roster(act(world, "carol"), world.orgs["east"], "区级.csv",
                                    csv_bytes([row("T0003", "9")]))
    imports.commit_batch(act(world, "carol"), batch)
    assert Record.objects.get(uid="9").status == Status.DISTRICT_APPROVED


def test_fixed_file_after_a_failed_one_imports(world: World) -> None:
    bad = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.csv",
                                  csv_bytes([GOOD[0], row("T9999"), GOOD[1]]))
    assert bad.state == ImportBatch.State.INVALID
    fixed = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.csv", csv_bytes([GOOD[0], GOOD[1]]))
    assert fixed.pk != bad.pk and fixed.state == ImportBatch.State.VALID
    assert imports.commit_batch(act(world, "ivan"), fixed).state == ImportBatch.State.DONE
    assert Record.objects.count() == 2
    # the same failed file again is checked again (and fails again, now also as a duplicate)
    again = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.csv",
                                    csv_bytes([GOOD[0], row("T9999"), GOOD[1]]))
    assert again.state == ImportBatch.State.INVALID and len(again.errors) == 3


def test_commit_checks_again_and_writes_nothing_on_a_late_conflict(world: World) -> None:
    batch = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.csv", csv_bytes(GOOD))
    assert batch.state == ImportBatch.State.VALID
    # someone stores anna's record 1 meanwhile
    Record.objects.create(teacher=world.teachers["anna"], uid="1", year=2026, source=Source.SCHOOL,
                          status=Status.SCHOOL_APPROVED)
    before = snapshot()
    batch = imports.commit_batch(act(world, "ivan"), batch)
    assert batch.state == ImportBatch.State.INVALID
    assert [(e["row"], e["column"]) for e in batch.errors] == [(3, "记录编号")]
    assert snapshot() == before


def test_failure_while_writing_leaves_nothing_half_written(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.csv", csv_bytes(GOOD))

    def flaky(teachers: Any, today: Any = None) -> None:
        # two results are stored, then the engine fails
        evaluation.refresh_results(list(teachers)[:2], today)
        raise RuntimeError("engine down")

    monkeypatch.setattr(imports, "refresh_results", flaky)
    before = snapshot()
    with pytest.raises(RuntimeError):
        imports.commit_batch(act(world, "ivan"), batch)
    assert snapshot() == before
    assert not TeacherResult.objects.exists()
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.INVALID and "未写入任何记录" in batch.errors[0]["message"]


# ------------------------------------------------------------------ who is refused


def test_other_institution_and_sibling_school_are_refused(world: World) -> None:
    other = Org.objects.create(name="某培训公司", kind=OrgKind.INSTITUTION, parent=world.orgs["city"])
    olga = User.objects.create_user("olga", password=PASSWORD)
    Profile.objects.create(user=olga, role=Role.INSTITUTION_STAFF, org=other)
    data = csv_bytes(GOOD[:1])
    with pytest.raises(Denied):
        imports.validate_roster(Actor(olga), world.orgs["inst"], "名册.csv", data)
    with pytest.raises(Denied):
        imports.validate_roster(act(world, "bert"), world.orgs["east-1"], "名册.csv", data)  # sibling school
    for who in ("alice", "pat", "audrey", "sam"):
        with pytest.raises(Denied):
            imports.validate_roster(act(world, who), world.orgs["east-1"], "名册.csv", data)
    assert not ImportBatch.objects.exists()
    batch = imports.validate_roster(act(world, "ivan"), world.orgs["inst"], "名册.csv", data)
    with pytest.raises(Denied):
        imports.commit_batch(Actor(olga), batch)
    assert not Record.objects.exists()


# ------------------------------------------------------------------ background work


def test_large_file_runs_through_the_task_with_progress(world: World, settings: Any) -> None:
    settings.IMPORT_BACKGROUND_ROWS = 2
    from xuefen.web import tasks

    batch = imports.receive(act(world, "ivan"), world.orgs["inst"], "名册.csv", csv_bytes(GOOD))
    assert imports.runs_in_background(batch)
    assert tasks.check_import.delay(batch.pk).get() == ImportBatch.State.VALID
    batch.refresh_from_db()
    assert batch.done_rows == batch.total_rows == 4
    assert imports.queue_commit(act(world, "ivan"), batch)
    assert not imports.queue_commit(act(world, "ivan"), batch)  # a second click does not start a second run
    assert tasks.commit_import.delay(batch.pk, world.users["ivan"].pk).get() == ImportBatch.State.DONE
    assert Record.objects.count() == 4


# ------------------------------------------------------------------ the pages


def login(world: World, name: str) -> Client:
    client = Client()
    assert client.login(username=name, password=PASSWORD)
    return client


def test_upload_error_table_fix_confirm_through_the_pages(world: World) -> None:
    client = login(world, "ivan")
    page = client.get(reverse("imports"))
    assert page.status_code == 200 and "csrfmiddlewaretoken" in page.content.decode()
    assert reverse("imports-template") in page.content.decode()

    bad = csv_bytes([GOOD[0], row("T9999"), row("T0002", hours="二十")])
    response = client.post(reverse("imports"), {"org": world.orgs["inst"].pk,
                                                "file": SimpleUploadedFile("名册.csv", bad)}, follow=True)
    html = response.content.decode()
    assert "发现 2 处问题" in html and "第3行" in html and "教师编号“T9999”在平台中不存在" in html
    assert "第4行" in html and "学时" in html and "确认导入" not in html
    assert not Record.objects.exists()

    good = csv_bytes(GOOD[:2])
    response = client.post(reverse("imports"), {"org": world.orgs["inst"].pk,
                                                "file": SimpleUploadedFile("名册.csv", good)}, follow=True)
    html = response.content.decode()
    assert "全部 2 行通过校验" in html and "确认导入" in html
    batch = ImportBatch.objects.get(state=ImportBatch.State.VALID)
    response = client.post(reverse("imports-confirm", args=[batch.pk]), follow=True)
    assert "已导入 2 条记录" in response.content.decode()
    assert Record.objects.filter(import_batch=batch).count() == 2

    response = client.post(reverse("imports"), {"org": world.orgs["inst"].pk,
                                                "file": SimpleUploadedFile("again.csv", good)}, follow=True)
    assert "本次未重复导入任何记录" in response.content.decode()
    assert Record.objects.count() == 2

    history = client.get(reverse("imports")).content.decode()
    assert history.count("名册.csv") == 2 and "已完成" in history and "有错误" in history

    template = client.get(reverse("imports-template"))
    assert template.status_code == 200 and template.content[:2] == b"PK"


def test_pages_refuse_other_units(world: World) -> None:
    batch = imports.validate_roster(act(world, "bob"), world.orgs["east-1"], "名册.csv", csv_bytes(GOOD[:1]))
    client = login(world, "bert")
    assert client.get(reverse("imports-detail", args=[batch.pk])).status_code == 404
    assert client.post(reverse("imports-confirm", args=[batch.pk])).status_code == 404
    response = client.post(reverse("imports"), {"org": world.orgs["east-1"].pk,
                                                "file": SimpleUploadedFile("x.csv", csv_bytes(GOOD[:1]))})
    assert response.status_code == 404
    assert login(world, "alice").get(reverse("imports")).status_code == 404
    assert not Record.objects.exists()


def test_progress_fragment_polls_while_running_and_reloads_after(world: World, settings: Any) -> None:
    batch = imports.receive(act(world, "ivan"), world.orgs["inst"], "名册.csv", csv_bytes(GOOD))
    client = login(world, "ivan")
    page = client.get(reverse("imports-detail", args=[batch.pk])).content.decode()
    assert "htmx.min.js" in page and "hx-get" in page and "<progress" in page
    fragment = client.get(reverse("imports-progress", args=[batch.pk]))
    assert "hx-trigger" in fragment.content.decode() and "HX-Refresh" not in fragment
    imports.check_batch(batch)
    fragment = client.get(reverse("imports-progress", args=[batch.pk]))
    assert fragment["HX-Refresh"] == "true" and "4 / 4" in fragment.content.decode()


def test_background_upload_through_the_page(world: World, settings: Any) -> None:
    settings.IMPORT_BACKGROUND_ROWS = 2
    client = login(world, "ivan")
    response = client.post(reverse("imports"), {"org": world.orgs["inst"].pk,
                                                "file": SimpleUploadedFile("名册.csv", csv_bytes(GOOD))}, follow=True)
    assert "全部 4 行通过校验" in response.content.decode()  # eager without a broker
    batch = ImportBatch.objects.get()
    client.post(reverse("imports-confirm", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.DONE and Record.objects.count() == 4
