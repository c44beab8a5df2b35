"""The XLSX import template: the file a training institution or school fills
in.  One row per record; the teacher's columns repeat on each of her rows.

The template is generated from the same field tables the readers use
(:data:`xuefen.model.TEACHER_FIELDS`, :data:`xuefen.model.RECORD_FIELDS`) and
the vocabulary, so its headers and dropdowns cannot drift from what is read.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from xuefen import vocab
from xuefen.io.fields import FIELD_HELP
from xuefen.io.readers import DATA_SHEET, LEAVES_HEADER, RECORD_COLUMNS, REQUIRED_COLUMNS, TEACHER_COLUMNS
from xuefen.model import RECORD_FIELDS, TEACHER_FIELDS

NOTES_SHEET = "填写说明"
# Rows prepared with formats and dropdowns; more rows can be added by copying.
PREPARED_ROWS = 2000


_KIND_LABEL = {"str": "文本", "year": "年份", "decimal": "数字", "int": "整数", "bool": "是/否", "enum": "下拉选择"}
_WIDTH = {"教师编号": 16, "姓名": 10, LEAVES_HEADER: 26, "记录编号": 12, "培训项目名称": 32, "学分类别": 14,
          "主题": 14, "项目": 22, "成果类型": 12}


def _fields() -> dict[str, tuple[str, str]]:
    """Chinese header -> (JSON key, kind), teacher columns first."""
    out = {zh: (key, kind) for key, (zh, kind) in TEACHER_FIELDS.items()}
    out[LEAVES_HEADER] = ("leaves", "leaves")
    out.update({zh: (key, kind) for key, (zh, kind) in RECORD_FIELDS.items()})
    return out


def _enum_name(key: str) -> str | None:
    name = {"kind": "leave_kind"}.get(key, key)
    return name if vocab.is_enum(name) else None


def _display_width(text: str) -> int:
    """Width in Excel's character units: a CJK character counts two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def write_template(path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.worksheet.datavalidation import DataValidation

    fields = _fields()
    required = set(REQUIRED_COLUMNS.values())
    headers = TEACHER_COLUMNS + RECORD_COLUMNS
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = DATA_SHEET
    ws.append(headers)
    bold = Font(bold=True)
    teacher_fill = PatternFill("solid", fgColor="E2EFDA")
    record_fill = PatternFill("solid", fgColor="DDEBF7")
    required_font = Font(bold=True, color="C00000")
    thin = Side(style="thin", color="A6A6A6")
    last = PREPARED_ROWS + 1
    for col, header in enumerate(headers, start=1):
        key, kind = fields[header]
        cell = ws.cell(row=1, column=col)
        cell.font = required_font if header in required else bold
        cell.fill = teacher_fill if header in TEACHER_COLUMNS else record_fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = Border(bottom=thin)
        enum = _enum_name(key)
        note = FIELD_HELP.get(header, "")
        if header in required:
            note = "【必填】" + note
        if enum:
            note += "\n可选：" + "、".join(vocab.allowed(enum))
        comment = Comment(note, "xuefen")
        comment.width = 320
        comment.height = 140
        cell.comment = comment
        letter = cell.column_letter
        ws.column_dimensions[letter].width = _WIDTH.get(header, max(10, len(header) * 2 + 4))
        # Identifiers and names stay text: Excel would otherwise turn a long
        # number into 1.10101E+17 and lose its last digits for good.
        if kind in ("str", "leaves"):
            for row in range(2, last + 1):
                ws.cell(row=row, column=col).number_format = "@"
        area = f"{letter}2:{letter}{last}"
        dv: DataValidation | None = None
        if enum:
            dv = DataValidation(type="list", formula1='"' + ",".join(vocab.allowed(enum)) + '"', allow_blank=True)
            dv.error = "不是常用取值。常见的别名（如“集中培训”“县级”）也能识别；确定要保留吗？"
        elif kind == "bool":
            dv = DataValidation(type="list", formula1='"是,否"', allow_blank=True)
            dv.error = "请选择“是”或“否”"
        elif kind == "year":
            dv = DataValidation(type="whole", operator="between", formula1="1950", formula2="2100", allow_blank=True)
            dv.error = "请填写四位年份，如 2022"
        elif kind == "decimal":
            dv = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="0", allow_blank=True)
            dv.error = "请填写不小于 0 的数字"
        elif kind == "int":
            dv = DataValidation(type="whole", operator="greaterThanOrEqual", formula1="0", allow_blank=True)
            dv.error = "请填写不小于 0 的整数"
        if dv is not None:
            # A warning, not a stop: the readers accept the variants listed in
            # the notes sheet, and they say exactly what is wrong otherwise.
            dv.errorStyle = "warning"
            dv.showErrorMessage = True
            dv.errorTitle = header
            ws.add_data_validation(dv)
            dv.add(area)
    ws.row_dimensions[1].height = 30
    ws.freeze_panes = "C2"
    ws.auto_filter.ref = f"A1:{ws.cell(row=1, column=len(headers)).column_letter}1"

    notes = wb.create_sheet(NOTES_SHEET)
    intro = [
        "xuefen 学分记录导入模板",
        "每行一条培训或成果记录；同一教师的多条记录各占一行，“教师编号”每行都要填写，教师的其他信息（绿色列）填写一次即可，填写的须一致。",
        "红色列名为必填：教师编号、记录编号、登记年度。其余列按记录情况填写，不适用的留空。",
        "编号列已设为“文本”格式，请勿改为数字，否则 Excel 会把长编号变成 1.10101E+17 并丢失末几位。",
        "下拉列表给出规范取值；常见的别名（如 集中培训→集中、县级→区县级、自治区级→省级）也能识别，见下表“也接受”。",
        "导入时逐行检查，所有错误一次列出（文件、行号、列名、原因）。",
        "另存为 CSV 时请选“CSV UTF-8（逗号分隔）”；中文 Windows 默认的 GBK 编码 CSV 也能读取。",
    ]
    for line in intro:
        notes.append([line])
    notes["A1"].font = Font(bold=True, size=14)
    notes.append([])
    table_head = len(intro) + 2
    notes.append(["列名", "JSON 键", "必填", "类型", "说明", "可选值", "也接受"])
    for cell in notes[table_head]:
        cell.font = bold
        cell.fill = record_fill
    for header in headers:
        key, kind = fields[header]
        enum = _enum_name(key)
        allowed = "、".join(vocab.allowed(enum)) if enum else ("是、否" if kind == "bool" else "")
        variants = ""
        if enum:
            variants = "；".join(f"{v}→{canon}" for canon, vs in vocab.ENUMS[enum].items() for v in vs)
        json_key = f"teacher.{key}" if header in TEACHER_COLUMNS else key
        notes.append([header, json_key, "是" if header in required else "", _KIND_LABEL.get(kind, "文本"),
                      FIELD_HELP.get(header, ""), allowed, variants])
    widths = (14, 26, 6, 10, 50, 48, 60)
    for letter, width in zip("ABCDEFG", widths, strict=True):
        notes.column_dimensions[letter].width = width
    for row in notes.iter_rows(min_row=table_head + 1):
        lines = 1
        for cell, width in zip(row, widths, strict=False):
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            # not every spreadsheet program fits row heights on opening: set them
            lines = max(lines, -(-_display_width(str(cell.value or "")) // max(1, width - 2)))
        notes.row_dimensions[row[0].row].height = 15 * lines
    notes.freeze_panes = notes.cell(row=table_head + 1, column=2)
    for sheet in (ws, notes):
        sheet.page_setup.orientation = "landscape"
        sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    # the notes print one page wide; the records repeat their header on every page
    notes.page_setup.fitToWidth = 1
    notes.page_setup.fitToHeight = 0
    notes.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"
    wb.save(path)
