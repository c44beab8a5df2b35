"""The published interchange files (docs/interchange/) match what the code
generates and reads.  When one of these fails after a vocabulary or field
change, regenerate the files:

    xuefen schema -o docs/interchange/ledger.schema.json
    xuefen template -o docs/interchange/xuefen-template.xlsx
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from xuefen import vocab
from xuefen.engine.report import dumps
from xuefen.io.readers import DATA_SHEET, RECORD_COLUMNS, TEACHER_COLUMNS, read_file
from xuefen.io.schema import interchange_schema
from xuefen.io.template import NOTES_SHEET, write_template

DOCS = Path(__file__).resolve().parent.parent / "docs" / "interchange"
SCHEMA = DOCS / "ledger.schema.json"
TEMPLATE = DOCS / "xuefen-template.xlsx"
EXAMPLE = DOCS / "example-ledger.json"
REGENERATE = "已发布的文件与代码不一致，请重新生成：xuefen schema -o docs/interchange/ledger.schema.json；" \
             "xuefen template -o docs/interchange/xuefen-template.xlsx"


def test_committed_schema_equals_generated() -> None:
    committed = json.loads(SCHEMA.read_text(encoding="utf-8"))
    generated = json.loads(dumps(interchange_schema()))
    assert committed == generated, REGENERATE
    # and the file is byte-for-byte what `xuefen schema -o` writes
    assert SCHEMA.read_text(encoding="utf-8") == dumps(interchange_schema()) + "\n", REGENERATE


def _header(path: Path) -> list[Any]:
    wb = openpyxl.load_workbook(path)
    try:
        ws = wb[DATA_SHEET]
        return [c.value for c in ws[1]]
    finally:
        wb.close()


def test_template_header_row_equals_reader_columns(tmp_path: Path) -> None:
    fresh = tmp_path / "template.xlsx"
    write_template(fresh)
    expected = TEACHER_COLUMNS + RECORD_COLUMNS
    assert _header(fresh) == expected
    assert _header(TEMPLATE) == expected, REGENERATE


def test_template_layout_for_a_school_officer(tmp_path: Path) -> None:
    path = tmp_path / "template.xlsx"
    write_template(path)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == [DATA_SHEET, NOTES_SHEET]
    ws = wb[DATA_SHEET]
    column = {c.value: c.column_letter for c in ws[1]}
    # identifiers are text-formatted, so Excel cannot turn them into 1.1E+17
    for header in ("教师编号", "记录编号", "姓名"):
        assert ws[f"{column[header]}2"].number_format == "@"
        assert ws[f"{column[header]}500"].number_format == "@"
    assert ws[f"{column['学时']}2"].number_format != "@"
    # every header carries its explanation
    assert all(c.comment is not None and c.comment.text for c in ws[1])
    assert "必填" in ws[f"{column['教师编号']}1"].comment.text
    # dropdowns: every enumerated column lists its canonical values
    lists = {str(dv.sqref).split(":")[0]: dv.formula1 for dv in ws.data_validations.dataValidation
             if dv.type == "list"}
    assert lists[f"{column['形式']}2"] == '"' + ",".join(vocab.allowed("form")) + '"'
    assert lists[f"{column['级别']}2"] == '"' + ",".join(vocab.allowed("level")) + '"'
    assert lists[f"{column['经批准']}2"] == '"是,否"'
    assert all(len(f) <= 255 for f in lists.values())  # Excel's limit for an inline list
    assert ws.freeze_panes == "C2"
    assert ws.column_dimensions[column["培训项目名称"]].width >= 20
    notes = wb[NOTES_SHEET]
    listed = [row[0] for row in notes.iter_rows(values_only=True) if row and row[0] in TEACHER_COLUMNS + RECORD_COLUMNS]
    assert listed == TEACHER_COLUMNS + RECORD_COLUMNS
    wb.close()


@pytest.mark.parametrize("source", ["committed", "generated"])
def test_template_round_trips(tmp_path: Path, source: str) -> None:
    path = tmp_path / "filled.xlsx"
    if source == "generated":
        write_template(path)
    else:
        path.write_bytes(TEMPLATE.read_bytes())
    wb = openpyxl.load_workbook(path)
    ws = wb[DATA_SHEET]
    column = {c.value: c.column for c in ws[1]}
    rows = [
        {"教师编号": "110101198001011234", "姓名": "王老师", "学段": "初中", "首次任教年份": 2019,
         "师范类毕业": "是", "假期": "2021:产假", "记录编号": "1", "登记年度": 2022, "培训项目名称": "县级集中培训",
         "形式": "集中培训", "级别": "县级", "学时": 24.5, "考核结果": "合格"},
        {"教师编号": "110101198001011234", "记录编号": "2", "登记年度": 2022, "形式": "网络", "级别": "省级",
         "学时": 40, "考核结果": "优秀", "经批准": "否", "认定学分": 12},
    ]
    for n, row in enumerate(rows, start=2):
        for header, value in row.items():
            ws.cell(row=n, column=column[header], value=value)
    wb.save(path)
    wb.close()
    [ledger] = read_file(path)
    t = ledger.teacher
    assert (t.id, t.name, t.stage, t.hired_year, t.normal_graduate) == ("110101198001011234", "王老师", "初中",
                                                                        2019, True)
    assert [(lv.year, lv.kind) for lv in t.leaves] == [(2021, "产假")]
    first, second = ledger.records
    assert (first.id, first.year, first.form, first.level, first.hours) == ("1", 2022, "集中", "区县级",
                                                                            Decimal("24.5"))
    assert (second.id, second.form, second.result, second.approved, second.credits) == ("2", "网络", "优秀", False,
                                                                                        Decimal(12))


def _example() -> Any:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_example_is_read() -> None:
    [ledger] = read_file(EXAMPLE)
    assert ledger.teacher.id == "YJ-2019-0137"
    assert ledger.records[1].hours == Decimal("40.5")


def test_example_validates_against_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(_example())
    bad = _example()
    bad["records"][0]["hourz"] = 3
    bad["records"][1]["form"] = "集中学习班"
    bad["records"][2]["hours"] = "-3"
    assert len(list(validator.iter_errors(bad))) == 3
