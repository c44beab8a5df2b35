"""Readers for the interchange format: JSON (one teacher, or a list), and CSV
or XLSX with one row per record and Chinese headers (the template's).

All readers collect every problem first and raise one :class:`InputError`
naming file, row, column and reason; nothing is returned half-read.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

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
# The sheet of the template that holds the records; other sheets are notes.
DATA_SHEET = "学分记录"


def _norm_header(text: str) -> str:
    """Headers are compared without any whitespace (Excel users add spaces
    and line breaks to make a header fit)."""
    return "".join(text.split())


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
# Columns a table must have: (owner, key) -> Chinese header.
REQUIRED_COLUMNS: dict[tuple[str, str], str] = {
    ("teacher", "id"): TEACHER_FIELDS["id"][0],
    ("record", "id"): RECORD_FIELDS["id"][0],
    ("record", "year"): RECORD_FIELDS["year"][0],
}

_SCIENTIFIC = re.compile(r"^\s*[+-]?\d+(\.\d+)?[eE][+-]?\d+\s*$")
_TEXT_COLUMNS = {"id", "name", "title", "theme", "category"}


def read_file(path: Path) -> list[Ledger]:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(Problem("文件不存在", file=str(path)))
    if suffix == ".json":
        return read_json(path)
    if suffix == ".csv":
        return read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path)
    if suffix in (".xls", ".et", ".wps"):
        raise InputError(Problem(f"不支持旧版表格格式“{suffix}”：请在 Excel/WPS 中另存为 .xlsx 后再导入", file=path.name))
    raise InputError(Problem(f"不支持的文件类型“{suffix}”，请使用 .json、.csv 或 .xlsx", file=path.name))


# ------------------------------------------------------------------ JSON


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def read_json(path: Path) -> list[Ledger]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(Problem(f"JSON 文件须为 UTF-8 编码（第{exc.start + 1}字节无法解码）", file=path.name)) from None
    try:
        data = json.loads(text, parse_float=Decimal, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(f"JSON 格式错误：{exc.msg}（第{exc.lineno}行第{exc.colno}列）",
                                 file=path.name)) from None
    except _DuplicateKeyError as exc:
        raise InputError(Problem(f"JSON 对象中键“{exc}”出现了两次", file=path.name)) from None
    return ledgers_from_json(data, path.name)


def ledgers_from_json(data: Any, name: str) -> list[Ledger]:
    """Parse already-decoded interchange JSON (one ledger or a list)."""
    documents = data if isinstance(data, list) else [data]
    ledgers: list[Ledger] = []
    problems: list[Problem] = []
    teacher_ids: dict[str, str] = {}
    for n, doc in enumerate(documents):
        prefix = f"[{n}]." if isinstance(data, list) else ""
        ledger = _json_ledger(doc, prefix, name, problems)
        if ledger is None:
            continue
        tid = ledger.teacher.id
        if tid in teacher_ids:
            problems.append(Problem(f"教师编号 {tid} 与 {teacher_ids[tid]} 重复", file=name,
                                    column=f"{prefix}teacher.id"))
            continue
        teacher_ids[tid] = f"{prefix}teacher"
        ledgers.append(ledger)
    if problems:
        raise InputError(problems)
    return ledgers


def _json_ledger(doc: Any, prefix: str, name: str, problems: list[Problem]) -> Ledger | None:
    if not isinstance(doc, dict) or "teacher" not in doc:
        problems.append(Problem('须为 {"teacher": {...}, "records": [...]}', file=name,
                                column=prefix.rstrip(".") or None))
        return None
    for key in sorted(set(doc) - {"teacher", "records"}):
        problems.append(Problem("未知字段", file=name, column=f"{prefix}{key}"))

    def where_t(key: str, message: str) -> Problem:
        return Problem(message, file=name, column=f"{prefix}teacher.{key}")

    teacher: Teacher | None = None
    if isinstance(doc["teacher"], dict):
        teacher, more = parse_teacher(doc["teacher"], where_t)
        problems += more
    else:
        problems.append(Problem("teacher 须为对象", file=name, column=f"{prefix}teacher"))
    records: list[Record] = []
    located: dict[str, Callable[[str, str], Problem]] = {}
    raw_records = doc.get("records")
    if raw_records is None:
        raw_records = []
    if not isinstance(raw_records, list):
        problems.append(Problem("records 须为列表", file=name, column=f"{prefix}records"))
        raw_records = []
    for i, item in enumerate(raw_records):
        path = f"{prefix}records[{i}]"
        if not isinstance(item, dict):
            problems.append(Problem("须为对象", file=name, column=path))
            continue

        def where_r(key: str, message: str, path: str = path) -> Problem:
            return Problem(message, file=name, column=f"{path}.{key}")

        rec, more = parse_record(item, where_r)
        problems += more
        if rec is not None:
            records.append(rec)
            located[rec.id] = where_r
    problems += _duplicate_ids(records, lambda rid: Problem(f"记录编号 {rid} 重复", file=name,
                                                              column=f"{prefix}records"))
    if teacher is None:
        return None
    return Ledger(teacher, records, located)


def _duplicate_ids(records: Iterable[Record], problem: Callable[[str], Problem]) -> list[Problem]:
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
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(Problem("文件是 UTF-16 编码（Excel 的“Unicode 文本”）：请另存为“CSV UTF-8（逗号分隔）”",
                                 file=name))
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            text = raw[3:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(Problem(f"文件标明为 UTF-8 编码，但第{exc.start + 4}字节无法按 UTF-8 解码；"
                                     "请重新另存为“CSV UTF-8（逗号分隔）”", file=name)) from None
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = raw.decode("gb18030")
            except UnicodeDecodeError as exc:
                raise InputError(Problem(f"无法识别的文字编码（第{exc.start + 1}字节既不是 UTF-8 也不是 GBK/GB18030）："
                                         "请另存为 UTF-8 或 GBK 编码的 CSV", file=name)) from None
    if "\x00" in text:
        raise InputError(Problem("文件中含有空字符（NUL），不是文本格式的 CSV：请另存为“CSV UTF-8（逗号分隔）”",
                                 file=name))
    return text


def read_csv(path: Path) -> list[Ledger]:
    text = decode_csv(path.read_bytes(), path.name)
    try:
        rows: list[list[Any]] = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InputError(Problem(f"CSV 格式错误：{exc}", file=path.name)) from None
    return read_rows(rows, path.name)


def read_xlsx(path: Path) -> list[Ledger]:
    return read_rows(xlsx_rows(path.read_bytes(), path.name), path.name)


@dataclasses.dataclass(frozen=True)
class TableLimits:
    """How large a table file may be, once unpacked (issue 19 item 3: a
    98 KB sheet declaring A1:XFD1048576 took a server from 0.6 to 2.8 GB).
    A file over a limit is refused with a message, never half-read."""

    rows: int = 200_000  # data rows below the header
    columns: int = 64  # the template has 34, the platform adds 2
    unpacked_bytes: int = 256 * 1024 * 1024  # all members of the XLSX zip together
    members: int = 1000  # parts in the zip (a real workbook has a few dozen)


def _refuse(name: str, reason: str) -> InputError:
    return InputError(Problem(reason, file=name))


def check_xlsx_container(data: bytes, name: str, limits: TableLimits) -> None:
    """The zip itself, before any XML is parsed: a ZIP by its first bytes,
    a bounded number of parts, and a bounded size once unpacked (the sizes
    the zip declares; the parser's reads are bounded by them)."""
    import zipfile

    if not data.startswith(b"PK\x03\x04"):
        raise _refuse(name, "不是 Excel（.xlsx）文件：文件内容不是 xlsx 格式，请用 Excel/WPS 另存为 .xlsx")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
            if len(members) > limits.members:
                raise _refuse(name, f"Excel 文件包含 {len(members)} 个部件，超过上限 {limits.members}：不是正常的工作簿")
            unpacked = sum(m.file_size for m in members)
            if unpacked > limits.unpacked_bytes:
                raise _refuse(name, f"Excel 文件解压后为 {unpacked // (1024 * 1024)}MB，超过上限 "
                                    f"{limits.unpacked_bytes // (1024 * 1024)}MB：请拆分为多个文件")
            # Excel and WPS never write a DTD; one is how entity bombs and
            # external entities get in.  A declaration must precede the root
            # element, so the first bytes of each part tell.
            for m in members:
                if m.filename.endswith((".xml", ".rels", ".vml")):
                    with zf.open(m) as part:
                        head = part.read(4096).upper()
                    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                        raise _refuse(name, f"Excel 文件的部件“{m.filename}”含有 XML 实体声明（DOCTYPE），"
                                            "不是 Excel/WPS 保存的正常文件，已拒绝")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise _refuse(name, "无法打开 Excel 文件：文件已损坏或不是 .xlsx 格式，请用模板另存后重新上传") from None


def xlsx_rows(data: bytes, name: str, limits: TableLimits | None = None) -> list[list[Any]]:
    """The data sheet's rows, streamed and bounded: only the cells a row
    really holds (the sheet's declared dimension is ignored, so a sheet
    claiming A1:XFD1048576 costs what it contains), at most ``limits.columns``
    wide from the header's last column, at most ``limits.rows`` rows.  XML
    entities are refused (openpyxl parses through defusedxml when installed,
    which the package pins)."""
    import openpyxl

    limits = limits or TableLimits()
    check_xlsx_container(data, name, limits)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a bad file; their names mean nothing to users
        raise _refuse(name, "无法打开 Excel 文件：文件已损坏或不是 .xlsx 格式，请用模板另存后重新上传") from None
    try:
        ws = wb[DATA_SHEET] if DATA_SHEET in wb.sheetnames else wb.worksheets[0]
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()
        return bounded_rows((list(r) for r in ws.iter_rows(values_only=True)), name, limits)
    except InputError:
        raise
    except Exception:  # a malformed or hostile part (defusedxml: EntitiesForbidden, DTDForbidden)
        raise _refuse(name, "无法读取 Excel 文件内容：请确认是用 Excel/WPS 保存的 .xlsx 文件") from None
    finally:
        wb.close()


def bounded_rows(rows: Iterable[list[Any]], name: str, limits: TableLimits) -> list[list[Any]]:
    """Rows from a stream, each cut to the header's width; refused when the
    header is wider than ``limits.columns`` or more than ``limits.rows``
    rows below it hold data.  Blank rows keep their place (row numbers stay
    the sheet's own) but a run of more than ``limits.rows`` of them ends the
    sheet, and blank rows at the end are dropped."""
    out: list[list[Any]] = []
    width: int | None = None
    data = blank_run = 0
    for row in rows:
        cut = row if width is None else row[:width]
        if all(_blank(c) for c in cut):
            blank_run += 1
            if blank_run > limits.rows:
                break
            out.append([])
            continue
        blank_run = 0
        if width is None:
            width = max(i for i, c in enumerate(row) if not _blank(c)) + 1
            if width > limits.columns:
                raise _refuse(name, f"表头有 {width} 列，超过上限 {limits.columns} 列：请使用导入模板的列")
            cut = row[:width]
        else:
            data += 1
            if data > limits.rows:
                raise _refuse(name, f"文件超过 {limits.rows} 行数据：请拆分为多个文件")
        out.append(cut)
    while out and not out[-1]:
        out.pop()
    return out


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    return value


_Column = tuple[int, str, str, str]  # index, owner, key, header as written


def _columns(header_row: list[Any], row_no: int, name: str, problems: list[Problem]) -> list[_Column]:
    columns: list[_Column] = []
    seen: dict[tuple[str, str], str] = {}
    for i, cell in enumerate(header_row):
        if _blank(cell):
            continue
        written = str(cell).strip()
        h = _norm_header(written)
        if h not in HEADERS:
            problems.append(Problem("无法识别的列名（请使用导入模板的列名）", file=name, row=row_no, column=written))
            continue
        owner, key = HEADERS[h]
        if (owner, key) in seen:
            problems.append(Problem(f"与列“{seen[owner, key]}”是同一字段，列名重复", file=name, row=row_no,
                                    column=written))
            continue
        seen[owner, key] = written
        columns.append((i, owner, key, written))
    for need, label in REQUIRED_COLUMNS.items():
        if need not in seen:
            problems.append(Problem(f"缺少必需的列“{label}”", file=name, row=row_no, column=label))
    return columns


_TEACHER_ATTRS = [*TEACHER_FIELDS, "leaves"]


def _given(teacher: Teacher, attr: str) -> Any:
    """A teacher attribute as a comparable value, or None when blank."""
    value = getattr(teacher, attr)
    if attr == "leaves":
        return frozenset(value) or None
    return None if value in (None, "") else value


def _shown(value: Any) -> str:
    if isinstance(value, frozenset):
        return "；".join(f"{lv.year}:{lv.kind}" for lv in sorted(value, key=lambda lv: (lv.year, lv.kind)))
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def read_rows(rows: list[list[Any]], name: str) -> list[Ledger]:
    """One row per record; teacher columns repeat on each of her rows (they
    may be left blank on all but one; what is given must agree).  Row numbers
    are the spreadsheet's own, blank rows included."""
    numbered = [(n, row) for n, row in enumerate(rows, start=1) if not all(_blank(c) for c in row)]
    if not numbered:
        raise InputError(Problem("文件没有内容", file=name))
    header_no, header_row = numbered[0]
    problems: list[Problem] = []
    columns = _columns(header_row, header_no, name, problems)
    if problems:
        raise InputError(problems)
    headers_of = {f"{owner}.{key}": h for _, owner, key, h in columns}

    def column_of(owner: str, key: str) -> str:
        return headers_of.get(f"{owner}.{key.split('[')[0].split('.')[0]}", key)

    teachers: dict[str, tuple[Teacher, dict[str, int]]] = {}
    records: dict[str, list[Record]] = {}
    record_rows: dict[tuple[str, str], int] = {}
    located: dict[tuple[str, str], Callable[[str, str], Problem]] = {}
    for n, row in numbered[1:]:
        t_data: dict[str, Any] = {}
        r_data: dict[str, Any] = {}
        bad_cell = False
        for i, owner, key, h in columns:
            value = _cell(row[i]) if i < len(row) else None
            if key in _TEXT_COLUMNS:
                mangled = _mangled(value)
                if mangled:
                    problems.append(Problem(mangled, file=name, row=n, column=h))
                    bad_cell = True
                    # reported; a stand-in keeps "缺少…" from being reported as well
                    value = "?"
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    # 1001 typed into a number-formatted cell: the digits are intact
                    value = str(int(value))
            if owner == "teacher" and key == "leaves":
                parsed, err = _parse_leaves(value)
                if err:
                    problems.append(Problem(err, file=name, row=n, column=h))
                    bad_cell = True
                    continue
                t_data["leaves"] = parsed
            elif owner == "teacher":
                t_data[key] = value
            else:
                r_data[key] = value

        def where_t(key: str, message: str, n: int = n) -> Problem:
            return Problem(message, file=name, row=n, column=column_of("teacher", key))

        def where_r(key: str, message: str, n: int = n) -> Problem:
            return Problem(message, file=name, row=n, column=column_of("record", key))

        teacher, more = parse_teacher(t_data, where_t)
        problems += more
        record, more = parse_record(r_data, where_r)
        problems += more
        if teacher is None or record is None or bad_cell:
            continue
        if teacher.id in teachers:
            merged, first_rows = teachers[teacher.id]
            updates: dict[str, Any] = {}
            for attr in _TEACHER_ATTRS:
                new = _given(teacher, attr)
                old = _given(merged, attr)
                if new is None:
                    continue
                if old is None:
                    updates[attr] = getattr(teacher, attr)
                    first_rows[attr] = n
                elif old != new:
                    problems.append(Problem(
                        f"同一教师（{teacher.id}）的信息与第{first_rows[attr]}行不一致：“{_shown(old)}”≠“{_shown(new)}”",
                        file=name, row=n, column=column_of("teacher", attr)))
            if updates:
                teachers[teacher.id] = (dataclasses.replace(merged, **updates), first_rows)
        else:
            teachers[teacher.id] = (teacher, dict.fromkeys(_TEACHER_ATTRS, n))
            records[teacher.id] = []
        key2 = (teacher.id, record.id)
        if key2 in record_rows:
            problems.append(Problem(f"教师 {teacher.id} 的记录编号 {record.id} 与第{record_rows[key2]}行重复",
                                    file=name, row=n, column=column_of("record", "id")))
            continue
        record_rows[key2] = n
        records[teacher.id].append(record)
        located[key2] = where_r
    if problems:
        raise InputError(problems)
    return [Ledger(teacher, records[tid], {r.id: located[tid, r.id] for r in records[tid]})
            for tid, (teacher, _) in teachers.items()]


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
    if _blank(value):
        return [], None
    out = []
    text = re.sub(r"\s*([:：年])\s*", r"\1", str(value).strip())
    for part in re.split(r"[;；,，、\s]+", text):
        if not part:
            continue
        m = re.fullmatch(r"(\d{4})年?[:：]?(.+)", part)
        if not m:
            return [], f"“{part}”格式应为“年份:类型”，例如“2022:产假”，多个用分号分隔"
        out.append({"year": int(m.group(1)), "kind": m.group(2)})
    return out, None


def ledger_to_json(ledger: Ledger) -> dict[str, Any]:
    t: Teacher = ledger.teacher
    teacher = {k: getattr(t, k) for k in TEACHER_FIELDS if getattr(t, k) not in (None, "")}
    if t.leaves:
        teacher["leaves"] = [{"year": lv.year, "kind": lv.kind, "approved": lv.approved} for lv in t.leaves]
    records = [{k: getattr(r, k) for k in RECORD_FIELDS if getattr(r, k) not in (None, "")} for r in ledger.records]
    return {"teacher": teacher, "records": records}
