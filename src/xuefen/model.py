"""Teachers and records as the interchange format describes them.

Values are canonicalised through :mod:`xuefen.vocab` when parsed, so the engine
only ever sees canonical terms.  Parsing collects every problem of a document
before failing, so a user fixes a file in one pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from xuefen import vocab
from xuefen.errors import Problem


@dataclass(frozen=True, slots=True)
class Leave:
    year: int
    kind: str
    # 山东 第二十一条: make-up needs the school's consent, filed with the authority.
    approved: bool = True


@dataclass(frozen=True, slots=True)
class Teacher:
    id: str
    name: str = ""
    stage: str | None = None
    post: str | None = None
    hired_year: int | None = None
    transfer_in_year: int | None = None
    leaves: tuple[Leave, ...] = ()
    normal_graduate: bool | None = None

    def leave_kinds(self, year: int) -> set[str]:
        return {lv.kind for lv in self.leaves if lv.year == year}


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    year: int
    title: str = ""
    category: str | None = None
    theme: str | None = None
    level: str | None = None
    form: str | None = None
    location: str | None = None
    hours: Decimal | None = None
    days: Decimal | None = None
    credits: Decimal | None = None
    result: str | None = None
    role: str | None = None
    achievement: str | None = None
    program: str | None = None
    absent_hours: Decimal | None = None
    topics: int | None = None
    words: int | None = None
    approved: bool | None = None
    certificate: bool | None = None
    subject_related: bool | None = None
    education_system: bool | None = None
    completed_year: int | None = None
    makeup_for_year: int | None = None

    def get(self, name: str) -> Any:
        return getattr(self, name)


# JSON key -> (Chinese header, kind).  The Chinese header is what the XLSX/CSV
# template shows; kinds drive parsing.
RECORD_FIELDS: dict[str, tuple[str, str]] = {
    "id": ("记录编号", "str"),
    "year": ("登记年度", "year"),
    "title": ("培训项目名称", "str"),
    "category": ("学分类别", "str"),
    "theme": ("主题", "str"),
    "level": ("级别", "enum"),
    "form": ("形式", "enum"),
    "location": ("地点", "enum"),
    "hours": ("学时", "decimal"),
    "days": ("天数", "decimal"),
    "credits": ("认定学分", "decimal"),
    "result": ("考核结果", "enum"),
    "role": ("角色", "enum"),
    "achievement": ("成果类型", "enum"),
    "program": ("项目", "enum"),
    "absent_hours": ("缺勤学时", "decimal"),
    "topics": ("专题数", "int"),
    "words": ("字数", "int"),
    "approved": ("经批准", "bool"),
    "certificate": ("取得证书", "bool"),
    "subject_related": ("所教学科相关", "bool"),
    "education_system": ("教育系统颁发", "bool"),
    "completed_year": ("结业年度", "year"),
    "makeup_for_year": ("补修年度", "year"),
}

TEACHER_FIELDS: dict[str, tuple[str, str]] = {
    "id": ("教师编号", "str"),
    "name": ("姓名", "str"),
    "stage": ("学段", "enum"),
    "post": ("岗位", "enum"),
    "hired_year": ("首次任教年份", "year"),
    "transfer_in_year": ("调入年份", "year"),
    "normal_graduate": ("师范类毕业", "bool"),
}

_TRUE = {"是", "true", "True", "TRUE", "1", "Y", "y", "yes", "√"}
_FALSE = {"否", "false", "False", "FALSE", "0", "N", "n", "no", "×"}


_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_PLAIN_INT = re.compile(r"[0-9]+")
_EXCEL_NUMBER_HINT = "应为文本，收到了数字；请把该列设置为“文本”格式后重新录入"


def _parse_value(kind: str, field_name: str, raw: Any) -> Any:
    """One cell or JSON value -> its typed, canonical form.  Raises ValueError
    with a Chinese reason; never guesses (no float ever becomes a credit)."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if kind == "str":
        if isinstance(raw, (float, Decimal)):
            raise ValueError(_EXCEL_NUMBER_HINT)
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise ValueError("应为文本")
        return str(raw).strip()
    if kind == "enum":
        vocab_name = _ENUM_OF.get(field_name, field_name)
        choices = "、".join(vocab.allowed(vocab_name))
        if not isinstance(raw, str):
            raise ValueError(f"应为文本，可选：{choices}")
        text = raw.strip()
        value = vocab.canonical(vocab_name, text)
        if value is None:
            raise ValueError(f"“{text}”不是可识别的取值，可选：{choices}")
        return value
    if kind == "decimal":
        return _parse_decimal(raw)
    if kind in ("int", "year"):
        number = _parse_int(raw)
        if kind == "year" and not 1950 <= number <= 2100:
            raise ValueError(f"年份 {number} 不在 1950–2100 之间")
        return number
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"“{text}”应为“是”或“否”")
    raise AssertionError(kind)


def _parse_decimal(given: Any) -> Decimal:
    """Hours, days and credits are exact decimals.  Text must be a plain
    number ("24", "24.5"); a spreadsheet float is read at the 15 significant
    digits Excel itself shows, so 24.5 stays 24.5 and 0.1+0.2 is 0.3."""
    if isinstance(given, bool):
        raise ValueError("应为数字，收到了“是/否”")
    if isinstance(given, float):
        if not math.isfinite(given):
            raise ValueError("不是有限数字")
        raw = Decimal(format(given, ".15g"))
    elif isinstance(given, str):
        text = given.strip()
        if text.startswith("-") and _PLAIN_DECIMAL.fullmatch(text[1:]):
            raise ValueError("不能为负数")
        if not _PLAIN_DECIMAL.fullmatch(text):
            raise ValueError(f"“{text}”不是数字（请写成 24 或 24.5 这样的数字）")
        raw = Decimal(text)
    elif isinstance(given, int):
        raw = Decimal(given)
    elif isinstance(given, Decimal):
        raw = given
    else:
        raise ValueError("应为数字")
    if not raw.is_finite():
        raise ValueError("不是有限数字")
    if raw < 0:
        raise ValueError("不能为负数")
    return raw


def _parse_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("应为整数")
    if isinstance(raw, (float, Decimal)):
        finite = raw.is_finite() if isinstance(raw, Decimal) else math.isfinite(raw)
        if not finite or raw != int(raw):
            raise ValueError(f"“{raw}”不是整数")
        raw = int(raw)
    elif isinstance(raw, str):
        text = raw.strip().removesuffix("年").strip()
        if text.startswith("-") and _PLAIN_INT.fullmatch(text[1:]):
            raise ValueError("不能为负数")
        if not _PLAIN_INT.fullmatch(text):
            raise ValueError(f"“{raw}”不是整数")
        raw = int(text)
    if not isinstance(raw, int):
        raise ValueError("应为整数")
    if raw < 0:
        raise ValueError("不能为负数")
    return raw


# Record/teacher attributes whose vocabulary has another name.
_ENUM_OF = {"kind": "leave_kind"}

Where = Callable[[str, str], Problem]


def _parse_fields(
    data: dict[str, Any],
    spec: dict[str, tuple[str, str]],
    where: Callable[[str, str], Problem],
    problems: list[Problem],
    failed: set[str] | None = None,
) -> dict[str, Any]:
    """Parse the known keys of ``data``; a blank value is left out, so the
    dataclass default applies.  Keys that failed are recorded in ``failed``."""
    out: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in spec:
            continue
        kind = spec[key][1]
        try:
            value = _parse_value(kind, key, raw)
        except (ValueError, TypeError) as exc:
            problems.append(where(key, str(exc)))
            if failed is not None:
                failed.add(key)
            continue
        if value is not None:
            out[key] = value
    return out


def parse_teacher(
    data: dict[str, Any], where: Callable[[str, str], Problem]
) -> tuple[Teacher | None, list[Problem]]:
    problems: list[Problem] = []
    extra = set(data) - set(TEACHER_FIELDS) - {"leaves"}
    for key in sorted(extra):
        problems.append(where(key, "未知字段"))
    failed: set[str] = set()
    values = _parse_fields(data, TEACHER_FIELDS, where, problems, failed)
    leaves: list[Leave] = []
    raw_leaves = data.get("leaves") or []
    if not isinstance(raw_leaves, list):
        problems.append(where("leaves", "应为列表"))
        raw_leaves = []
    for i, item in enumerate(raw_leaves):
        if not isinstance(item, dict):
            problems.append(where(f"leaves[{i}]", "应为对象"))
            continue
        unknown = set(item) - {"year", "kind", "approved"}
        for key in sorted(unknown):
            problems.append(where(f"leaves[{i}].{key}", "未知字段"))
        try:
            year = _parse_value("year", "year", item.get("year"))
            kind = _parse_value("enum", "leave_kind", item.get("kind"))
            approved = _parse_value("bool", "approved", item.get("approved"))
            if year is None or kind is None:
                raise ValueError("请假记录须有年份（year）和类型（kind）")
            # an absent approval means approved (the default of Leave)
            leaves.append(Leave(year=year, kind=kind, approved=approved is not False))
        except (ValueError, TypeError) as exc:
            problems.append(where(f"leaves[{i}]", str(exc)))
    if not values.get("id") and "id" not in failed:
        problems.append(where("id", "缺少教师编号"))
    if problems:
        return None, problems
    return Teacher(leaves=tuple(leaves), **values), []


def parse_record(
    data: dict[str, Any], where: Callable[[str, str], Problem]
) -> tuple[Record | None, list[Problem]]:
    problems: list[Problem] = []
    for key in sorted(set(data) - set(RECORD_FIELDS)):
        problems.append(where(key, "未知字段"))
    failed: set[str] = set()
    values = _parse_fields(data, RECORD_FIELDS, where, problems, failed)
    if not values.get("id") and "id" not in failed:
        problems.append(where("id", "缺少记录编号"))
    if values.get("year") is None and "year" not in failed:
        problems.append(where("year", "缺少登记年度"))
    if problems:
        return None, problems
    return Record(**values), []


@dataclass(slots=True)
class Ledger:
    """One teacher and her records, as read from any input format."""

    teacher: Teacher
    records: list[Record] = field(default_factory=list)
    # record id -> where its fields were read (file, row or JSON path, column):
    # a check after reading names the cell, as the readers do
    where: dict[str, Callable[[str, str], Problem]] = field(default_factory=dict, compare=False, repr=False)
