"""Readers for the interchange format: JSON (one teacher, or a list), and CSV
or XLSX with one row per record and Chinese headers (the template's).

All readers collect every problem first and raise one :class:`InputError`
naming file, row, column and reason; nothing is returned half-read.
"""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from xuefen.errors import InputError, Problem
from xuefen.model import (
    RECORD_FIELDS,
    TEACHER_FIELDS,
    Ledger,
    Record,
    Teacher,
    parse_record,
    parse_teacher,
)

LEAVES_HEADER = "假期"
# header (Chinese or the JSON key) -> ("teacher" | "record", key)
HEADERS: dict[str, tuple[str, str]] = {}
for _key, (_zh, _kind) in TEACHER_FIELDS.items():
    HEADERS[_zh] = ("teacher", _key)
    HEADERS[f"teacher.{_key}"] = ("teacher", _key)
for _key, (_zh, _kind) in RECORD_FIELDS.items():
    HEADERS[_zh] = ("record", _key)
    HEADERS[_key] = ("record", _key)
HEADERS[LEAVES_HEADER] = ("teacher", "leaves")
HEADERS["teacher.leaves"] = ("teacher", "leaves")

TEACHER_COLUMNS = [zh for zh, _ in TEACHER_FIELDS.values()] + [LEAVES_HEADER]
RECORD_COLUMNS = [zh for zh, _ in RECORD_FIELDS.values()]

_SCIENTIFIC = re.compile(r"^\s*\d(\.\d+)?[eE]\+?\d+\s*$")
_TEXT_COLUMNS = {"id", "name", "title", "theme", "category"}


def read_file(path: Path) -> list[Ledger]:
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(Problem("文件不存在", file=str(path)))
    if suffix == ".json":
        return read_json(path)
    if suffix == ".csv":
        return read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path)
    raise InputError(Problem(f"不支持的文件类型“{suffix}”，请使用 .json、.csv 或 .xlsx", file=path.name))


# ------------------------------------------------------------------ JSON


def read_json(path: Path) -> list[Ledger]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(Problem("JSON 文件须为 UTF-8 编码", file=path.name)) from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(f"JSON 格式错误：{exc.msg}（第{exc.lineno}行第{exc.colno}列）",
                                 file=path.name)) from None
    documents = data if isinstance(data, list) else [data]
    ledgers: list[Ledger] = []
    problems: list[Problem] = []
    for n, doc in enumerate(documents):
        prefix = f"[{n}]." if isinstance(data, list) else ""
        if not isinstance(doc, dict) or "teacher" not in doc:
            problems.append(Problem("须为 {\"teacher\": {...}, \"records\": [...]}", file=path.name,
                                    column=prefix.rstrip(".") or None))
            continue
        unknown = set(doc) - {"teacher", "records"}
        for key in sorted(unknown):
            problems.append(Problem("未知字段", file=path.name, column=f"{prefix}{key}"))

        def where_t(key: str, message: str, prefix: str = prefix) -> Problem:
            return Problem(message, file=path.name, column=f"{prefix}teacher.{key}")

        teacher, more = parse_teacher(doc["teacher"] if isinstance(doc["teacher"], dict) else {}, where_t)
        problems += more
        records: list[Record] = []
        raw_records = doc.get("records") or []
        if not isinstance(raw_records, list):
            problems.append(Problem("records 须为列表", file=path.name, column=f"{prefix}records"))
            raw_records = []
        for i, item in enumerate(raw_records):
            def where_r(key: str, message: str, i: int = i, prefix: str = prefix) -> Problem:
                return Problem(message, file=path.name, column=f"{prefix}records[{i}].{key}")

            if not isinstance(item, dict):
                problems.append(where_r("", "须为对象"))
                continue
            rec, more = parse_record(item, where_r)
            problems += more
            if rec is not None:
                records.append(rec)
        problems += _duplicate_ids(records, lambda rid: Problem(f"记录编号 {rid} 重复", file=path.name,
                                                                  column=f"{prefix}records"))
        if teacher is not None:
            ledgers.append(Ledger(teacher, records))
    if problems:
        raise InputError(problems)
    return ledgers


def _duplicate_ids(records: Iterable[Record], problem: Any) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for r in records:
        if r.id in seen:
            out.append(problem(r.id))
        seen.add(r.id)
    return out


# ------------------------------------------------------------------ tables


def decode_csv(raw: bytes, name: str) -> str:
    """Excel on Chinese Windows saves GB18030/GBK; elsewhere UTF-8, with or
    without BOM.  Decoding is strict: a byte that fits neither is an error,
    never a replacement character."""
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return raw[3:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(Problem(f"UTF-8 编码错误（第{exc.start}字节）", file=name)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise InputError(Problem(f"无法识别的文字编码（第{exc.start}字节）：请另存为 UTF-8 或 GBK 编码的 CSV",
                                 file=name)) from None


def read_csv(path: Path) -> list[Ledger]:
    text = decode_csv(path.read_bytes(), path.name)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return read_rows(rows, path.name)


def read_xlsx(path: Path) -> list[Ledger]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a bad file
        raise InputError(Problem(f"无法打开 Excel 文件：{type(exc).__name__}", file=path.name)) from None
    try:
        ws = wb.worksheets[0]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()
    return read_rows(rows, path.name)


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    return value


def read_rows(rows: list[list[Any]], name: str) -> list[Ledger]:
    """One row per record; teacher columns repeat on each of her rows."""
    rows = [r for r in rows if any(c not in (None, "") for c in r)]
    if not rows:
        raise InputError(Problem("文件没有内容", file=name))
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    problems: list[Problem] = []
    columns: list[tuple[int, str, str, str] | None] = []
    seen_headers: set[str] = set()
    for i, h in enumerate(header):
        if not h:
            columns.append(None)
            continue
        if h not in HEADERS:
            problems.append(Problem("无法识别的列名（请使用导入模板的列名）", file=name, row=1, column=h))
            columns.append(None)
            continue
        if h in seen_headers:
            problems.append(Problem("列名重复", file=name, row=1, column=h))
        seen_headers.add(h)
        owner, key = HEADERS[h]
        columns.append((i, owner, key, h))
    keys = {(c[1], c[2]) for c in columns if c}
    for need, label in ((("teacher", "id"), "教师编号"), (("record", "id"), "记录编号"), (("record", "year"), "登记年度")):
        if need not in keys:
            problems.append(Problem(f"缺少必需的列“{label}”", file=name, row=1))
    if problems:
        raise InputError(problems)
    teachers: dict[str, tuple[dict[str, Any], int]] = {}
    ledgers: dict[str, Ledger] = {}
    record_rows: dict[tuple[str, str], int] = {}
    for n, row in enumerate(rows[1:], start=2):
        t_data: dict[str, Any] = {}
        r_data: dict[str, Any] = {}
        headers_of: dict[str, str] = {}
        for col in columns:
            if col is None:
                continue
            i, owner, key, h = col
            value = _cell(row[i]) if i < len(row) else None
            if key in _TEXT_COLUMNS or key == "id":
                mangled = _mangled(value)
                if mangled:
                    problems.append(Problem(mangled, file=name, row=n, column=h))
                    continue
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = str(int(value)) if float(value).is_integer() else str(value)
            if owner == "teacher" and key == "leaves":
                parsed, err = _parse_leaves(value)
                if err:
                    problems.append(Problem(err, file=name, row=n, column=h))
                    continue
                t_data["leaves"] = parsed
            elif owner == "teacher":
                t_data[key] = value
            else:
                r_data[key] = value
            headers_of[f"{owner}.{key}"] = h

        def where_t(key: str, message: str, n: int = n, headers_of: dict[str, str] = headers_of) -> Problem:
            return Problem(message, file=name, row=n, column=headers_of.get(f"teacher.{key}", key))

        def where_r(key: str, message: str, n: int = n, headers_of: dict[str, str] = headers_of) -> Problem:
            return Problem(message, file=name, row=n, column=headers_of.get(f"record.{key}", key))

        teacher, more = parse_teacher(t_data, where_t)
        problems += more
        record, more = parse_record(r_data, where_r)
        problems += more
        if teacher is None or record is None:
            continue
        if teacher.id in teachers:
            first, first_row = teachers[teacher.id]
            for key, value in t_data.items():
                if value not in (None, "") and first.get(key) not in (None, "") and first.get(key) != value:
                    problems.append(Problem(f"与第{first_row}行同一教师的信息不一致（{first.get(key)} ≠ {value}）",
                                            file=name, row=n, column=headers_of.get(f"teacher.{key}", key)))
        else:
            teachers[teacher.id] = (t_data, n)
            ledgers[teacher.id] = Ledger(teacher, [])
        key2 = (teacher.id, record.id)
        if key2 in record_rows:
            problems.append(Problem(f"记录编号与第{record_rows[key2]}行重复", file=name, row=n,
                                    column=headers_of.get("record.id")))
            continue
        record_rows[key2] = n
        ledgers[teacher.id].records.append(record)
    if problems:
        raise InputError(problems)
    return list(ledgers.values())


def _mangled(value: Any) -> str | None:
    """An identifier that Excel turned into a number has lost its last digits
    for good; say so instead of storing a wrong identifier."""
    hint = "编号被 Excel 转成了数字（科学计数法），末几位已丢失；请将该列设置为“文本”格式后重新录入"
    if isinstance(value, str) and _SCIENTIFIC.match(value):
        return hint
    if isinstance(value, float) and (abs(value) >= 1e11 or not value.is_integer()):
        return hint
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return hint
    return None


def _parse_leaves(value: Any) -> tuple[list[dict[str, Any]], str | None]:
    """"2022:产假;2023:哺乳期" -> [{year, kind}]"""
    if value in (None, ""):
        return [], None
    out = []
    for part in re.split(r"[;；,，\s]+", str(value).strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d{4})年?[:：]?(.+)", part)
        if not m:
            return [], f"“{part}”格式应为“年份:类型”，例如“2022:产假”，多个用分号分隔"
        out.append({"year": int(m.group(1)), "kind": m.group(2)})
    return out, None


def ledger_to_json(ledger: Ledger) -> dict[str, Any]:
    t: Teacher = ledger.teacher
    teacher = {k: getattr(t, k) for k in TEACHER_FIELDS if getattr(t, k) is not None}
    if t.leaves:
        teacher["leaves"] = [{"year": lv.year, "kind": lv.kind, "approved": lv.approved} for lv in t.leaves]
    records = [{k: getattr(r, k) for k in RECORD_FIELDS if getattr(r, k) is not None} for r in ledger.records]
    return {"teacher": teacher, "records": records}
