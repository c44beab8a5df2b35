"""XLSX exports.  Cells are written as text where they came from users, with
formula-looking text neutralised (a leading = + - @ is prefixed with an
apostrophe) so a spreadsheet never executes what a user typed; ID numbers are
always text, never numbers that Excel would round."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from xuefen.web.models import Teacher, TeacherResult

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value  # openpyxl writes a Decimal from its exact text
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def attachment_name(filename: str) -> str:
    """A Content-Disposition value that survives Chinese file names."""
    return f"attachment; filename*=UTF-8''{quote(filename)}"


def workbook(sheets: Iterable[tuple[str, Sequence[str], Iterable[Sequence[Any]]]], text_columns: set[str]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for title, headers, rows in sheets:
        ws = wb.create_sheet(title)
        ws.append(list(headers))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        text_idx = {i for i, h in enumerate(headers) if h in text_columns}
        for row in rows:
            ws.append([safe_cell(str(v)) if i in text_idx and v is not None else safe_cell(v)
                       for i, v in enumerate(row)])
            for i in text_idx:
                ws.cell(row=ws.max_row, column=i + 1).number_format = "@"
        for i, h in enumerate(headers, start=1):
            ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = max(10, len(str(h)) * 2 + 2)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def teacher_account_xlsx(teacher: Teacher, summary: dict[str, Any], full_id: bool) -> bytes:
    data = summary.get("data") or {}
    explanations = summary.get("explanations", {})
    info = [
        ("教师编号", teacher.teacher_no), ("姓名", teacher.name),
        ("身份证号", teacher.id_number if full_id else teacher.masked_id), ("学校", teacher.school.name),
        ("政策", (data.get("policy") or {}).get("name", "")), ("周期结论", data.get("status", "")),
        ("周期计入学分", data.get("total", "")),
    ]
    records = [
        (r.uid, r.year, r.title, r.get_source_display(), r.get_status_display(), r.credits, r.credit_category,
         explanations.get(r.uid, r.explanation))
        for r in teacher.records.order_by("year", "uid")
    ]
    categories = [(name, v["earned"], v["counted"], v["required"], v["shortfall"])
                  for name, v in (data.get("categories") or {}).items()]
    return workbook(
        [
            ("个人信息", ["项目", "内容"], info),
            ("学分类别", ["类别", "已获", "计入", "要求", "尚缺"], categories),
            ("学分记录", ["记录编号", "年度", "项目名称", "来源", "状态", "学分", "类别", "计算依据"], records),
        ],
        text_columns={"内容", "记录编号", "项目名称", "计算依据"},
    )


def _result_figures(result: TeacherResult | None, year: int) -> tuple[Any, ...]:
    """The stored engine verdict of one teacher, as table cells."""
    if result is None:
        return ("", "", "", "", "")
    year_data = (result.data.get("years") or {}).get(str(year)) or {}
    year_ok = {True: "是", False: "否", None: "不考核"}[result.year_passed]
    return (result.status, result.total, result.year_total, year_ok, _dec(year_data.get("shortfall")))


def _dec(value: Any) -> Any:
    return Decimal(str(value)) if value not in (None, "") else ""


def unit_xlsx(node_name: str, rows: Sequence[dict[str, Any]], teachers: Iterable[Teacher], year: int,
              full_id: bool) -> bytes:
    """A unit's table (its child units) and its teachers, as the dashboard
    shows them; 身份证号 masked unless ``full_id``."""
    unit_rows = [
        (r["org"].name, r["org"].get_kind_display(), r["teachers"], r["passed"], r["in_progress"], r["failed"],
         r["unevaluated"], r["year_passed"], r["year_checked"])
        for r in rows
    ]
    teacher_rows = [
        (t.teacher_no, t.name, t.id_number if full_id else t.masked_id, t.school.name,
         *_result_figures(getattr(t, "result", None), year))
        for t in teachers
    ]
    sheets: list[tuple[str, Sequence[str], Iterable[Sequence[Any]]]] = []
    if unit_rows:
        sheets.append(("单位", ["单位", "类型", "教师数", "达标（含提前完成）", "进行中", "未达标", "未评估",
                                f"{year}年已达标", f"{year}年须考核"], unit_rows))
    sheets.append(("教师", ["教师编号", "姓名", "身份证号", "学校", "周期结论", "周期计入学分",
                            f"{year}年计入学分", f"{year}年达标", f"{year}年尚缺"], teacher_rows))
    sheets.append(("说明", ["项目", "内容"], [("单位", node_name), ("数据", "学分政策引擎的评估结果")]))
    return workbook(sheets, text_columns={"单位", "教师编号", "姓名", "身份证号", "学校", "内容"})
