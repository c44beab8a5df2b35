"""Readers: JSON, CSV (UTF-8, UTF-8 with BOM, GB18030/GBK) and XLSX.

Every input file is built inside the test; no binary fixture is committed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from xuefen import vocab
from xuefen.errors import InputError, Problem
from xuefen.io.readers import RECORD_COLUMNS, TEACHER_COLUMNS, read_file
from xuefen.model import Leave, Ledger

CJK = re.compile(r"[\u4e00-\u9fff]")

HEADER = "教师编号,姓名,学段,记录编号,登记年度,形式,级别,学时,考核结果"
ROWS = [
    "T1,张老师,小学,r1,2022,集中培训,县级,24.5,合格",
    "T1,张老师,小学,r2,2022,网络研修,省级,40,优秀",
    "T2,李老师,普通高中,s1,2021,校本,校级,12,",
]


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(InputError) as info:
        read_file(path)
    problems = info.value.problems
    for p in problems:
        assert p.file == path.name, p
        assert CJK.search(p.message), f"message not in Chinese: {p}"
    return problems


def write_json(tmp_path: Path, data: Any, name: str = "ledger.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def write_csv(tmp_path: Path, lines: Sequence[str], encoding: str = "utf-8", name: str = "ledger.csv") -> Path:
    path = tmp_path / name
    # Excel writes CRLF line ends
    path.write_bytes("\r\n".join(lines).encode(encoding) + b"\r\n")
    return path


def write_xlsx(tmp_path: Path, rows: Sequence[Sequence[Any]], name: str = "ledger.xlsx") -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(list(row))
    path = tmp_path / name
    wb.save(path)
    return path


def one_teacher() -> dict[str, Any]:
    return {
        "teacher": {"id": "T1", "name": "张老师", "stage": "小学", "hired_year": 2015,
                    "leaves": [{"year": 2020, "kind": "产假"}]},
        "records": [
            {"id": "r1", "year": 2022, "form": "集中", "level": "区县级", "hours": 24, "result": "合格"},
            {"id": "r2", "year": 2022, "form": "网络", "hours": 20, "approved": True},
        ],
    }


# ------------------------------------------------------------------ JSON


def test_json_one_teacher(tmp_path: Path) -> None:
    [ledger] = read_file(write_json(tmp_path, one_teacher()))
    assert ledger.teacher.id == "T1"
    assert ledger.teacher.stage == "小学"
    assert ledger.teacher.hired_year == 2015
    assert ledger.teacher.leaves == (Leave(2020, "产假", True),)
    assert [r.id for r in ledger.records] == ["r1", "r2"]
    assert ledger.records[0].hours == Decimal(24)
    assert ledger.records[1].approved is True
    assert ledger.records[1].title == ""


def test_json_list_of_teachers(tmp_path: Path) -> None:
    second = one_teacher()
    second["teacher"] = {"id": "T2"}
    ledgers = read_file(write_json(tmp_path, [one_teacher(), second]))
    assert [lg.teacher.id for lg in ledgers] == ["T1", "T2"]
    assert ledgers[1].teacher.name == ""


def test_json_numbers_are_exact_decimals(tmp_path: Path) -> None:
    path = tmp_path / "exact.json"
    path.write_text(
        '{"teacher": {"id": "T1"}, "records": ['
        '{"id": "a", "year": 2022, "hours": 24.5, "credits": 0.1, "days": "2.5"},'
        '{"id": "b", "year": 2022, "hours": 1e1}]}',
        encoding="utf-8",
    )
    [ledger] = read_file(path)
    a, b = ledger.records
    for value in (a.hours, a.credits, a.days, b.hours):
        assert type(value) is Decimal
    assert str(a.hours) == "24.5"
    assert str(a.credits) == "0.1"
    assert a.days == Decimal("2.5")
    assert b.hours == Decimal(10)


def test_json_unknown_keys_name_the_key_path(tmp_path: Path) -> None:
    data = one_teacher()
    data["records"][1]["hourz"] = 3
    data["teacher"]["nmae"] = "x"
    data["extra"] = 1
    problems = problems_of(write_json(tmp_path, data))
    columns = {p.column for p in problems}
    assert columns == {"records[1].hourz", "teacher.nmae", "extra"}
    assert all("未知字段" in p.message for p in problems)


def test_json_unknown_key_in_a_list_names_the_document(tmp_path: Path) -> None:
    data = one_teacher()
    data["records"][0]["levle"] = "省级"
    data["teacher"]["id"] = "T9"
    problems = problems_of(write_json(tmp_path, [one_teacher(), data]))
    assert [p.column for p in problems] == ["[1].records[0].levle"]


def test_json_bad_enum_lists_the_allowed_values(tmp_path: Path) -> None:
    data = one_teacher()
    data["records"][0]["form"] = "集中学习班"
    [problem] = problems_of(write_json(tmp_path, data))
    assert problem.column == "records[0].form"
    assert "集中学习班" in problem.message
    for value in vocab.allowed("form"):
        assert value in problem.message


@pytest.mark.parametrize(
    ("field", "written", "canonical"),
    [("form", "集中培训", "集中"), ("level", "县级", "区县级"), ("level", "自治区级", "省级"),
     ("form", "集中研修", "集中"), ("form", " 网络 研修 ", "网络")],
)
def test_json_variants_are_canonicalised(tmp_path: Path, field: str, written: str, canonical: str) -> None:
    data = one_teacher()
    data["records"][0][field] = written
    [ledger] = read_file(write_json(tmp_path, data))
    assert getattr(ledger.records[0], field) == canonical


def test_json_bad_values_are_all_reported(tmp_path: Path) -> None:
    data = one_teacher()
    data["records"][0].update(hours=-3, year="二〇二二")
    data["records"][1].update(hours="24学时", approved="也许")
    problems = problems_of(write_json(tmp_path, data))
    by_column = {p.column: p.message for p in problems}
    assert set(by_column) == {"records[0].hours", "records[0].year", "records[1].hours", "records[1].approved"}
    assert "负数" in by_column["records[0].hours"]
    assert "“是”或“否”" in by_column["records[1].approved"]


def test_json_float_teacher_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "id.json"
    path.write_text('{"teacher": {"id": 1.10101E+17}, "records": []}', encoding="utf-8")
    [problem] = problems_of(path)
    assert problem.column == "teacher.id"
    assert "文本" in problem.message


def test_json_same_teacher_twice_in_a_list(tmp_path: Path) -> None:
    [problem] = problems_of(write_json(tmp_path, [one_teacher(), one_teacher()]))
    assert problem.column == "[1].teacher.id" and "重复" in problem.message


def test_json_duplicate_record_id_and_duplicate_key(tmp_path: Path) -> None:
    data = one_teacher()
    data["records"][1]["id"] = "r1"
    [problem] = problems_of(write_json(tmp_path, data))
    assert "r1" in problem.message and "重复" in problem.message
    path = tmp_path / "dupkey.json"
    path.write_text('{"teacher": {"id": "T1", "id": "T2"}, "records": []}', encoding="utf-8")
    [problem] = problems_of(path)
    assert "id" in problem.message


def test_json_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"teacher": {"id": "T1"},\n "records": [,]}', encoding="utf-8")
    [problem] = problems_of(path)
    assert "第2行" in problem.message


def test_json_leave_approved_null_means_default(tmp_path: Path) -> None:
    data = one_teacher()
    data["teacher"]["leaves"] = [{"year": 2021, "kind": "产假", "approved": None},
                                 {"year": 2022, "kind": "哺乳期", "approved": False}]
    [ledger] = read_file(write_json(tmp_path, data))
    assert ledger.teacher.leaves == (Leave(2021, "产假", True), Leave(2022, "哺乳期", False))


# ------------------------------------------------------------------ CSV encodings


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_csv_encodings_read_identically(tmp_path: Path, encoding: str) -> None:
    reference = read_file(write_csv(tmp_path, [HEADER, *ROWS], "utf-8", name="ref.csv"))
    ledgers = read_file(write_csv(tmp_path, [HEADER, *ROWS], encoding))
    assert ledgers == reference
    t1, t2 = ledgers
    assert (t1.teacher.id, t1.teacher.name, t2.teacher.stage) == ("T1", "张老师", "高中")
    assert t1.records[0].form == "集中" and t1.records[0].level == "区县级"
    assert t1.records[0].hours == Decimal("24.5")
    assert t2.records[0].result is None


@pytest.mark.parametrize(
    "raw",
    [
        "教师编号,记录编号,登记年度\r\nT1,r1,2022\r\n".encode("utf-16"),
        b"\xe6\x95\x99\xe5\xb8\x88\xe7\xbc\x96\xe5\x8f\xb7,caf\xe9,2022\r\n",  # UTF-8 and Latin-1 mixed
        b"\xef\xbb\xbf\xe6\x95\x99\xe5\xb8\x88\xff\r\n",  # a BOM, then a byte UTF-8 cannot hold
        b"id,\xff\xfe\xfd\r\n",
    ],
)
def test_csv_in_neither_encoding_is_rejected(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(raw)
    [problem] = problems_of(path)
    assert "编码" in problem.message
    assert "\ufffd" not in str(problem)


def test_csv_scientific_id_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["教师编号,记录编号,登记年度", "1.10101E+17,r1,2022", "T2,1.2E+5,2022"])
    problems = problems_of(path)
    assert [(p.row, p.column) for p in problems] == [(2, "教师编号"), (3, "记录编号")]
    assert all("文本" in p.message for p in problems)


# ------------------------------------------------------------------ XLSX


def test_xlsx_with_template_headers(tmp_path: Path) -> None:
    headers = TEACHER_COLUMNS + RECORD_COLUMNS
    blank = dict.fromkeys(headers)
    row1 = {**blank, "教师编号": "T1", "姓名": "张老师", "学段": "小学", "首次任教年份": 2019,
            "师范类毕业": "是", "假期": "2020: 产假；2021:哺乳期", "记录编号": "r1", "登记年度": 2022,
            "培训项目名称": "县级集中培训", "形式": "集中培训", "级别": "县级", "学时": 24.5, "考核结果": "合格",
            "经批准": "否", "认定学分": 3}
    row2 = {**blank, "教师编号": "T1", "记录编号": "r2", "登记年度": 2022.0, "形式": "网络", "学时": 0.1 + 0.2,
            "专题数": 3.0}
    path = write_xlsx(tmp_path, [headers, [row1[h] for h in headers], [row2[h] for h in headers]])
    [ledger] = read_file(path)
    t = ledger.teacher
    assert (t.id, t.name, t.stage, t.hired_year, t.normal_graduate) == ("T1", "张老师", "小学", 2019, True)
    assert t.leaves == (Leave(2020, "产假"), Leave(2021, "哺乳期"))
    r1, r2 = ledger.records
    assert (r1.form, r1.level, r1.hours, r1.approved, r1.credits) == ("集中", "区县级", Decimal("24.5"), False, Decimal(3))
    assert type(r1.hours) is Decimal
    assert r2.year == 2022 and r2.topics == 3
    assert str(r2.hours) == "0.3"  # Excel's 15 significant digits, not the float's tail


@pytest.mark.parametrize("value", [1.10101e17, 110101198001011234.0, 1.5])
def test_xlsx_numeric_mangled_id_is_refused(tmp_path: Path, value: float) -> None:
    path = write_xlsx(tmp_path, [["教师编号", "记录编号", "登记年度"], [value, "r1", 2022]])
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (2, "教师编号")
    assert "文本" in problem.message and "Excel" in problem.message


def test_xlsx_integer_ids_become_text(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, [["教师编号", "记录编号", "登记年度"], [1001, 7, 2022], [1001.0, 8.0, 2022]])
    [ledger] = read_file(path)
    assert ledger.teacher.id == "1001"
    assert [r.id for r in ledger.records] == ["7", "8"]


def test_xlsx_reads_the_data_sheet_not_the_notes(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    notes = wb.active
    assert notes is not None
    notes.title = "填写说明"
    notes.append(["列名", "说明"])
    data = wb.create_sheet("学分记录")
    data.append(["教师编号", "记录编号", "登记年度"])
    data.append(["T1", "r1", 2022])
    path = tmp_path / "sheets.xlsx"
    wb.save(path)
    [ledger] = read_file(path)
    assert ledger.teacher.id == "T1"


def test_xlsx_corrupt_and_old_formats(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    [problem] = problems_of(bad)
    assert "Excel" in problem.message
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    [problem] = problems_of(old)
    assert ".xlsx" in problem.message


# ------------------------------------------------------------------ problems in tables


def test_every_error_names_file_row_column_and_all_are_collected(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [HEADER,
                                "T1,张老师,小学,r1,2022,集中,县级,很多,合格",
                                "T1,张老师,小学,r2,2022,集中学习班,县级,10,合格"])
    problems = problems_of(path)
    assert [(p.row, p.column) for p in problems] == [(2, "学时"), (3, "形式")]
    text = [str(p) for p in problems]
    assert text[0].startswith("文件 ledger.csv 第2行 “学时”：")
    assert "很多" in text[0]
    assert text[1].startswith("文件 ledger.csv 第3行 “形式”：")


def test_row_numbers_count_blank_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["", HEADER, ROWS[0], ",,,,,,,,", "T1,张老师,小学,r2,2022,集中,县级,x,合格"])
    [problem] = problems_of(path)
    assert problem.row == 5


def test_one_problem_for_a_bad_year(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["教师编号,记录编号,登记年度", "T1,r1,明年"])
    [problem] = problems_of(path)
    assert problem.column == "登记年度"


def test_unknown_header_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [HEADER + ",备注", ROWS[0] + ",无"])
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (1, "备注")
    assert "列名" in problem.message


def test_headers_ignore_inner_whitespace_and_accept_json_keys(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["教师 编号,id,year,hours", "T1,r1,2022,8"])
    [ledger] = read_file(path)
    assert ledger.records[0].hours == 8


def test_same_field_twice_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["教师编号,记录编号,登记年度,学时,hours", "T1,r1,2022,8,9"])
    [problem] = problems_of(path)
    assert problem.column == "hours" and "重复" in problem.message


def test_missing_required_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["姓名,学时", "张老师,8"])
    problems = problems_of(path)
    assert sorted(p.column or "" for p in problems) == sorted(["教师编号", "记录编号", "登记年度"])
    assert all(p.row == 1 and "缺少" in p.message for p in problems)


def test_missing_required_values(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["教师编号,记录编号,登记年度", ",r1,2022", "T1,,"])
    problems = problems_of(path)
    assert [(p.row, p.column) for p in problems] == [(2, "教师编号"), (3, "记录编号"), (3, "登记年度")]


def test_conflicting_teacher_info_on_two_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [HEADER, ROWS[0], "T1,张老师,初中,r2,2022,网络,省级,40,优秀"])
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (3, "学段")
    assert "第2行" in problem.message and "小学" in problem.message and "初中" in problem.message


def test_teacher_info_may_be_given_once_and_variants_agree(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [HEADER, "T2,,,s0,2021,校本,校级,12,", ROWS[2],
                                "T2,李老师,高中,s2,2021,校本,校级,6,"])
    [ledger] = read_file(path)
    assert (ledger.teacher.name, ledger.teacher.stage) == ("李老师", "高中")
    assert [r.id for r in ledger.records] == ["s0", "s1", "s2"]


def test_duplicate_record_id(tmp_path: Path) -> None:
    path = write_csv(tmp_path, [HEADER, ROWS[0], ROWS[0].replace("24.5", "8"), ROWS[2].replace("s1", "r1")])
    [problem] = problems_of(path)
    assert (problem.row, problem.column) == (3, "记录编号")
    assert "第2行" in problem.message


def test_bad_leaves_cell(tmp_path: Path) -> None:
    path = write_csv(tmp_path, ["教师编号,假期,记录编号,登记年度", "T1,去年产假,r1,2022", "T2,2022:年假,r1,2022"])
    problems = problems_of(path)
    assert [(p.row, p.column) for p in problems] == [(2, "假期"), (3, "假期")]
    assert "产假" in problems[1].message  # the allowed kinds are listed


def test_empty_and_missing_files(tmp_path: Path) -> None:
    [problem] = problems_of(write_csv(tmp_path, ["", ",,"]))
    assert "没有内容" in problem.message
    with pytest.raises(InputError, match="不存在"):
        read_file(tmp_path / "nowhere.csv")
    assert read_file(write_csv(tmp_path, [HEADER], name="header-only.csv")) == []


def test_ledger_equality_is_structural() -> None:
    # the encoding test compares ledgers with ==; make sure that means something
    assert Ledger.__eq__ is not object.__eq__
