"""Roster imports by training institutions and offices, in two phases (the
shape of pretix's ``base/services/modelimport.py``):

1. :func:`validate_roster` reads the whole file with the interchange readers
   (the template's columns, one row per record) and checks every row against
   the platform — the teacher exists, is inside the uploader's scope, the
   身份证号 matches, the record is not stored already, the hours fit the
   course, the class's share of 优秀 is within the limit.  Every problem is
   collected with file, row, column and reason; nothing is written but the
   batch itself (state VALID or INVALID, with its errors).
2. :func:`commit_batch` re-reads the stored file, checks again against the
   database as it is now, prices every record through the engine, and writes
   all records in one transaction with one audit entry.  Any error: nothing
   is stored.

Decisions (the upload page states them for users too):

* **Scope.**  An office imports for a node of its subtree; the teachers must
  belong to that node's subtree.  An institution is not above any school; it
  imports for the teachers of the jurisdiction it sits in (its parent node).
* **Status by importer.**  赤峰 第十四条: institutions and education offices
  import hours and scores; the system converts them into credits.  An
  import carries the importer's own level of approval: an institution's rows
  start 待审核 and go through the teacher's school like a declaration; a
  school officer's start 学校已审核 (as a school entry does); a district
  office's 区县已审核; the city center's 已认定.  Source is always 机构导入.
* **Course hours.**  A row may not claim more 学时 than its course has.  The
  course's hours come from an optional column 课程学时 (per row; rows of one
  course must agree) or, for a one-course file, from the upload form's
  课程学时; without either, no ceiling is checked.
* **优秀 share.**  赤峰 第十九条: at most 25% 优秀 per class; a class is a
  培训项目名称 and 登记年度 of one importing unit (rows of this file plus
  records the unit imported before).  The limit is per jurisdiction
  (:data:`EXCELLENT_LIMITS`, keyed by the bound policy's jurisdiction code,
  overridable with the setting ``XUEFEN_IMPORT_EXCELLENT_LIMITS``); it
  applies to a class when any of its teachers is under such a jurisdiction.
* **Idempotency.**  The same file (SHA-256) imported before for the same unit
  adds nothing: the earlier DONE batch is returned.  A corrected file is a
  new file and is validated afresh.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import hashlib
import io
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import CharField, F
from django.utils import timezone

from xuefen import idnumber
from xuefen.errors import InputError, Problem
from xuefen.io.readers import (
    DATA_SHEET,
    HEADERS,
    TableLimits,
    bounded_rows,
    check_xlsx_container,
    decode_csv,
    read_rows,
    xlsx_rows,
)
from xuefen.model import RECORD_FIELDS, TEACHER_FIELDS, Ledger, parse_record
from xuefen.model import Record as EngineRecord
from xuefen.numbers import fmt
from xuefen.policy.loader import default_registry
from xuefen.web import limits
from xuefen.web import permissions as perm
from xuefen.web.models import ImportBatch, Notification, Org, OrgKind, Record, Role, Source, Status, Teacher, TeacherResult
from xuefen.web.services import audit, bulk, tallies
from xuefen.web.services import teachers as teachers_service
from xuefen.web.services.evaluation import FACT_FIELDS, Policies, price_records, refresh_results
from xuefen.web.services.ledger import Actor, Denied, ServiceError

# Columns the platform reads itself; they are taken out before the rows go to
# the interchange reader (which knows only the template's columns).
ID_NUMBER_HEADER = "身份证号"
COURSE_HOURS_HEADER = "课程学时"
EXTRA_HEADERS = {ID_NUMBER_HEADER: "id_number", COURSE_HOURS_HEADER: "course_hours"}

TEACHER_NO = TEACHER_FIELDS["id"][0]
RECORD_UID = RECORD_FIELDS["id"][0]
HOURS = RECORD_FIELDS["hours"][0]
RESULT = RECORD_FIELDS["result"][0]
TITLE = RECORD_FIELDS["title"][0]

EXCELLENT = "优秀"
# jurisdiction code -> (largest share of 优秀 in one class, the article)
EXCELLENT_LIMITS: dict[str, tuple[Decimal, str]] = {
    "neimenggu-chifeng": (Decimal("0.25"), "第十九条"),
}

# The state an imported record starts in, by the importer's role.
STATUS_BY_ROLE: dict[str, str] = {
    Role.INSTITUTION_STAFF: Status.PENDING,
    Role.SCHOOL_OFFICER: Status.SCHOOL_APPROVED,
    Role.DISTRICT_OFFICE: Status.DISTRICT_APPROVED,
    Role.CITY_CENTER: Status.CERTIFIED,
}

SUFFIXES = (".csv", ".xlsx", ".xlsm")
CSV_MAX_LINE = 1024 * 1024
# How often (in rows) progress is written for the page's progress bar, and
# at most how often (in seconds): each write is a commit, and a large file
# would otherwise spend seconds on them.
PROGRESS_EVERY = 200
PROGRESS_SECONDS = 0.5


def _norm(text: str) -> str:
    return "".join(text.split())


# ------------------------------------------------------------------ reading


@dataclass
class Table:
    """The file as rows of cells, the extra columns taken out."""

    name: str
    header_no: int
    rows: list[list[Any]]  # every row of the sheet, the extra columns removed
    extras: dict[int, dict[str, Any]]  # row number -> {"id_number": cell, "course_hours": cell}
    extra_present: set[str]
    teacher_col: int | None  # index in ``rows`` of 教师编号
    name_col: int | None  # index in ``rows`` of 姓名
    uid_col: int | None  # index in ``rows`` of 记录编号
    data_rows: list[int] = field(default_factory=list)  # numbers of the non-blank rows below the header
    order: dict[str, int] = field(default_factory=dict)  # header as written -> position in the file

    def col(self, canonical: str) -> str:
        """A column's header as the file writes it (problems name it so)."""
        for written in self.order:
            if _norm(written) == canonical:
                return written
        return canonical

    def header(self, col: int | None) -> str | None:
        if col is None:
            return None
        return str(self.rows[self.header_no - 1][col]).strip()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def table_limits() -> TableLimits:
    """The size limits of a roster file, from the settings (XUEFEN_IMPORT_MAX_*)."""
    return TableLimits(rows=settings.IMPORT_MAX_ROWS, columns=settings.IMPORT_MAX_COLUMNS,
                       unpacked_bytes=settings.IMPORT_MAX_UNPACKED_BYTES)


def _raw_rows(file_name: str, data: bytes) -> list[list[Any]]:
    suffix = PurePath(file_name).suffix.lower()
    if suffix == ".csv":
        if data.startswith(b"PK\x03\x04"):
            raise InputError(Problem("文件内容是 Excel（.xlsx）而扩展名是 .csv：请改回 .xlsx 后上传", file=file_name))
        text = decode_csv(data, file_name)
        # One row is a few kilobytes at most (36 columns, 200 characters each);
        # a line of millions of commas would become millions of cells at once.
        longest = max((len(line) for line in io.StringIO(text)), default=0)
        if longest > CSV_MAX_LINE:
            raise InputError(Problem(f"文件中有一行长达 {longest // 1024}KB，超过上限 {CSV_MAX_LINE // 1024}KB："
                                     "不是导入模板格式的 CSV", file=file_name))
        try:
            return bounded_rows((list(r) for r in csv.reader(io.StringIO(text, newline=""))), file_name,
                                table_limits())
        except csv.Error as exc:
            raise InputError(Problem(f"CSV 格式错误：{exc}", file=file_name)) from None
    if suffix in (".xlsx", ".xlsm"):
        return xlsx_rows(data, file_name, table_limits())
    if suffix in (".xls", ".et", ".wps"):
        raise InputError(Problem(f"不支持旧版表格格式“{suffix}”：请在 Excel/WPS 中另存为 .xlsx 后再导入",
                                 file=file_name))
    raise InputError(Problem(f"不支持的文件类型“{suffix or file_name}”：请使用导入模板（.xlsx）或 .csv",
                             file=file_name))


def read_table(file_name: str, data: bytes) -> Table:
    """The sheet's rows with the platform's own columns (身份证号, 课程学时)
    taken out; row numbers stay the spreadsheet's own.  Raises InputError for
    a file that cannot be read at all."""
    rows = _raw_rows(file_name, data)
    numbered = [n for n, row in enumerate(rows, start=1) if not all(_blank(c) for c in row)]
    if not numbered:
        raise InputError(Problem("文件没有内容", file=file_name))
    header_no = numbered[0]
    header = rows[header_no - 1]
    extra_at: dict[int, str] = {}
    for i, cell in enumerate(header):
        if not _blank(cell) and _norm(str(cell)) in EXTRA_HEADERS:
            key = EXTRA_HEADERS[_norm(str(cell))]
            if key in extra_at.values():
                raise InputError(Problem("列名重复", file=file_name, row=header_no, column=str(cell).strip()))
            extra_at[i] = key
    kept = [i for i in range(len(header)) if i not in extra_at]
    stripped: list[list[Any]] = []
    extras: dict[int, dict[str, Any]] = {}
    for n, row in enumerate(rows, start=1):
        stripped.append([row[i] if i < len(row) else None for i in kept] if extra_at else row)
        if n > header_no:
            extras[n] = {key: (row[i] if i < len(row) else None) for i, key in extra_at.items()}
    new_header = stripped[header_no - 1]

    def find(owner_key: tuple[str, str]) -> int | None:
        for j, cell in enumerate(new_header):
            if not _blank(cell) and HEADERS.get(_norm(str(cell))) == owner_key:
                return j
        return None

    return Table(
        name=file_name, header_no=header_no, rows=stripped, extras=extras, extra_present=set(extra_at.values()),
        teacher_col=find(("teacher", "id")), name_col=find(("teacher", "name")), uid_col=find(("record", "id")),
        data_rows=[n for n in numbered if n > header_no],
        order={str(c).strip(): i for i, c in enumerate(header) if not _blank(c)},
    )


def count_rows(file_name: str, data: bytes) -> int:
    """About how many data rows the file has, cheaply (decides whether the
    work runs in the background; the check counts exactly).  0 when the file
    cannot be read or is over a limit (the check then says why)."""
    suffix = PurePath(file_name).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        try:
            check_xlsx_container(data, file_name, table_limits())
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            ws = wb[DATA_SHEET] if DATA_SHEET in wb.sheetnames else wb.worksheets[0]
            declared = ws.max_row  # from the sheet's dimension, when Excel wrote one
            wb.close()
        except Exception:  # openpyxl raises many kinds for a bad file
            return 0
        # A dimension claiming more than the limit is not believed: the rows are counted (streamed, bounded).
        if isinstance(declared, int) and 0 < declared <= settings.IMPORT_MAX_ROWS + 1:
            return max(declared - 1, 0)
    try:
        return len(read_table(file_name, data).data_rows)
    except InputError:
        return 0


def _chunks(values: set[Any], size: int = 500) -> list[list[Any]]:
    """Lookups in slices (SQLite limits the parameters of one query)."""
    items = sorted(values, key=str)
    return [items[i:i + size] for i in range(0, len(items), size)]


def _key(value: Any) -> str | None:
    """An identifier cell as text, the way the reader reads it."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e11:
        return str(int(value))
    return str(value).strip()


def _decimal(value: Any) -> tuple[Decimal | None, str | None]:
    """A number cell through the interchange parser (so 24, "24.5" and a
    spreadsheet float read as everywhere else)."""
    if _blank(value):
        return None, None
    messages: list[str] = []

    def where(key: str, message: str) -> Problem:
        messages.append(message)
        return Problem(message)

    rec, _ = parse_record({"id": "x", "year": 2000, "hours": value}, where)
    if messages or rec is None:
        return None, messages[0] if messages else "不是数字"
    return rec.hours, None


# ------------------------------------------------------------------ checking


@dataclass
class Planned:
    """One checked row, ready to be written."""

    row: int
    teacher: Teacher
    record: EngineRecord


@dataclass
class Outcome:
    problems: list[Problem]
    planned: list[Planned]
    total_rows: int


def scope_node(org: Org) -> Org | None:
    """Whose teachers an import for ``org`` may name: the node's subtree; for
    a training institution, the jurisdiction it sits in."""
    if org.kind == OrgKind.INSTITUTION:
        return org.parent
    return org


def excellent_limits() -> dict[str, tuple[Decimal, str]]:
    override = getattr(settings, "XUEFEN_IMPORT_EXCELLENT_LIMITS", None)
    if override is None:
        return EXCELLENT_LIMITS
    return {code: (Decimal(str(share)), "第十九条") for code, share in dict(override).items()}


class _Jurisdictions:
    """Binding node of each school -> (limit, citation) for 优秀, cached."""

    def __init__(self, schools: Iterable[Org]) -> None:
        self.limits = excellent_limits()
        self._by_school: dict[int, tuple[Decimal, str] | None] = {}
        self._policies = Policies()
        self._policies.prefetch(schools)

    def limit(self, teacher: Teacher) -> tuple[Decimal, str] | None:
        if teacher.school_id not in self._by_school:
            self._by_school[teacher.school_id] = self._resolve(teacher.school)
        return self._by_school[teacher.school_id]

    def _resolve(self, school: Org) -> tuple[Decimal, str] | None:
        binding = self._policies.binding(school)
        if binding is None:
            return None
        try:
            policy = default_registry().resolve(binding.policy, timezone.localdate())
        except Exception:  # an unknown binding is the evaluation's problem, not the import's
            return None
        found = self.limits.get(policy.jurisdiction.code)
        if found is None:
            return None
        share, article = found
        return share, f"{policy.short_name or policy.name} {article}"


def check(org: Org, table: Table, course_hours: Decimal | None = None,
          progress: Callable[[int], None] | None = None) -> Outcome:
    """Phase 1 on a read table: every problem of every row, and the rows
    ready to be written when there is none."""
    name = table.name
    problems: list[Problem] = []
    seen: set[Problem] = set()

    def add(p: Problem) -> None:
        if p not in seen:
            seen.add(p)
            problems.append(p)

    # 1. The interchange reader: headers, values, vocabulary, Excel-mangled
    # identifiers, disagreeing teacher columns, duplicate rows in the file.
    # Rows it rejects are blanked and the rest read again, so the checks
    # below still see every row the reader accepted.
    blanked: set[int] = set()
    ledgers: list[Ledger] = []
    for _ in range(5):
        rows = [[] if n in blanked else row for n, row in enumerate(table.rows, start=1)]
        try:
            ledgers = read_rows(rows, name)
            break
        except InputError as exc:
            for p in exc.problems:
                add(p)
            hit = {p.row for p in exc.problems if p.row is not None and p.row != table.header_no}
            if any(p.row in (None, table.header_no) for p in exc.problems) or not hit - blanked:
                return Outcome(problems, [], len(table.data_rows))
            blanked |= hit
    reader_cells = {(p.row, p.column) for p in problems}

    # 2. Teachers by 教师编号, for every row whose number the reader accepted.
    def cell(n: int, col: int | None) -> Any:
        row = table.rows[n - 1]
        return row[col] if col is not None and col < len(row) else None

    # (教师编号, 记录编号) of each row, as the reader reads them
    keys = {n: (_key(cell(n, table.teacher_col)), _key(cell(n, table.uid_col))) for n in table.data_rows}
    teacher_header = table.header(table.teacher_col)
    teacher_no_of: dict[int, str] = {}
    for n in table.data_rows:
        tid = keys[n][0]
        if tid is not None and (n, teacher_header) not in reader_cells:
            teacher_no_of[n] = tid
    found = {t.teacher_no: t for chunk in _chunks(set(teacher_no_of.values()))
             for t in Teacher.objects.filter(teacher_no__in=chunk)}
    # Each school read once, not once per teacher.
    schools = {o.pk: o for chunk in _chunks({t.school_id for t in found.values()})
               for o in Org.objects.filter(pk__in=chunk)}
    for each in found.values():
        each.school = schools[each.school_id]
    node = scope_node(org)
    in_scope: dict[str, Teacher] = {
        no: t for no, t in found.items() if node is not None and t.school.path.startswith(node.path)}
    uids_of: dict[int, set[str]] = defaultdict(set)
    for n, tid in teacher_no_of.items():
        uid = keys[n][1]
        if tid in in_scope and uid is not None:
            uids_of[in_scope[tid].pk].add(uid)
    stored: dict[tuple[int, str], Record] = {}
    for chunk in _chunks(set(uids_of), 200):
        wanted = set().union(*(uids_of[pk] for pk in chunk))
        for r in Record.objects.select_related("import_batch__org").filter(teacher__in=chunk, uid__in=wanted):
            stored[r.teacher_id, r.uid] = r
    scope_name = node.name if node is not None else org.name

    for done, n in enumerate(table.data_rows, start=1):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done)
        tid = teacher_no_of.get(n)
        teacher: Teacher | None = None
        if tid is not None:
            if tid not in found:
                add(Problem(f"教师编号“{tid}”在平台中不存在", file=name, row=n, column=table.col(TEACHER_NO)))
            elif tid not in in_scope:
                add(Problem(f"教师编号“{tid}”的教师不在“{scope_name}”范围内，本单位不能为其导入",
                            file=name, row=n, column=table.col(TEACHER_NO)))
            else:
                teacher = in_scope[tid]
                given = _key(cell(n, table.name_col))
                if given is not None and _norm(given) != _norm(teacher.name):
                    # a mistyped number that hits another teacher must not credit her
                    add(Problem(f"姓名与教师编号“{tid}”在平台登记的姓名不一致，请核对教师编号", file=name, row=n,
                                column=table.col(TEACHER_FIELDS["name"][0])))
        extra = table.extras.get(n, {})
        if "id_number" in table.extra_present and not _blank(extra.get("id_number")):
            raw = extra["id_number"]
            text = str(raw).strip().upper()
            reason = idnumber.problem(text)
            if reason:
                add(Problem(reason, file=name, row=n, column=table.col(ID_NUMBER_HEADER)))
            elif teacher is not None and not teachers_service.same_id_number(teacher, text):
                add(Problem(f"身份证号与教师编号“{tid}”在平台登记的身份证号不一致", file=name, row=n,
                            column=table.col(ID_NUMBER_HEADER)))
        uid = keys[n][1]
        if teacher is not None and uid is not None and (teacher.pk, uid) in stored:
            earlier = stored[teacher.pk, uid]
            how = earlier.get_source_display()
            if earlier.import_batch is not None:
                how = f"{earlier.import_batch.org.name}导入，批次 {earlier.import_batch.pk}"
            add(Problem(f"教师“{tid}”的记录编号“{uid}”已存在于平台（{how}），同一记录不能重复导入",
                        file=name, row=n, column=table.col(RECORD_UID)))
        if "course_hours" in table.extra_present:
            hours_given, unreadable = _decimal(extra.get("course_hours"))
            reason = unreadable or limits.field_problem("course_hours", hours_given, ImportBatch)
            if reason:
                add(Problem(reason, file=name, row=n, column=table.col(COURSE_HOURS_HEADER)))

    # 3. Checks over parsed records: hours within the course, 优秀 per class.
    row_of: dict[tuple[str, str], int] = {}
    for n in table.data_rows:
        if n in blanked:
            continue
        tid, uid = keys[n]
        if tid is not None and uid is not None:
            row_of.setdefault((tid, uid), n)
    planned: list[Planned] = []
    parsed: list[tuple[int, Teacher | None, EngineRecord]] = []
    for ledger in ledgers:
        t = in_scope.get(ledger.teacher.id)
        for rec in ledger.records:
            at = row_of.get((ledger.teacher.id, rec.id))
            if at is None:  # cannot happen: every accepted row has both keys
                continue
            parsed.append((at, t, rec))
            for attr, reason in limits.record_problems(rec):
                add(Problem(reason, file=name, row=at, column=table.col(RECORD_FIELDS[attr][0])))
            if t is not None:
                planned.append(Planned(at, t, rec))
    _check_course_hours(table, parsed, course_hours, add)
    _check_excellent(org, table, parsed, add)
    _check_locked_years(table, parsed, add)
    _check_training_twins(table, parsed, add)
    _check_policy_words(ledgers, in_scope, add)

    if progress is not None:
        progress(len(table.data_rows))
    problems.sort(key=lambda p: (p.row or 0, table.order.get(p.column or "", -1)))
    return Outcome(problems, [] if problems else planned, len(table.data_rows))


def _check_policy_words(ledgers: list[Ledger], in_scope: dict[str, Teacher], add: Callable[[Problem], None]) -> None:
    """A category or theme that the teacher's policy does not know is bad
    input, named with its cell and the accepted values — never stored as 0
    credits or as another category (xuefen.engine.words)."""
    from xuefen.engine.words import unknown_words

    policies = Policies()
    policies.prefetch({t.school for t in in_scope.values()})
    for ledger in ledgers:
        teacher = in_scope.get(ledger.teacher.id)
        chosen = policies.for_school(teacher.school) if teacher is not None else None
        if chosen is None:
            continue

        def where(record: EngineRecord, key: str, message: str, ledger: Ledger = ledger) -> Problem:
            return ledger.where[record.id](key, message)

        for p in unknown_words(chosen[0], ledger.records, where):
            add(p)


def _check_course_hours(table: Table, parsed: list[tuple[int, Teacher | None, EngineRecord]],
                        course_hours: Decimal | None, add: Callable[[Problem], None]) -> None:
    first: dict[tuple[str, int], tuple[int, Decimal]] = {}
    for n, _t, rec in sorted(parsed, key=lambda x: x[0]):
        given, _ = _decimal(table.extras.get(n, {}).get("course_hours"))
        if given is not None:
            course = (rec.title, rec.year)
            if course in first and first[course][1] != given:
                add(Problem(f"同一培训项目（{rec.title or '未填名称'}，{rec.year}年）的课程学时与第{first[course][0]}行"
                            f"（{fmt(first[course][1])}）不一致", file=table.name, row=n, column=table.col(COURSE_HOURS_HEADER)))
            first.setdefault(course, (n, given))
        limit = given if given is not None else course_hours
        if limit is not None and rec.hours is not None and rec.hours > limit:
            source = "本行的课程学时" if given is not None else "上传时填写的课程学时"
            add(Problem(f"学时 {fmt(rec.hours)} 超过{source} {fmt(limit)}", file=table.name, row=n, column=table.col(HOURS)))


def _check_locked_years(table: Table, parsed: list[tuple[int, Teacher | None, EngineRecord]],
                        add: Callable[[Problem], None]) -> None:
    """A year a school has closed (services.annual) takes no new records until the district reopens it."""
    from xuefen.web.services.annual import locked_years

    locked = locked_years(sorted({t.school_id for _, t, _ in parsed if t is not None}))
    for n, t, rec in parsed:
        if t is not None and (t.school_id, rec.year) in locked:
            add(Problem(f"{t.school.name} {rec.year} 年度已登记（锁定），不能再导入该年度的记录；"
                        "如需补录，请区县继教办重新开放该年度", file=table.name, row=n,
                        column=table.col(RECORD_FIELDS["year"][0])))


def _check_excellent(org: Org, table: Table, parsed: list[tuple[int, Teacher | None, EngineRecord]],
                     add: Callable[[Problem], None]) -> None:
    """赤峰 第十九条: 优秀 at most 25% of a class (培训项目名称 + 登记年度)."""
    jurisdictions = _Jurisdictions({t.school_id: t.school for _, t, _ in parsed if t is not None}.values())
    classes: dict[tuple[str, int], list[tuple[int, Teacher | None, EngineRecord]]] = defaultdict(list)
    for item in parsed:
        classes[item[2].title, item[2].year].append(item)
    for (title, year), members in sorted(classes.items()):
        limits = [lim for _, t, _ in members if t is not None for lim in [jurisdictions.limit(t)] if lim]
        if not limits:
            continue
        share, article = min(limits)
        excellent = [n for n, _, rec in members if rec.result == EXCELLENT]
        if not excellent:
            continue
        if not title:
            for n in excellent:
                add(Problem(f"考核结果为优秀的记录须填写培训项目名称，以便按班级核对优秀比例（{article}）",
                            file=table.name, row=n, column=table.col(TITLE)))
            continue
        earlier = Record.objects.filter(import_batch__org=org, import_batch__state=ImportBatch.State.DONE,
                                        title=title, year=year).exclude(status=Status.REVOKED)
        total = len(members) + earlier.count()
        count = len(excellent) + earlier.filter(result=EXCELLENT).count()
        allowed = math.floor(total * share)
        if count > allowed:
            before = f"（含本单位此前导入的 {total - len(members)} 人）" if total > len(members) else ""
            for n in excellent:
                add(Problem(f"班级“{title}”（{year}年）共 {total} 人{before}，优秀 {count} 人，超过 {fmt(share * 100)}%"
                            f"（最多 {allowed} 人；{article}）", file=table.name, row=n, column=table.col(RESULT)))


def _check_training_twins(table: Table, parsed: list[tuple[int, Teacher | None, EngineRecord]],
                          add: Callable[[Problem], None]) -> None:
    """A class closed in the platform already wrote its participants' records
    (services/training.py, source 培训项目): a roster row of the same training
    (培训项目名称 and 登记年度) for the same teacher would count it twice."""
    wanted = {(t.pk, rec.year) for _, t, rec in parsed if t is not None and rec.title}
    if not wanted:
        return
    found: dict[tuple[int, int], list[Record]] = defaultdict(list)
    for chunk in _chunks({pk for pk, _ in wanted}, 200):
        for r in Record.objects.filter(teacher__in=chunk, source=Source.TRAINING).exclude(status=Status.REVOKED):
            found[r.teacher_id, r.year].append(r)
    for n, t, rec in parsed:
        if t is None or not rec.title:
            continue
        for r in found.get((t.pk, rec.year), []):
            if r.title == rec.title or r.title.startswith(f"{rec.title}（"):
                add(Problem(f"教师“{t.teacher_no}”的培训“{rec.title}”（{rec.year}年）已由平台结班登记（记录编号 {r.uid}），"
                            "同一培训不能重复导入", file=table.name, row=n, column=table.col(TITLE)))
                break


# ------------------------------------------------------------------ phase 1


def _problem_json(p: Problem) -> dict[str, Any]:
    return {"file": p.file, "row": p.row, "column": p.column, "message": p.message}


def _refuse_unless_allowed(actor: Actor, org: Org) -> None:
    if not perm.can_import(actor.user, org):
        raise Denied(f"无权为“{org.name}”导入")


def earlier_import(org: Org, sha256: str, exclude: int | None = None, kind: str | None = None) -> ImportBatch | None:
    qs = ImportBatch.objects.filter(org=org, sha256=sha256, state=ImportBatch.State.DONE)
    if kind is not None:
        qs = qs.filter(kind=kind)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return qs.order_by("created_at", "pk").first()


def receive(actor: Actor, org: Org, file_name: str, data: bytes, course_hours: Decimal | None = None,
            kind: str = "records") -> ImportBatch:
    """Store an uploaded file as a new batch (VALIDATING), or return the DONE
    batch that imported the very same file for this unit before.  ``kind``
    "teachers": a master-data file (services.masterdata), same two phases."""
    _refuse_unless_allowed(actor, org)
    if kind not in ("records", "teachers"):
        raise ServiceError(f"未知的导入内容“{kind}”")
    if kind == "teachers" and not perm.can_import_teachers(actor.user, org):
        raise Denied(f"无权为“{org.name}”导入教师信息")
    file_name = PurePath(file_name or "import").name[:200]
    if len(data) > settings.IMPORT_MAX_BYTES:
        raise ServiceError(f"文件“{file_name}”超过 {settings.IMPORT_MAX_BYTES // (1024 * 1024)}MB")
    if course_hours is not None and course_hours <= 0:
        raise ServiceError("课程学时须大于 0")
    reason = limits.field_problem("course_hours", course_hours, ImportBatch)
    if reason:
        raise ServiceError(reason)
    digest = hashlib.sha256(data).hexdigest()
    earlier = earlier_import(org, digest, kind=kind)
    if earlier is not None:
        return earlier
    batch = ImportBatch(org=org, uploaded_by=actor.user, file_name=file_name, sha256=digest,
                        state=ImportBatch.State.VALIDATING, course_hours=course_hours, heartbeat=timezone.now(),
                        kind=kind)
    suffix = PurePath(file_name).suffix.lower()
    batch.file.save(f"{digest[:16]}{suffix if suffix in SUFFIXES else ''}", ContentFile(data), save=False)
    batch.total_rows = count_rows(file_name, data)
    batch.save()
    return batch


def _set(batch: ImportBatch, **values: Any) -> None:
    """Write batch fields at once (progress is read by another request);
    every write is also the run's heartbeat.  Only while the batch is still
    the run's own (``batch.attempt``): a run given up on by :func:`recover`
    and woken later writes nothing over its successor."""
    _finish(batch, batch.attempt, **values)


def _finish(batch: ImportBatch, attempt: int, **values: Any) -> bool:
    """The run's last write, only while the batch is still this run's (a
    run given up on by :func:`recover` must not overwrite its successor)."""
    values.setdefault("heartbeat", timezone.now())
    done = ImportBatch.objects.filter(pk=batch.pk, attempt=attempt).update(**values) == 1
    if done:
        for key, value in values.items():
            setattr(batch, key, value)
    return done


class _Progress:
    """Writes ``done_rows`` for the page's progress bar, at most every
    PROGRESS_SECONDS; the last row is always written."""

    def __init__(self, batch: ImportBatch, total: int) -> None:
        self.batch, self.total = batch, total
        self.last = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if done >= self.total or now - self.last >= PROGRESS_SECONDS:
            self.last = now
            _set(self.batch, done_rows=done)


def _stored_bytes(batch: ImportBatch) -> bytes:
    with batch.file.open("rb") as fh:
        data: bytes = fh.read()
    return data


def _outcome(batch: ImportBatch, state_while: str) -> Outcome:
    try:
        table = read_table(batch.file_name, _stored_bytes(batch))
    except InputError as exc:
        return Outcome(exc.problems, [], 0)
    _set(batch, state=state_while, total_rows=len(table.data_rows), done_rows=0)
    return check(batch.org, table, batch.course_hours, progress=_Progress(batch, len(table.data_rows)))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while a phase runs.  A large file
    makes millions of small objects (cells, parsed rows, records, results)
    that all live until the phase ends; the collector's full passes over
    them found nothing and took a fifth of a 100,000-row import.  Cycles
    made meanwhile are collected once it resumes."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


@_collector_paused()
def check_batch(batch: ImportBatch, attempt: int | None = None) -> ImportBatch:
    """Phase 1 on a received batch: VALID, or INVALID with every problem.
    ``attempt``: the run this call was started for (a background task);
    when the batch has been handed to a newer run since, nothing is done."""
    batch.refresh_from_db(fields=["state", "attempt"])
    if batch.state != ImportBatch.State.VALIDATING or (attempt is not None and attempt != batch.attempt):
        return batch
    if batch.kind == "teachers":
        from xuefen.web.services import masterdata

        return masterdata.check_batch(batch)
    run = batch.attempt
    outcome = _outcome(batch, ImportBatch.State.VALIDATING)
    state = ImportBatch.State.INVALID if outcome.problems else ImportBatch.State.VALID
    _finish(batch, run, state=state, errors=[_problem_json(p) for p in outcome.problems],
            total_rows=outcome.total_rows, done_rows=outcome.total_rows)
    return batch


def validate_roster(actor: Actor, org: Org, file_name: str, data: bytes,
                    course_hours: Decimal | None = None) -> ImportBatch:
    """Phase 1: receive the file and check every row.  Returns the batch —
    VALID (ready to confirm), INVALID (``errors`` lists every problem), or,
    when this very file was imported for ``org`` before, that earlier DONE
    batch: nothing is added twice."""
    batch = receive(actor, org, file_name, data, course_hours)
    return check_batch(batch)


def runs_in_background(batch: ImportBatch) -> bool:
    return batch.total_rows > settings.IMPORT_BACKGROUND_ROWS


# ------------------------------------------------------------------ phase 2


def queue_commit(actor: Actor, batch: ImportBatch) -> bool:
    """Claim a VALID batch for writing (VALID → WRITING) before handing it to
    the background task; False when someone else claimed it first."""
    _refuse_unless_allowed(actor, batch.org)
    claimed = ImportBatch.objects.filter(pk=batch.pk, state=ImportBatch.State.VALID).update(
        state=ImportBatch.State.WRITING, done_rows=0, attempt=F("attempt") + 1, heartbeat=timezone.now())
    batch.refresh_from_db()
    return claimed == 1


# Record fields stored as text: a fact the row leaves out is "" there, not NULL.
_TEXT_FACTS = frozenset(name for name in FACT_FIELDS if isinstance(Record._meta.get_field(name), CharField))


def _db_record(planned: Planned, batch: ImportBatch, status: str, user: Any) -> Record:
    rec = planned.record
    facts: dict[str, Any] = {name: getattr(rec, name) for name in FACT_FIELDS}
    facts["preset_credits"] = rec.credits
    for key in _TEXT_FACTS:
        if facts[key] is None:
            facts[key] = ""
    return Record(teacher=planned.teacher, uid=rec.id, source=Source.INSTITUTION, status=status,
                  import_batch=batch, created_by=user, **facts)


@_collector_paused()
def commit_batch(actor: Actor, batch: ImportBatch, attempt: int | None = None) -> ImportBatch:
    """Phase 2: check again against the database as it is now, price every
    record, then write all of them in one transaction with one audit entry.

    Returns the batch: DONE on success; INVALID with ``errors`` when the
    check now fails (nothing written); or the earlier DONE batch of the same
    file for the same unit (nothing added).  ``attempt`` as for
    :func:`check_batch`."""
    _refuse_unless_allowed(actor, batch.org)
    batch.refresh_from_db()
    if batch.state == ImportBatch.State.DONE:
        return batch
    earlier = earlier_import(batch.org, batch.sha256, exclude=batch.pk, kind=batch.kind)
    if earlier is not None:
        return earlier
    if batch.kind == "teachers":
        from xuefen.web.services import masterdata

        return masterdata.commit_batch(actor, batch)
    status = STATUS_BY_ROLE.get(perm.role(actor.user) or "")
    if status is None:
        raise Denied("当前角色不能导入")
    if attempt is not None and (batch.state != ImportBatch.State.WRITING or attempt != batch.attempt):
        return batch  # a task for a run given up on (recover): a newer run owns the batch
    if batch.state == ImportBatch.State.VALID:
        if not queue_commit(actor, batch):
            return batch
    elif batch.state != ImportBatch.State.WRITING:
        raise ServiceError("该批次未通过校验，不能导入；请修改文件后重新上传")
    run = batch.attempt

    outcome = _outcome(batch, ImportBatch.State.WRITING)
    if outcome.problems:
        _finish(batch, run, state=ImportBatch.State.INVALID, errors=[_problem_json(p) for p in outcome.problems])
        return batch

    # Pricing (the engine, per teacher) is the slow part and writes nothing:
    # it runs before the transaction, so the progress bar can move.
    by_teacher: dict[int, list[Record]] = defaultdict(list)
    teachers: dict[int, Teacher] = {}
    for item in outcome.planned:
        by_teacher[item.teacher.pk].append(_db_record(item, batch, status, actor.user))
        teachers[item.teacher.pk] = item.teacher
    _set(batch, done_rows=0)
    progress = _Progress(batch, len(outcome.planned))
    done = 0
    policies = Policies()
    for pk, records in by_teacher.items():
        price_records(teachers[pk], records, policies=policies)
        done += len(records)
        if done // PROGRESS_EVERY != (done - len(records)) // PROGRESS_EVERY:
            progress(done)

    try:
        # The batch's tally changes are applied once, at the end, so it holds
        # no tally while it waits for a teacher (services.tallies).  Teachers
        # are refreshed, and so locked, in ascending id: two imports over the
        # same teachers queue rather than deadlock.
        with tallies.deferred():
            locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
            if locked.state != ImportBatch.State.WRITING or locked.attempt != run:
                return locked
            created = bulk.insert([r for records in by_teacher.values() for r in records])
            refresh_results(_verdicts_to_refresh(teachers, status))
            notices = [Notification(user_id=t.user_id, message=_notice(batch.org, len(by_teacher[t.pk]), status))
                       for t in teachers.values() if t.user_id]
            bulk.insert(notices)
            _set(batch, state=ImportBatch.State.DONE, created_rows=created, done_rows=outcome.total_rows,
                 errors=[])
            audit.log(actor.user, "import", batch, ip=actor.ip, org_path=batch.org.path, after={
                "file_name": batch.file_name, "sha256": batch.sha256, "rows": outcome.total_rows,
                "records": created, "teachers": len(teachers), "status": str(status),
                "course_hours": fmt(batch.course_hours) if batch.course_hours is not None else None,
            })
    except IntegrityError:
        # Someone stored one of these records after the check: nothing was written.
        _finish(batch, run, state=ImportBatch.State.INVALID, errors=[_problem_json(Problem(
            "写入时发现其中的记录刚被他人导入，本批次未写入任何记录；请重新上传校验", file=batch.file_name))])
    except Exception:
        _finish(batch, run, state=ImportBatch.State.INVALID, errors=[_problem_json(Problem(
            "写入时出错，本批次未写入任何记录；请联系系统管理员", file=batch.file_name))])
        raise
    return batch


def _verdicts_to_refresh(teachers: dict[int, Teacher], status: str) -> list[Teacher]:
    """The teachers whose stored verdict the import changes.  Records that
    count (approved onwards) enter it: all of them.  Pending ones (an
    institution's) do not, so a teacher's verdict is left as it is stored —
    unless she has none yet: then the import stores her first, as it did
    when it re-evaluated every teacher it named."""
    if status in perm.COUNTING:
        return list(teachers.values())
    ids = sorted(teachers)
    evaluated: set[int] = set()
    for i in range(0, len(ids), 500):
        evaluated.update(TeacherResult.objects.filter(teacher_id__in=ids[i:i + 500]).values_list("teacher_id", flat=True))
    return [teachers[pk] for pk in ids if pk not in evaluated]


def _notice(org: Org, count: int, status: str) -> str:
    return f"{org.name}导入了您的 {count} 条培训记录（{Status(status).label}）"


# ------------------------------------------------------------------ stuck runs
#
# Issue 19 item 6: a server killed during 确认导入, or a background worker that
# died, left a batch at 写入中 or 校验中 for ever.  Every run writes a heartbeat
# with its progress; a running batch whose heartbeat is older than the lease
# has lost its worker.  A write that had not committed left nothing (it is one
# transaction), so the batch goes back to 待确认 and may be confirmed again; a
# check is simply run again.  A batch whose row is locked is inside its write
# transaction — alive, however long it takes — and is left alone.

RUNNING = (ImportBatch.State.VALIDATING, ImportBatch.State.WRITING)


def lease_cutoff() -> Any:
    return timezone.now() - dt.timedelta(seconds=settings.IMPORT_LEASE_SECONDS)


def is_stale(batch: ImportBatch) -> bool:
    seen = batch.heartbeat or batch.created_at
    return batch.state in RUNNING and seen is not None and seen < lease_cutoff()


def recover(batch: ImportBatch) -> bool:
    """Take over a running batch whose worker is gone: 写入中 → 待确认,
    校验中 stays 校验中 for a new run (the caller starts it).  True when it
    was taken over; the batch is refreshed either way."""
    if not is_stale(batch):
        return False
    cutoff = lease_cutoff()
    with transaction.atomic():
        row = (ImportBatch.objects.select_for_update(skip_locked=True)
               .filter(pk=batch.pk, state=batch.state, attempt=batch.attempt).first())
        if row is None or not is_stale(row) or (row.heartbeat or row.created_at) >= cutoff:
            batch.refresh_from_db()
            return False
        state = ImportBatch.State.VALID if row.state == ImportBatch.State.WRITING else ImportBatch.State.VALIDATING
        ImportBatch.objects.filter(pk=row.pk).update(state=state, attempt=row.attempt + 1, done_rows=0,
                                                     heartbeat=timezone.now())
        audit.log(None, "import_recover", row, org_path=row.org.path, before={"state": row.state},
                  after={"state": str(state)}, comment="处理进程已停止，批次已恢复为可重试状态")
    batch.refresh_from_db()
    return True


def give_up(batch: ImportBatch, reason: str) -> None:
    """A run that cannot start (no background worker reachable): a check
    ends INVALID with the reason, a write goes back to 待确认; nothing is
    written either way."""
    if batch.state == ImportBatch.State.WRITING:
        _finish(batch, batch.attempt, state=ImportBatch.State.VALID)
    elif batch.state == ImportBatch.State.VALIDATING:
        _finish(batch, batch.attempt, state=ImportBatch.State.INVALID,
                errors=[_problem_json(Problem(reason, file=batch.file_name))])
