"""Re-evaluating a whole jurisdiction at once: after a policy version or a
binding's options change, at year end, before certification.

The batch evaluator (``xuefen.batch``, the same policy files as the engine)
computes every teacher's figures from her counting records in one columnar
pass; only the teachers whose stored figures no longer match — or who have no
counting record, or no result yet — are re-evaluated one by one through
``refresh_results``, which stores the full explanation and keeps the per-unit
tallies exact.  So a run over a province whose results are current writes
nothing, and one after a policy change writes exactly what ``refresh_result``
would have written for each teacher.

What is compared: the policy version, its options, the verdict, the status,
the cycle total and every category's counted credits, and every year's
verdict and total.  The evaluation date alone is not a reason to rewrite a
result whose figures are unchanged.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from xuefen.batch import evaluate_frame
from xuefen.model import RECORD_FIELDS
from xuefen.policy.schema import Policy
from xuefen.web.models import Org, Record, Teacher, TeacherResult
from xuefen.web.permissions import COUNTING
from xuefen.web.services.evaluation import FACT_FIELDS, Policies, evaluator, refresh_results

# Ids per query: SQLite caps the parameters of one statement.
_CHUNK = 500


@dataclass
class Outcome:
    teachers: int  # teachers under the unit
    unchanged: int  # figures confirmed by the batch evaluator: nothing written
    refreshed: int  # re-evaluated and stored one by one
    seconds: float


def reevaluate(org: Org | None = None, today: dt.date | None = None) -> Outcome:
    """Bring every stored result under ``org`` (everything when None) in line
    with the policies as they are bound today."""
    started = time.perf_counter()
    teachers = Teacher.objects.select_related("school").order_by("pk")
    if org is not None:
        teachers = teachers.filter(school__path__startswith=org.path)
    everyone = list(teachers)
    policies = Policies(today)
    policies.prefetch({t.school_id: t.school for t in everyone}.values())
    groups: dict[tuple[str, dt.date, tuple[tuple[str, str], ...]], list[Teacher]] = defaultdict(list)
    chosen: dict[tuple[str, dt.date, tuple[tuple[str, str], ...]], tuple[Policy, dict[str, str]]] = {}
    stale: list[Teacher] = []
    for t in everyone:
        picked = policies.for_school(t.school)
        if picked is None:
            stale.append(t)  # no policy: refresh_result removes any stored result
            continue
        policy, as_of, options = picked
        key = (policy.id, as_of, tuple(sorted(options.items())))
        groups[key].append(t)
        chosen[key] = (policy, options)
    unchanged = 0
    for key, members in groups.items():
        policy, options = chosen[key]
        confirmed = _confirmed(policy, key[1], options, members)
        unchanged += len(confirmed)
        stale += [t for t in members if t.pk not in confirmed]
    refreshed = refresh_results(stale, today) if stale else 0
    return Outcome(len(everyone), unchanged, refreshed, time.perf_counter() - started)


def _confirmed(policy: Policy, as_of: dt.date, options: dict[str, str], members: list[Teacher]) -> set[int]:
    """The teachers whose stored result the batch evaluator reproduces."""
    frame = _ledger(members)
    if frame.height == 0:
        return set()
    batch = evaluate_frame(policy, frame, as_of, options)
    resolved = evaluator(policy, options).options
    years: dict[int, dict[int, tuple[bool | None, int]]] = defaultdict(dict)
    for row in batch.years.iter_rows(named=True):
        years[int(row["teacher_id"])][int(row["year"])] = (row["passed"], int(row["total_milli"]))
    figures = {int(row["teacher_id"]): row for row in batch.teachers.iter_rows(named=True)}
    stored: dict[int, TeacherResult] = {}
    ids = sorted(figures)
    for i in range(0, len(ids), _CHUNK):
        stored.update((r.teacher_id, r) for r in TeacherResult.objects.filter(teacher_id__in=ids[i:i + _CHUNK]))
    out = set()
    for pk, row in figures.items():
        result = stored.get(pk)
        if result is not None and _same(result, row, years.get(pk, {}), policy, resolved):
            out.add(pk)
    return out


def _milli(value: Any) -> int:
    return int(Decimal(str(value)) * 1000)


def _same(result: TeacherResult, row: dict[str, Any], years: dict[int, tuple[bool | None, int]], policy: Policy,
          options: dict[str, str]) -> bool:
    data = result.data or {}
    if result.policy_id != policy.id or data.get("options") != options:
        return False
    if result.passed != row["passed"] or result.status != row["status"] or _milli(result.total) != row["total_milli"]:
        return False
    for cat, figures in (data.get("categories") or {}).items():
        if _milli(figures["counted"]) != row.get(f"cat:{cat}"):
            return False
    stored_years = {int(y): (v["passed"], _milli(v["total"])) for y, v in (data.get("years") or {}).items()}
    return stored_years == years


def _ledger(members: list[Teacher]) -> pl.DataFrame:
    """The counting records of ``members`` as one flat frame (the interchange
    columns; ``teacher_id`` is the database id), clustered by teacher."""
    by_pk = {t.pk: t for t in members}
    fields = [f for f in FACT_FIELDS if f != "title"]
    rows: dict[str, list[Any]] = defaultdict(list)
    ids = sorted(by_pk)
    for i in range(0, len(ids), _CHUNK):
        # by teacher only, the state tested here: given "status IN (…)" too,
        # SQLite reads every counting record through the status index
        records = (Record.objects.filter(teacher_id__in=ids[i:i + _CHUNK])
                   .order_by("teacher_id", "year", "uid")
                   .values_list("status", "teacher_id", "uid", "preset_credits", *fields))
        for status, teacher_id, uid, preset, *facts in records:
            if status not in COUNTING:
                continue
            t = by_pk[teacher_id]
            rows["teacher_id"].append(str(teacher_id))
            rows["stage"].append(t.stage or None)
            rows["post"].append(t.post or None)
            rows["hired_year"].append(t.hired_year)
            rows["transfer_in_year"].append(t.transfer_in_year)
            rows["normal_graduate"].append(t.normal_graduate)
            rows["leaves"].append(";".join(f"{lv['year']}:{lv['kind']}" + ("" if lv.get("approved", True) else ":否")
                                           for lv in t.leaves or []) or None)
            rows["record_id"].append(uid)
            rows["credits"].append(preset)
            for name, value in zip(fields, facts, strict=True):
                rows[name].append(None if value == "" else value)
    schema: dict[str, Any] = {"teacher_id": pl.Utf8, "stage": pl.Utf8, "post": pl.Utf8, "hired_year": pl.Int64,
                              "transfer_in_year": pl.Int64, "normal_graduate": pl.Boolean, "leaves": pl.Utf8,
                              "record_id": pl.Utf8}
    for name in ["credits", *fields]:
        kind = RECORD_FIELDS[name][1]
        schema[name] = {"decimal": pl.Decimal(9, 3), "year": pl.Int64, "int": pl.Int64, "bool": pl.Boolean}.get(
            kind, pl.Utf8)
    return pl.DataFrame({k: rows.get(k, []) for k in schema}, schema=schema)
