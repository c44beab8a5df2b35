"""Teacher master data (教师信息) imports: new teachers, changed facts, moves
between schools and districts — through the roster import's own machinery
(services.imports: the batch, the stored file, the two phases, the progress,
the idempotency by SHA-256, the pages), with the checks of a teacher file.

Columns (Chinese headers, any order; only 教师编号 is required):

    教师编号 身份证号 姓名 学校 学段 岗位 首次任教年份 调入年份 调入前所在地区
    师范类毕业 假期 离岗年份

* A blank cell leaves the stored value as it is (a file can change one column).
* 假期: entries separated by ；or ;, each ``年份:类型`` with ``:未批准`` when
  the leave was not approved, e.g. ``2024:产假;2025:病假:未批准``.  A given
  假期 cell replaces the teacher's list of leaves.
* A new teacher needs 身份证号, 姓名 and 学校.  An existing teacher is found by
  教师编号; a 身份证号 that differs from the stored one is refused (an ID
  number is corrected by the district, not by a file).
* 学校 names a school (by its name) inside the uploader's unit.  A teacher of
  another unit may be named only to move her in, with her 身份证号 as proof
  of identity: the receiving unit takes her, and her ledger comes with her.
* A move to a school under another policy binding (another district, 北京
  第十四条 "自调入年度起"): 调入年份 becomes the year of the move unless the
  file gives one, and she is evaluated under the new unit's policy from then.

Every change is audited (before/after, the 身份证号 masked) and the teachers
whose facts changed are re-evaluated in the same transaction."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from xuefen import idnumber
from xuefen.errors import InputError, Problem
from xuefen.model import TEACHER_FIELDS, parse_teacher
from xuefen.web import permissions as perm
from xuefen.web.models import ImportBatch, Org, OrgKind, Teacher, mask_id_number
from xuefen.web.services import audit, imports, tallies, teachers
from xuefen.web.services.evaluation import Policies, refresh_results
from xuefen.web.services.ledger import Actor, Denied, ServiceError

COLUMNS: dict[str, str] = {
    "教师编号": "id", "身份证号": "id_number", "姓名": "name", "学校": "school", "学段": "stage", "岗位": "post",
    "首次任教年份": "hired_year", "调入年份": "transfer_in_year", "调入前所在地区": "transfer_from",
    "师范类毕业": "normal_graduate", "假期": "leaves", "离岗年份": "left_year",
}
HEADER_OF = {key: header for header, key in COLUMNS.items()}
# model fields a row may set, besides the school and the 身份证号
FIELDS = ("name", "stage", "post", "hired_year", "transfer_in_year", "transfer_from", "normal_graduate", "leaves",
          "left_year")


@dataclass
class Plan:
    row: int
    teacher: Teacher | None  # None: a new teacher
    teacher_no: str
    values: dict[str, Any] = field(default_factory=dict)
    id_number: str = ""
    school: Org | None = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _leaves(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in re.split(r"[;；]", text):
        part = part.strip()
        if not part:
            continue
        bits = [b.strip() for b in re.split(r"[:：]", part)]
        if len(bits) not in (2, 3) or not bits[0].isdigit() or not bits[1] or (len(bits) == 3 and bits[2] != "未批准"):
            raise ValueError(f"“{part}”应写作“年份:类型”或“年份:类型:未批准”，多条用分号分隔")
        out.append({"year": int(bits[0]), "kind": bits[1], "approved": len(bits) == 2})
    return out


def _schools(node: Org) -> dict[str, list[Org]]:
    by_name: dict[str, list[Org]] = {}
    for school in Org.objects.filter(path__startswith=node.path, kind=OrgKind.SCHOOL):
        by_name.setdefault("".join(school.name.split()), []).append(school)
    return by_name


def check(org: Org, file_name: str, data: bytes, progress: Callable[[int], None] | None = None
          ) -> tuple[list[Problem], list[Plan], int]:
    """Phase 1: every problem of every row, and the changes when there is none."""
    rows = imports._raw_rows(file_name, data)
    numbered = [n for n, row in enumerate(rows, start=1) if not all(imports._blank(c) for c in row)]
    if not numbered:
        raise InputError(Problem("文件没有内容", file=file_name))
    header_no = numbered[0]
    problems: list[Problem] = []
    columns: dict[int, str] = {}
    for i, cell in enumerate(rows[header_no - 1]):
        if imports._blank(cell):
            continue
        key = COLUMNS.get("".join(str(cell).split()))
        if key is None:
            problems.append(Problem(f"未知列“{str(cell).strip()}”；可用的列：{'、'.join(COLUMNS)}", file=file_name,
                                    row=header_no, column=str(cell).strip()))
        elif key in columns.values():
            problems.append(Problem("列名重复", file=file_name, row=header_no, column=str(cell).strip()))
        else:
            columns[i] = key
    if "id" not in columns.values():
        problems.append(Problem("缺少“教师编号”列", file=file_name, row=header_no))
    if problems:
        return problems, [], len(numbered) - 1

    node = imports.scope_node(org) or org
    schools = _schools(node)
    today = timezone.localdate()
    data_rows = [n for n in numbered if n > header_no]
    cells = {n: {key: _text(rows[n - 1][i]) if i < len(rows[n - 1]) else "" for i, key in columns.items()}
             for n in data_rows}
    wanted = {c["id"] for c in cells.values() if c["id"]}
    found = {t.teacher_no: t for chunk in imports._chunks(wanted)
             for t in Teacher.objects.select_related("school").filter(teacher_no__in=chunk)}
    first_row: dict[tuple[str, str], int] = {}
    plans: list[Plan] = []
    for done, n in enumerate(data_rows, start=1):
        if progress is not None and done % imports.PROGRESS_EVERY == 0:
            progress(done)
        c = cells[n]
        before = len(problems)

        def here(key: str, message: str, n: int = n) -> Problem:
            return Problem(message, file=file_name, row=n, column=HEADER_OF.get(key.split("[")[0], key))

        raw: dict[str, Any] = {k: v for k, v in c.items() if k in TEACHER_FIELDS and v != ""}
        if c.get("leaves"):
            try:
                raw["leaves"] = _leaves(c["leaves"])
            except ValueError as exc:
                problems.append(here("leaves", str(exc)))
        parsed, found_problems = parse_teacher(raw, here)
        problems.extend(found_problems)
        teacher_no = c["id"]
        for key in ("id", "id_number"):
            value = c.get(key, "").upper() if key == "id_number" else c.get(key, "")
            if value:
                if (key, value) in first_row:
                    problems.append(here(key, f"与第{first_row[key, value]}行重复"))
                first_row.setdefault((key, value), n)
        left_year: int | None = None
        if c.get("left_year"):
            if not c["left_year"].isdigit() or not 1950 <= int(c["left_year"]) <= today.year:
                problems.append(here("left_year", f"离岗年份“{c['left_year']}”应为 1950–{today.year} 之间的年份"))
            else:
                left_year = int(c["left_year"])
        id_number = c.get("id_number", "").upper()
        if id_number:
            reason = idnumber.problem(id_number)
            if reason:
                problems.append(here("id_number", reason))
                id_number = ""
        school: Org | None = None
        if c.get("school"):
            hits = schools.get("".join(c["school"].split()), [])
            if not hits:
                problems.append(here("school", f"“{node.name}”范围内没有名为“{c['school']}”的学校"))
            elif len(hits) > 1:
                problems.append(here("school", f"“{node.name}”范围内有 {len(hits)} 所名为“{c['school']}”的学校，无法确定"))
            else:
                school = hits[0]
        teacher = found.get(teacher_no)
        if teacher is None and teacher_no:
            missing = [HEADER_OF[k] for k in ("id_number", "name", "school") if not c.get(k)]
            if missing:
                problems.append(here("id", f"平台中没有教师编号“{teacher_no}”；新增教师须填写{'、'.join(missing)}"))
            if id_number:
                other = teachers.teacher_by_id_number(id_number)
                if other is not None:
                    problems.append(here("id_number", f"该身份证号已登记为教师编号“{other.teacher_no}”"))
        elif teacher is not None:
            if id_number and id_number != teacher.id_number.upper():
                problems.append(here("id_number", f"与教师编号“{teacher_no}”在平台登记的身份证号不一致"
                                                  "（身份证号的更正须由区县办理）"))
            if not teacher.school.path.startswith(node.path):
                if school is None or not id_number:
                    problems.append(here("id", f"教师编号“{teacher_no}”的教师不在“{node.name}”范围内；"
                                               "调入本单位须同时填写其身份证号和调入学校"))
        if parsed is not None:
            hired = parsed.hired_year or (teacher.hired_year if teacher else None)
            for key, year in (("transfer_in_year", parsed.transfer_in_year), ("left_year", left_year)):
                if year is not None and hired is not None and year < hired:
                    problems.append(here(key, f"{HEADER_OF[key]} {year} 早于首次任教年份 {hired}"))
            for key, year in (("hired_year", parsed.hired_year), ("transfer_in_year", parsed.transfer_in_year)):
                if year is not None and year > today.year:
                    problems.append(here(key, f"{HEADER_OF[key]} {year} 晚于今年"))
        if len(problems) > before or parsed is None:
            continue
        values: dict[str, Any] = {}
        for key in ("name", "stage", "post", "hired_year", "transfer_in_year", "normal_graduate"):
            value = getattr(parsed, key)
            if c.get(key) and value is not None:
                values[key] = value
        if c.get("leaves"):
            values["leaves"] = [{"year": lv.year, "kind": lv.kind, "approved": lv.approved} for lv in parsed.leaves]
        if c.get("transfer_from"):
            values["transfer_from"] = c["transfer_from"][:120]
        if left_year is not None:
            values["left_year"] = left_year
        plans.append(Plan(n, teacher, teacher_no, values, id_number, school))
    problems.sort(key=lambda p: (p.row or 0))
    if progress is not None:
        progress(len(data_rows))
    return problems, [] if problems else plans, len(data_rows)


def _outcome(batch: ImportBatch, state_while: str) -> tuple[list[Problem], list[Plan], int]:
    try:
        data = imports._stored_bytes(batch)
        total = imports.count_rows(batch.file_name, data)
        imports._set(batch, state=state_while, total_rows=total, done_rows=0)
        return check(batch.org, batch.file_name, data, progress=imports._Progress(batch, total))
    except InputError as exc:
        return exc.problems, [], 0


def check_batch(batch: ImportBatch) -> ImportBatch:
    """Phase 1 on a received teacher file (called by imports.check_batch)."""
    if batch.state != ImportBatch.State.VALIDATING:
        return batch
    problems, _plans, total = _outcome(batch, ImportBatch.State.VALIDATING)
    state = ImportBatch.State.INVALID if problems else ImportBatch.State.VALID
    imports._set(batch, state=state, errors=[imports._problem_json(p) for p in problems], total_rows=total,
                 done_rows=total)
    return batch


def _snapshot(t: Teacher) -> dict[str, Any]:
    out = {key: getattr(t, key) for key in FIELDS}
    out.update(teacher_no=t.teacher_no, school=t.school.name, id_number=mask_id_number(t.id_number))
    return out


def commit_batch(actor: Actor, batch: ImportBatch) -> ImportBatch:
    """Phase 2 (called by imports.commit_batch): check again, then write every
    change in one transaction, audit each teacher, re-evaluate them."""
    if not perm.can_import_teachers(actor.user, batch.org):
        raise Denied(f"无权为“{batch.org.name}”导入教师信息")
    if batch.state == ImportBatch.State.VALID:
        if not imports.queue_commit(actor, batch):
            return batch
    elif batch.state != ImportBatch.State.WRITING:
        raise ServiceError("该批次未通过校验，不能导入；请修改文件后重新上传")
    problems, plans, total = _outcome(batch, ImportBatch.State.WRITING)
    if problems:
        imports._set(batch, state=ImportBatch.State.INVALID, errors=[imports._problem_json(p) for p in problems])
        return batch
    today = timezone.localdate()
    policies = Policies()
    changed: list[Teacher] = []
    created = moved = 0
    with transaction.atomic(), tallies.deferred():
        locked = ImportBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.state != ImportBatch.State.WRITING:
            return locked
        ids = sorted(p.teacher.pk for p in plans if p.teacher is not None)
        current = {t.pk: t for t in Teacher.objects.select_for_update().select_related("school")
                   .filter(pk__in=ids).order_by("pk")}
        for plan in plans:
            if plan.teacher is None:
                assert plan.school is not None
                teacher = teachers.create_teacher(plan.school, plan.id_number, teacher_no=plan.teacher_no,
                                                  **plan.values)
                teacher.school = plan.school
                audit.log(actor.user, "teacher_create", teacher, after=_snapshot(teacher), ip=actor.ip,
                          org_path=plan.school.path, comment=f"批次 {batch.pk}")
                created += 1
                changed.append(teacher)
                continue
            teacher = current[plan.teacher.pk]
            before = _snapshot(teacher)
            school = plan.school if plan.school is not None and plan.school.pk != teacher.school_id else None
            values = dict(plan.values)
            if school is not None:
                old_binding, new_binding = policies.binding(teacher.school), policies.binding(school)
                if (old_binding and old_binding.pk) != (new_binding and new_binding.pk):
                    values.setdefault("transfer_in_year", today.year)
            old_path = teacher.school.path
            teachers.update_teacher(teacher, school, **values)
            after = _snapshot(teacher)
            if after == before:
                continue
            action = "teacher_move" if school is not None else "teacher_update"
            moved += school is not None
            audit.log(actor.user, action, teacher, before=before, after=after, ip=actor.ip,
                      org_path=teacher.school.path, comment=f"批次 {batch.pk}" + (f"，自 {old_path}" if school else ""))
            changed.append(teacher)
        refresh_results(changed)
        imports._set(batch, state=ImportBatch.State.DONE, created_rows=len(changed), done_rows=total, errors=[])
        audit.log(actor.user, "import", batch, ip=actor.ip, org_path=batch.org.path, after={
            "kind": "teachers", "file_name": batch.file_name, "sha256": batch.sha256, "rows": total,
            "created": created, "changed": len(changed) - created, "moved": moved})
    return batch
