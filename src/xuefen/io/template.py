"""The XLSX import template: the file a training institution or school fills
in.  One row per record; the teacher's columns repeat on each of her rows."""

from __future__ import annotations

from pathlib import Path

from xuefen import vocab
from xuefen.io.readers import LEAVES_HEADER, RECORD_COLUMNS, TEACHER_COLUMNS
from xuefen.model import RECORD_FIELDS, TEACHER_FIELDS

_HELP = {
    "教师编号": "必填，文本格式",
    "首次任教年份": "四位年份",
    "调入年份": "从外省市调入的年份",
    "师范类毕业": "是/否",
    LEAVES_HEADER: "年份:类型，多个用分号，如 2022:产假;2023:哺乳期",
    "记录编号": "必填，同一教师内唯一",
    "登记年度": "必填，四位年份",
    "学分类别": "组织机构预设的类别，如 专业必修",
    "学时": "数字",
    "认定学分": "由认定机构预设时填写",
    "结业年度": "跨周期培训的结业年份",
    "补修年度": "补修哪一年的学分",
}


def write_template(path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "学分记录"
    headers = TEACHER_COLUMNS + RECORD_COLUMNS
    ws.append(headers)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    keys = {zh: key for key, (zh, _) in {**TEACHER_FIELDS, **RECORD_FIELDS}.items()}
    kinds = {zh: kind for _, (zh, kind) in {**TEACHER_FIELDS, **RECORD_FIELDS}.items()}
    for col, header in enumerate(headers, start=1):
        cell = ws.cell(row=1, column=col)
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(horizontal="center")
        letter = cell.column_letter
        ws.column_dimensions[letter].width = max(10, len(header) * 2 + 4)
        # Identifiers stay text: Excel would otherwise turn long numbers into 1.1E+17.
        if kinds.get(header) == "str":
            for row in range(2, 2001):
                ws.cell(row=row, column=col).number_format = "@"
        key = keys.get(header)
        enum = {"kind": "leave_kind"}.get(key or "", key or "")
        if enum and vocab.is_enum(enum):
            choices = ",".join(vocab.allowed(enum))
            dv = DataValidation(type="list", formula1=f'"{choices}"', allow_blank=True)
            dv.error = "请从下拉列表中选择"
            ws.add_data_validation(dv)
            dv.add(f"{letter}2:{letter}2000")
        elif kinds.get(header) == "bool":
            dv = DataValidation(type="list", formula1='"是,否"', allow_blank=True)
            ws.add_data_validation(dv)
            dv.add(f"{letter}2:{letter}2000")
    ws.freeze_panes = "A2"
    notes = wb.create_sheet("填写说明")
    notes.append(["列名", "说明", "可选值"])
    for header in headers:
        key = keys.get(header, "")
        enum = {"kind": "leave_kind"}.get(key, key)
        allowed = "、".join(vocab.allowed(enum)) if enum and vocab.is_enum(enum) else ""
        notes.append([header, _HELP.get(header, ""), allowed])
    notes.column_dimensions["A"].width = 16
    notes.column_dimensions["B"].width = 48
    notes.column_dimensions["C"].width = 80
    for cell in notes[1]:
        cell.font = bold
    wb.save(path)
