"""Teacher master data imports through the roster import's two phases:
new teachers, changed facts, leaves with approval, leaving service, moves
between schools and districts (北京 第十四条: the new unit's policy from the
move), every problem with row and column, nothing half-written, audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from tests.web.conftest import World

from xuefen import idnumber
from xuefen.web.models import AuditEntry, ImportBatch, Record, Status, Teacher, UnitTally
from xuefen.web.services import imports, ledger
from xuefen.web.services.teachers import teacher_by_id_number

HEADER = "教师编号,身份证号,姓名,学校,学段,岗位,首次任教年份,调入年份,调入前所在地区,假期,离岗年份\n"
NEW_ID = idnumber.make("220221", "19900505", 77)


def upload(world: World, who: str, text: str, org: str = "east", name: str = "teachers.csv") -> ImportBatch:
    actor = ledger.Actor(world.users[who])
    batch = imports.receive(actor, world.orgs[org], name, text.encode("utf-8"), kind="teachers")
    return imports.check_batch(batch)


def commit(world: World, who: str, batch: ImportBatch) -> ImportBatch:
    return imports.commit_batch(ledger.Actor(world.users[who]), batch)


def test_new_teacher_update_leaves_and_leaving(world: World) -> None:
    text = HEADER + (
        f"T0100,{NEW_ID},新老师,东区第二中学,初中,专任教师,2020,,,2024:产假;2025:病假:未批准,\n"
        "T0001,,,,,,,,,,2026\n"
    )
    batch = upload(world, "carol", text)
    assert batch.state == ImportBatch.State.VALID, batch.errors
    batch = commit(world, "carol", batch)
    assert batch.state == ImportBatch.State.DONE and batch.created_rows == 2
    new = Teacher.objects.get(teacher_no="T0100")
    assert new.school == world.orgs["east-2"] and new.hired_year == 2020
    assert new.leaves == [{"year": 2024, "kind": "产假", "approved": True},
                          {"year": 2025, "kind": "病假", "approved": False}]
    assert teacher_by_id_number(NEW_ID) == new
    assert hasattr(new, "result")  # evaluated
    alice = Teacher.objects.get(teacher_no="T0001")
    assert alice.left_year == 2026 and alice.name == "alice"  # blank cells leave the rest
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"teacher_create", "teacher_update", "import"} <= actions
    entry = AuditEntry.objects.get(action="teacher_create")
    assert NEW_ID not in str(entry.after)  # the 身份证号 is masked in the log
    assert UnitTally.objects.get(org=world.orgs["east-2"]).teachers == 2


def test_bad_rows_named_and_nothing_written(world: World) -> None:
    text = HEADER + (
        f"T0100,{NEW_ID[:-1]}X,新老师,东区第二中学,初中,专任教师,2020,,,,\n"   # bad check digit
        "T0101,,缺身份证,东区第二中学,,,,,,,\n"                                  # new: missing 身份证号
        "T0001,,,不存在的学校,,,,,,,\n"                                          # unknown school
        "T0002,,,,大学,,,,,,\n"                                                  # stage not in the vocabulary
        "T0001,,,,,,2015,2010,,,\n"                                              # transfer before hire; duplicate
        "T0004,,,,,,,,,2024-产假,\n"                                             # will, 西区: out of scope; bad leave
        f"T0102,{world.teachers['anna'].id_number},重复,东区实验小学,,,,,,,\n"   # ID of another teacher
    )
    batch = upload(world, "carol", text)
    assert batch.state == ImportBatch.State.INVALID
    got = {(e["row"], e["column"]) for e in batch.errors}
    for expected in ((2, "身份证号"), (3, "教师编号"), (4, "学校"), (5, "学段"), (6, "调入年份"), (6, "教师编号"),
                     (7, "教师编号"), (7, "假期"), (8, "身份证号")):
        assert expected in got, (expected, batch.errors)
    assert all(e["file"] == "teachers.csv" and e["message"] for e in batch.errors)
    with pytest.raises(ledger.ServiceError):
        commit(world, "carol", batch)
    assert not Teacher.objects.filter(teacher_no__in=["T0100", "T0101", "T0102"]).exists()
    assert Teacher.objects.get(teacher_no="T0002").stage == "小学"


def test_move_to_another_district_keeps_the_ledger_and_applies_the_new_policy(world: World) -> None:
    """alice moves from 东区 (yongji) to 西区 (shandong): cody's district takes
    her with her 身份证号 as proof; her records come along; 调入年份 is the
    year of the move (北京 第十四条); she is evaluated under shandong."""
    record = world.record("alice", status=Status.CERTIFIED, year=2025, hours=Decimal(24))
    alice = world.teachers["alice"]
    assert alice.result.policy_id == "yongji"
    # without the 身份证号 the other district cannot take her
    batch = upload(world, "cody", HEADER + "T0001,,,西区第一中学,,,,,,,\n", org="west")
    assert batch.state == ImportBatch.State.INVALID and "调入本单位" in batch.errors[0]["message"]
    batch = upload(world, "cody", HEADER + f"T0001,{alice.id_number},,西区第一中学,,,,,,,\n", org="west",
                   name="move.csv")
    assert batch.state == ImportBatch.State.VALID, batch.errors
    commit(world, "cody", batch)
    alice.refresh_from_db()
    assert alice.school == world.orgs["west-1"]
    assert alice.transfer_in_year == dt.date.today().year
    assert Record.objects.get(pk=record.pk).teacher_id == alice.pk
    alice.result.refresh_from_db()
    assert alice.result.policy_id == "shandong"
    assert UnitTally.objects.get(org=world.orgs["east-1"]).teachers == 1
    assert UnitTally.objects.get(org=world.orgs["west-1"]).teachers == 2
    assert UnitTally.objects.get(org=world.orgs["east"]).teachers == 2
    move = AuditEntry.objects.get(action="teacher_move")
    assert move.before["school"] == "东区实验小学" and move.after["school"] == "西区第一中学"
    # the receiving unit sees her; the old school does not
    from django.test import Client

    client = Client()
    client.force_login(world.users["wes"])
    assert client.get(f"/teachers/{alice.pk}/").status_code == 200
    client.force_login(world.users["bob"])
    assert client.get(f"/teachers/{alice.pk}/").status_code == 404


def test_institutions_cannot_import_teachers_and_same_file_is_idempotent(world: World) -> None:
    with pytest.raises(ledger.Denied):
        upload(world, "ivan", HEADER, org="inst")
    text = HEADER + "T0002,,,,,,2011,,,,\n"
    first = commit(world, "bob", upload(world, "bob", text, org="east-1"))
    assert first.state == ImportBatch.State.DONE
    again = upload(world, "bob", text, org="east-1")
    assert again.pk == first.pk  # the very same file: nothing twice


def test_xlsx_with_chinese_headers(world: World, tmp_path: Any) -> None:
    import io

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["教师编号", "姓名", "岗位", "师范类毕业"])
    ws.append(["T0002", "安娜", "专任教师", "是"])
    buf = io.BytesIO()
    wb.save(buf)
    batch = imports.check_batch(imports.receive(ledger.Actor(world.users["bob"]), world.orgs["east-1"], "教师.xlsx",
                                                buf.getvalue(), kind="teachers"))
    assert batch.state == ImportBatch.State.VALID, batch.errors
    commit(world, "bob", batch)
    anna = Teacher.objects.get(teacher_no="T0002")
    assert anna.name == "安娜" and anna.normal_graduate is True


def test_a_moved_teacher_keeps_her_old_schools_closed_year_locked(world: World) -> None:
    """alice's 2025 was counted in 东区实验小学's confirmed close; after she
    moves to 东区第二中学 her 2025 records are still locked."""
    from tests.web.test_annual import confirmed

    confirmed(world)
    late = world.record("alice", status=Status.SCHOOL_APPROVED, year=2025, title="晚到")
    batch = upload(world, "carol", HEADER + "T0001,,,东区第二中学,,,,,,,\n")
    commit(world, "carol", batch)
    with pytest.raises(ledger.Conflict, match="东区实验小学 2025 年度已登记"):
        ledger.return_record(ledger.Actor(world.users["carol"]), late.pk, "材料不全")
