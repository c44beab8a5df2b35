"""What the batch evaluator routes to the per-teacher engine, and the
routed teachers' evaluation: ``completion`` and ``penalty`` (teachers with a
matching record), leave minimums on themes or record matches, records in
the policy's own words (a sub-type written as the category, a theme alias:
:mod:`xuefen.engine.words`), teachers with duplicate record ids, and figures
with more than three decimals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl

from xuefen.model import RECORD_FIELDS, Record, Teacher
from xuefen.policy.schema import Target

from .compile import DECIMAL_FIELDS, CompiledPolicy
from .stage1 import exact_milli, parse_leaves


def route_mask(df: pl.DataFrame, comp: CompiledPolicy) -> pl.Series:
    """Per row: does this row's teacher need the per-teacher engine?  Only the
    rule kinds without a batch form, for the teachers they concern."""
    ev = comp.ev
    reasons: list[pl.Expr] = [~exact_milli(df)]
    for when in comp.route_matches:
        reasons.append(comp.match(when))
    for lr in ev.leaves:
        for lm in lr.year_minimums:
            if not (lm.target == "total" or (isinstance(lm.target, Target) and lm.target.category)):
                reasons.append(pl.col("leaves").is_not_null())
    row = pl.any_horizontal(reasons)
    dup = pl.col("record_id").is_duplicated().over("teacher_id")
    flagged = df.select((row | dup).any().over("teacher_id").alias("r")).get_column("r")
    return flagged


def engine_teacher(row: dict[str, Any]) -> Teacher:
    return Teacher(id=str(row["teacher_id"]), stage=row.get("stage"), post=row.get("post"),
                   hired_year=row.get("hired_year"), transfer_in_year=row.get("transfer_in_year"),
                   leaves=parse_leaves(str(row.get("leaves") or "")), normal_graduate=row.get("normal_graduate"))


def _engine_record(row: dict[str, Any]) -> Record:
    values = {k: row.get(k) for k in RECORD_FIELDS if k != "id"}
    for k in DECIMAL_FIELDS:
        v = values.get(k)
        if v is not None and not isinstance(v, Decimal):
            values[k] = Decimal(str(v))
    return Record(id=str(row["record_id"]), **values)  # type: ignore[arg-type]


def run_routed(comp: CompiledPolicy, df: pl.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    teachers_out = []
    years_out = []
    for _, group in df.group_by("teacher_id", maintain_order=True):
        rows = group.to_dicts()
        teacher = engine_teacher(rows[0])
        records = [_engine_record(r) for r in rows]
        ev = comp.ev.evaluate(teacher, records, comp.as_of)
        row: dict[str, Any] = {"teacher_id": teacher.id, "passed": ev.passed, "status": ev.status,
                               "total_milli": int(ev.total * 1000), "routed": True}
        for c in comp.categories:
            row[f"cat:{c}"] = int(ev.cycle.counted[c] * 1000)
        teachers_out.append(row)
        for y, sc in ev.years.items():
            years_out.append({"teacher_id": teacher.id, "year": y, "passed": sc.passed,
                              "total_milli": int(sc.total * 1000)})
    return teachers_out, years_out
