"""The batch evaluator.

Input: one flat table, one row per record, teacher columns repeated on each of
her rows (the interchange format; Parquet, CSV or XLSX).  Output: per teacher
the verdict, the cycle total and category figures, per year the totals and
verdicts, and per organisation unit the completion rates.

This module is the driver (chunks, the general path of one chunk, unit
rates).  The sections live beside it: :mod:`.compile` (the public
:class:`CompiledPolicy`: conditions as Polars expressions, credit methods as
integer fractions), :mod:`.stage1` (the input frame and the per-record stage
as Polars expressions over the frame), :mod:`.stage2` (caps, transfers,
minimums and verdicts in NumPy, shared with the columnar path) and
:mod:`.routing` (what goes to the per-teacher engine).  The fast per-record
stage is :mod:`xuefen.batch.columnar` (the same expressions, once per
combination of facts), and Parquet files are read by
:mod:`xuefen.batch.parquet`.

How it mirrors the per-teacher engine (``xuefen.engine.evaluate``), rule kind
by rule kind:

* per record (Polars expressions): ``gate`` (first failing gate wins),
  ``conversion`` (first match wins, ``outputs`` exploded into lines),
  ``multiplier`` (product of matching factors), ``exclude``; credits are
  computed as exact fractions of integers and rounded half up to thousandths
  once, as the engine does;
* per scope (NumPy over teacher-clustered arrays): ``cap`` (record by record
  in the canonical order (year, record id) — a running sum clipped at the
  limit), ``highest_only``, ``share_of_total``, ``transfer``, ``minimum``
  (credits, earned credits, hours, count; ``applies_to``), ``waive``;
* ``attribute_year`` (a column expression: first applicable rule, make-up only
  into a year of approved leave), ``partial_cycle``, ``leave_year`` and
  hire-year minimums as per-teacher vectors;
* routed to the per-teacher engine, for the few teachers they concern:
  ``completion`` and ``penalty`` (teachers with a matching record), leave
  minimums on themes or record matches, teachers with duplicate record ids,
  figures with more than three decimals, and teachers with a line in two
  caps that cross (the engine allocates those caps together).

``tests/test_batch.py`` proves, over random ledgers for every shipped policy,
that the batch result equals the engine's for every teacher.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from xuefen.errors import InputError
from xuefen.policy.schema import Policy

from .compile import TEACHER_COLUMNS, UNIT_COLUMNS, CompiledPolicy, milli_col
from .routing import route_mask, run_routed
from .stage1 import attribute_years, canonicalise, credited_lines, prepare
from .stage2 import crossing_teachers, no_lines, stage2, target_mask, target_mask_specs


@dataclass
class BatchResult:
    """``teachers``: one row per teacher (teacher_id, passed, status,
    total_milli, routed, and ``cat:<category>`` counted thousandths);
    ``years``: teacher_id, year, passed (null = not required), total_milli;
    ``units``: level, unit, teachers, passed, rate."""

    teachers: pl.DataFrame
    years: pl.DataFrame
    units: pl.DataFrame
    routed: int = 0
    notes: list[str] = field(default_factory=list)
    # chunks evaluated by the columnar fast path and by the general path
    columnar_chunks: int = 0
    general_chunks: int = 0


def evaluate_chunk(comp: CompiledPolicy, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    df = prepare(df, comp)
    routed_rows = route_mask(df, comp)
    routed_df = df.filter(routed_rows)
    df = df.filter(~routed_rows)
    teacher_cols = ["teacher_id", *TEACHER_COLUMNS, "leaves", *[c for c in UNIT_COLUMNS if c in df.columns]]
    teachers = df.select(teacher_cols).unique(subset="teacher_id", keep="first", maintain_order=True)
    n_t = teachers.height
    df = df.join(teachers.select("teacher_id").with_row_index("__t"), on="teacher_id", how="left")
    df = attribute_years(df, comp, teachers)
    lines_df = credited_lines(df, comp, target_mask_specs(comp)) if n_t else pl.DataFrame()
    if lines_df.height:
        lines = {
            "t": lines_df.get_column("__t").to_numpy().astype(np.int64),
            "y": (lines_df.get_column("__year").to_numpy().astype(np.int64) - comp.cycle_start),
            "cat": lines_df.get_column("__cat").cast(pl.Utf8).replace_strict(comp.cat_index, return_dtype=pl.Int64)
            .to_numpy(),
            "milli": lines_df.get_column("__milli").to_numpy().astype(np.int64),
            "excluded": lines_df.get_column("__excluded").to_numpy().astype(bool),
            "passed": lines_df.get_column("__passed").to_numpy().astype(bool),
            "hours": lines_df.get_column(milli_col("hours")).fill_null(0).to_numpy().astype(np.int64),
            "rec": lines_df.get_column("__rec").to_numpy().astype(np.int64),
        }
        mcols = {name: lines_df.get_column(name).to_numpy().astype(bool) for name, _ in target_mask_specs(comp)}
    else:
        lines = no_lines()
        mcols = {name: np.zeros(0, dtype=bool) for name, _ in target_mask_specs(comp)}

    def theme() -> pl.Series:
        return lines_df.get_column("__theme").cast(pl.Utf8) if lines_df.height else pl.Series([], dtype=pl.Utf8)

    out, years_df = stage2(comp, teachers, lines, mcols, theme)
    if comp.cap_pairs and lines_df.height:
        crossed = crossing_teachers(
            comp, lines, lambda cap: target_mask(comp, cap.id, cap.target, lines, mcols, theme), n_t)
        if crossed.any():
            ids = teachers.get_column("teacher_id").filter(pl.Series(crossed)).to_list()
            out = out.filter(~pl.col("teacher_id").is_in(ids))
            years_df = years_df.filter(~pl.col("teacher_id").is_in(ids))
            routed_df = pl.concat([routed_df, df.filter(pl.col("teacher_id").is_in(ids)).select(routed_df.columns)],
                                  how="vertical_relaxed")
    if routed_df.height:
        t_rows, y_rows = run_routed(comp, routed_df)
        units = routed_df.select("teacher_id", *[c for c in UNIT_COLUMNS if c in routed_df.columns]).unique(
            subset="teacher_id", keep="first", maintain_order=True)
        routed_out = pl.DataFrame(t_rows).join(units, on="teacher_id", how="left")
        out = pl.concat([out, routed_out.select(out.columns)], how="vertical_relaxed")
        years_df = pl.concat([years_df, pl.DataFrame(y_rows, schema=years_df.schema)], how="vertical_relaxed")
    return out, years_df


def unit_rates(teachers: pl.DataFrame) -> pl.DataFrame:
    frames = []
    for level in UNIT_COLUMNS:
        if level not in teachers.columns:
            continue
        frames.append(
            teachers.group_by(level).agg(pl.len().alias("teachers"), pl.col("passed").sum().alias("passed"))
            .rename({level: "unit"}).with_columns(pl.lit(level).alias("level"),
                                                  (pl.col("passed") / pl.col("teachers")).alias("rate"))
            .select("level", "unit", "teachers", "passed", "rate")
        )
    if not frames:
        return pl.DataFrame(schema={"level": pl.Utf8, "unit": pl.Utf8, "teachers": pl.UInt32, "passed": pl.UInt32,
                                    "rate": pl.Float64})
    return pl.concat(frames).sort("level", "unit")


def evaluate_frame(policy: Policy, df: pl.DataFrame, as_of: dt.date, options: dict[str, str] | None = None,
                   chunk_rows: int = 5_000_000, columnar: bool = True) -> BatchResult:
    """Evaluate a flat frame; rows of one teacher are sorted together if they
    are not.  ``columnar=False`` forces the general (Polars) path for every
    chunk, which the differential tests compare with the fast path."""
    from xuefen.batch.columnar import Plan, evaluate_table

    comp = CompiledPolicy(policy, options, as_of)
    plan = Plan(comp)
    df = canonicalise(df)
    if "teacher_id" not in df.columns:
        raise InputError("缺少 teacher_id 列")
    df = df.with_columns(pl.col("teacher_id").cast(pl.Utf8))
    ids = df.get_column("teacher_id")
    runs = int((ids != ids.shift(1)).fill_null(True).sum())
    if runs != ids.n_unique():
        df = df.sort("teacher_id", maintain_order=True)
    teacher_frames = []
    year_frames = []
    paths = [0, 0]
    for chunk in _chunks(df, chunk_rows):
        done = evaluate_table(plan, chunk.to_arrow()) if columnar else None
        paths[done is None] += 1
        t, y = done if done is not None else evaluate_chunk(comp, chunk)
        teacher_frames.append(t)
        year_frames.append(y)
    teachers = pl.concat(teacher_frames, how="vertical_relaxed") if teacher_frames else pl.DataFrame()
    years = pl.concat(year_frames, how="vertical_relaxed") if year_frames else pl.DataFrame()
    routed = int(teachers.get_column("routed").sum()) if teachers.height else 0
    return BatchResult(teachers, years, unit_rates(teachers) if teachers.height else pl.DataFrame(), routed,
                       columnar_chunks=paths[0], general_chunks=paths[1])


def _chunks(df: pl.DataFrame, chunk_rows: int) -> Iterator[pl.DataFrame]:
    """Split at teacher boundaries into pieces of about ``chunk_rows`` rows."""
    n = df.height
    if n <= chunk_rows:
        yield df
        return
    ids = df.get_column("teacher_id")
    change = np.flatnonzero(np.r_[True, (ids.slice(1) != ids.slice(0, n - 1)).to_numpy()])
    start = 0
    while start < n:
        want = start + chunk_rows
        if want >= n:
            yield df.slice(start, n - start)
            return
        cut = change[np.searchsorted(change, want)] if want <= change[-1] else n
        yield df.slice(start, cut - start)
        start = cut
