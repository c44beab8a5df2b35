"""The batch evaluator.

Input: one flat table, one row per record, teacher columns repeated on each of
her rows (the interchange format; Parquet, CSV or XLSX).  Output: per teacher
the verdict, the cycle total and category figures, per year the totals and
verdicts, and per organisation unit the completion rates.

This module holds the general path (the per-record stage as Polars
expressions over the frame) and stage 2, which both paths share; the fast
per-record stage is :mod:`xuefen.batch.columnar` (the same expressions, once
per combination of facts), and Parquet files are read by
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
  and figures with more than three decimals.

``tests/test_batch.py`` proves, over random ledgers for every shipped policy,
that the batch result equals the engine's for every teacher.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import polars as pl

from xuefen import vocab
from xuefen.engine.evaluate import Evaluator
from xuefen.errors import InputError, Problem
from xuefen.model import RECORD_FIELDS, TEACHER_FIELDS, Leave, Record, Teacher
from xuefen.policy.schema import ByTable, Cap, Credits, Minimum, Ops, Policy, Target

from . import kernels

TEACHER_COLUMNS = [k for k in TEACHER_FIELDS if k != "id"]
DECIMAL_FIELDS = [k for k, (_, kind) in RECORD_FIELDS.items() if kind == "decimal"]
UNIT_COLUMNS = ("school", "district", "city")
ENUM_RECORD = [k for k, (_, kind) in RECORD_FIELDS.items() if kind == "enum"]
ENUM_TEACHER = [k for k, (_, kind) in TEACHER_FIELDS.items() if kind == "enum"]
INT_FIELDS = {"year", "topics", "words", "completed_year", "makeup_for_year", "hired_year", "transfer_in_year"}


def _frac(value: Decimal | int) -> Fraction:
    return Fraction(value)


def _milli(column: str) -> str:
    return f"__{column}_m"


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


class _Compiled:
    """A policy version with its options, prepared for columnar evaluation."""

    def __init__(self, policy: Policy, options: dict[str, str] | None, as_of: dt.date) -> None:
        self.policy = policy
        self.ev = Evaluator(policy, options)
        self.as_of = as_of
        self.cycle_start, self.cycle_end = self.ev.cycle_for(as_of.year)
        self.last_year = min(self.cycle_end, as_of.year)
        self.categories = list(self.ev.category_ids)
        self.cat_index = {c: i for i, c in enumerate(self.categories)}
        self.teacher_mask_exprs: list[pl.Expr] | None = None  # see _teacher_mask_exprs
        self.leave_minimums: dict[int, list[Minimum]] | None = None  # see _leave_minimums
        self.alias = {}
        for cat in policy.categories:
            self.alias[cat.id] = cat.id
            for a in cat.aliases:
                self.alias[a] = cat.id

    # ------------------------------------------------------------ matching

    def _col(self, key: str) -> tuple[pl.Expr, str]:
        name = key.removeprefix("teacher.")
        if key.startswith("teacher.") or name in ("hired_in_cycle", "transferred_in_cycle"):
            if name == "hired_in_cycle":
                return (pl.col("hired_year").is_between(self.cycle_start, self.cycle_end)).fill_null(False), "bool"
            if name == "transferred_in_cycle":
                return (pl.col("transfer_in_year").is_between(self.cycle_start, self.cycle_end)).fill_null(False), "bool"
            return pl.col(name), _kind(name)
        if name == "category":
            return pl.col("__category_id"), "str"
        if name in DECIMAL_FIELDS:
            return pl.col(_milli(name)), "milli"
        return pl.col(name), _kind(name)

    def teacher_match(self, match: dict[str, Any]) -> pl.Expr:
        return self.match({(k if k.startswith("teacher.") else f"teacher.{k}"): v for k, v in match.items()})

    def match(self, match: dict[str, Any] | None) -> pl.Expr:
        if not match:
            return pl.lit(True)
        parts = []
        for key, expected in match.items():
            col, kind = self._col(key)
            parts.append(_one(col, kind, expected))
        return pl.all_horizontal(parts) if len(parts) > 1 else parts[0]

    # ------------------------------------------------------------ credits

    def table(self, by: ByTable) -> tuple[pl.Expr, pl.Expr]:
        """A ``by`` table as (numerator, denominator) expressions of its rate
        (× 1000 when the values are fixed credits); a value without an entry
        gives 0, as the engine's missing standard does."""
        col, kind = self._col(by.field)
        nums: dict[Any, int] = {}
        dens: dict[Any, int] = {}
        for key, value in by.values.items():
            f = _frac(value) * (1 if by.per_hour else 1000)
            k: Any = int(key) if kind == "int" and key.isdigit() else key
            nums[k], dens[k] = f.numerator, f.denominator
        source = col.cast(pl.Utf8) if kind == "str" else col
        num = source.replace_strict(nums, default=0, return_dtype=pl.Int64).fill_null(0)
        den = source.replace_strict(dens, default=1, return_dtype=pl.Int64).fill_null(1)
        return num, den

    def credits_fraction(self, c: Credits) -> tuple[pl.Expr, pl.Expr]:
        """(numerator, denominator) of credits × 1000 for one method, as
        integer expressions; a missing fact gives 0 (the engine's line of 0)."""
        one = pl.lit(1, dtype=pl.Int64)
        zero = pl.lit(0, dtype=pl.Int64)
        hours_num: pl.Expr = pl.col(_milli("hours"))
        hours_den: pl.Expr = one
        if c.day_hours is not None:
            dh = _frac(c.day_hours)
            from_days = pl.col("hours").is_null() & pl.col("days").is_not_null()
            hours_num = pl.when(from_days).then(pl.col(_milli("days")) * dh.numerator).otherwise(pl.col(_milli("hours")))
            hours_den = pl.when(from_days).then(pl.lit(dh.denominator, dtype=pl.Int64)).otherwise(one)

        def rate(quantity: pl.Expr, den: pl.Expr, r: Fraction) -> tuple[pl.Expr, pl.Expr]:
            return (quantity * r.numerator).fill_null(0), den * r.denominator

        if c.hours_per_credit is not None:
            return rate(hours_num, hours_den, 1 / _frac(c.hours_per_credit))
        if c.credits_per_hour is not None:
            return rate(hours_num, hours_den, _frac(c.credits_per_hour))
        if c.fixed is not None:
            f = _frac(c.fixed) * 1000
            return pl.lit(f.numerator, dtype=pl.Int64), pl.lit(f.denominator, dtype=pl.Int64)
        if c.by is not None:
            num, den = self.table(c.by)
            if c.by.per_hour:
                return (hours_num * num).fill_null(0), hours_den * den
            return num, den
        if c.per_day is not None:
            return rate(pl.col(_milli("days")), one, _frac(c.per_day))
        if c.per_topic is not None:
            return rate(pl.col("topics").cast(pl.Int64) * 1000, one, _frac(c.per_topic))
        if c.preset:
            return pl.col(_milli("credits")).fill_null(0), one
        assert c.bands is not None
        field_name = c.bands.field
        scale = 1000 if field_name in ("days", "hours") else 1
        col = pl.col(_milli(field_name)) if scale == 1000 else pl.col(field_name).cast(pl.Int64)
        band_values = [_frac(band.credits) * 1000 for band in c.bands.bands]
        common = math.lcm(*(v.denominator for v in band_values))
        chain: Any = None
        for band, bv in zip(c.bands.bands, band_values, strict=True):
            lo = _frac(band.min) * scale
            cond = col * lo.denominator >= lo.numerator
            if band.max is not None:
                hi = _frac(band.max) * scale
                cond = cond & (col * hi.denominator < hi.numerator)
            numerator = pl.lit(int(bv * common), dtype=pl.Int64)
            chain = pl.when(cond).then(numerator) if chain is None else chain.when(cond).then(numerator)
        return chain.otherwise(zero).fill_null(0), pl.lit(common, dtype=pl.Int64)


def _kind(name: str) -> str:
    spec = RECORD_FIELDS.get(name) or TEACHER_FIELDS.get(name)
    if spec is None:
        return "str"
    kind = spec[1]
    if kind in ("year", "int"):
        return "int"
    if kind == "bool":
        return "bool"
    if kind == "decimal":
        return "milli"
    return "str"


def _scalar(kind: str, value: Any) -> Any:
    if kind == "milli":
        f = _frac(value) * 1000
        if f.denominator != 1:
            raise ValueError("比较值超过千分位精度")
        return int(f)
    if kind == "int":
        return int(value)
    return value


def _one(col: pl.Expr, kind: str, expected: Any) -> pl.Expr:
    """The engine's ``_one`` as a Polars expression (null semantics included)."""
    if isinstance(expected, Ops):
        parts: list[pl.Expr] = []
        if expected.present is not None:
            parts.append(col.is_not_null() if expected.present else col.is_null())
        if expected.in_ is not None:
            values = [_scalar(kind, v) for v in expected.in_ if v is not None]
            parts.append(col.is_in(values).fill_null(None in expected.in_))
        if expected.not_in is not None:
            values = [_scalar(kind, v) for v in expected.not_in if v is not None]
            parts.append((~col.is_in(values)).fill_null(None not in expected.not_in))
        for op in ("lt", "le", "gt", "ge"):
            bound = getattr(expected, op)
            if bound is None:
                continue
            b = _frac(bound) * (1000 if kind == "milli" else 1)
            lhs = col.cast(pl.Int64) * b.denominator
            cmp = {"lt": lhs < b.numerator, "le": lhs <= b.numerator, "gt": lhs > b.numerator,
                   "ge": lhs >= b.numerator}[op]
            parts.append(cmp.fill_null(False))
        return pl.all_horizontal(parts) if parts else pl.lit(True)
    if isinstance(expected, list):
        if not expected:
            return pl.lit(False)
        return pl.any_horizontal([_one(col, kind, e) for e in expected])
    if expected is None:
        return col.is_null()
    if isinstance(expected, bool):
        return (col == expected).fill_null(False) if kind == "bool" else pl.lit(False)
    if kind == "bool":
        return pl.lit(False)
    result: pl.Expr = (col == _scalar(kind, expected)).fill_null(False)
    return result


# ---------------------------------------------------------------- input


def canonicalise(df: pl.DataFrame, name: str = "") -> pl.DataFrame:
    """Map vocabulary variants to canonical terms; an unknown value is an
    error naming the column, the value and how many rows carry it."""
    problems: list[Problem] = []
    exprs = []
    for col, enum in [*((c, c) for c in ENUM_RECORD), *((c, c) for c in ENUM_TEACHER)]:
        if col not in df.columns:
            continue
        mapping = {variant: canon for canon, variants in vocab.ENUMS[enum].items() for variant in (canon, *variants)}
        series = df.get_column(col)
        if isinstance(series.dtype, (pl.Categorical, pl.Enum)):
            # dictionary-encoded: check the dictionary, not a hundred million rows
            cats = [c for c in series.unique().cast(pl.Utf8).to_list() if c is not None]
            if all(c in vocab.ENUMS[enum] for c in cats):
                continue  # already canonical; expressions compare categoricals directly
        values = series.cast(pl.Utf8).str.strip_chars()
        unknown = values.filter(values.is_not_null() & ~values.is_in(list(mapping))).unique().to_list()
        for value in unknown[:5]:
            problems.append(Problem(f"“{value}”不是可识别的取值", file=name or None, column=col))
        exprs.append(values.replace_strict(mapping, default=None).alias(col))
    if problems:
        raise InputError(problems)
    return df.with_columns(exprs) if exprs else df


def _prepare(df: pl.DataFrame, comp: _Compiled) -> pl.DataFrame:
    for col in ["teacher_id", *TEACHER_COLUMNS, "leaves", *RECORD_FIELDS]:
        if col not in df.columns:
            missing: Any = pl.Int64 if _kind(col) == "int" else pl.Boolean if _kind(col) == "bool" else pl.Utf8
            df = df.with_columns(pl.lit(None, dtype=missing).alias(col))
    df = df.rename({"id": "record_id"}) if "record_id" not in df.columns else df
    exprs = []
    for col in DECIMAL_FIELDS:
        dtype = df.schema[col]
        if isinstance(dtype, pl.Decimal):
            exprs.append((pl.col(col) * 1000).cast(pl.Int64).alias(_milli(col)))
        elif dtype in (pl.Int64, pl.Int32, pl.Int16, pl.Int8, pl.UInt32, pl.UInt16, pl.UInt8):
            exprs.append((pl.col(col).cast(pl.Int64) * 1000).alias(_milli(col)))
        elif dtype == pl.Utf8 or dtype == pl.Null:
            exprs.append((pl.col(col).cast(pl.Decimal(18, 3)) * 1000).cast(pl.Int64).alias(_milli(col)))
        else:
            raise InputError(Problem(f"列 {col} 为浮点数，不能精确表示学时/学分；请用十进制或文本", column=col))
    exprs.append(pl.col("category").replace_strict(comp.alias, default=pl.col("category"), return_dtype=pl.Utf8)
                 .alias("__category_id"))
    return df.with_columns(exprs)


def _exact_milli(df: pl.DataFrame) -> pl.Expr:
    """True where every decimal figure has at most three decimals (else the
    teacher is routed: the engine keeps such figures exact)."""
    checks = []
    for col in DECIMAL_FIELDS:
        dtype = df.schema[col]
        if isinstance(dtype, pl.Decimal) and (dtype.scale or 0) > 3:
            checks.append(((pl.col(col) * 1000).cast(pl.Int64).cast(dtype) == pl.col(col) * 1000).fill_null(True))
    return pl.all_horizontal(checks) if checks else pl.lit(True)


# ---------------------------------------------------------------- routing


def _route_mask(df: pl.DataFrame, comp: _Compiled) -> pl.Series:
    """Per row: does this row's teacher need the per-teacher engine?  Only the
    rule kinds without a batch form, for the teachers they concern."""
    ev = comp.ev
    reasons: list[pl.Expr] = [~_exact_milli(df)]
    for c in ev.completions:
        reasons.append(comp.match(c.when))
    for p in ev.penalties:
        reasons.append(comp.match(p.when))
    for lr in ev.leaves:
        for lm in lr.year_minimums:
            if not (lm.target == "total" or (isinstance(lm.target, Target) and lm.target.category)):
                reasons.append(pl.col("leaves").is_not_null())
    row = pl.any_horizontal(reasons)
    dup = pl.col("record_id").is_duplicated().over("teacher_id")
    flagged = df.select((row | dup).any().over("teacher_id").alias("r")).get_column("r")
    return flagged


# ---------------------------------------------------------------- stage 1


CONST, HOURS, HOURS_OR_DAYS, DAYS, TOPICS, CREDITS = range(6)
_NUMERIC = {"hours", "days", "credits", "absent_hours", "topics", "words"}


def fact_column(key: str) -> str | None:
    """The frame column a condition's key reads (``category`` is read as its
    canonical id); None for a numeric fact."""
    name = key.removeprefix("teacher.")
    if name in _NUMERIC:
        return None
    if name in ("hired_in_cycle", "transferred_in_cycle"):
        return "hired_year" if name == "hired_in_cycle" else "transfer_in_year"
    return "__category_id" if name == "category" else name


def _record_matches(comp: _Compiled, targets: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any] | None]:
    """Every condition the per-record stage evaluates: match targets, gates,
    conversions, exclusions, multipliers."""
    ev = comp.ev
    matches: list[dict[str, Any] | None] = [m for _, m in targets]
    for g in ev.gates:
        matches += [g.when, g.require]
    with_when: list[Any] = [*ev.conversions, *ev.excludes, *ev.multipliers]
    matches += [r.when for r in with_when]
    return matches

def _referenced(comp: _Compiled, targets: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], bool]:
    """The columns stage 1 looks at, and whether any condition is numeric
    (then the row-wise path is used)."""
    ev = comp.ev
    cols: set[str] = set()
    numeric = any(g.max_absence_share for g in ev.gates)
    for m in _record_matches(comp, targets):
        for key in m or {}:
            col = fact_column(key)
            if col is None:
                numeric = True
            else:
                cols.add(col)
    for c in ev.conversions:
        for out in ev._outputs[c.id]:
            if out.category == "@record":
                cols.add("__category_id")
            if out.theme == "@record":
                cols.add("theme")
            cr = out.credits
            if cr.bands is not None:
                numeric = True
            if cr.by is not None:
                if cr.by.field in _NUMERIC:
                    numeric = True
                cols.add(cr.by.field)
    return sorted(cols), numeric


def _coefficient(comp: _Compiled, c: Credits) -> tuple[int, pl.Expr, pl.Expr, int, int]:
    """(quantity kind, coefficient numerator, denominator, days→hours num, den)
    such that credits × 1000 = quantity × coefficient; the coefficient depends
    only on the record's categorical facts."""
    def lit(v: int) -> pl.Expr:
        return pl.lit(v, dtype=pl.Int64)

    dh = _frac(c.day_hours) if c.day_hours is not None else Fraction(0)
    hours_kind = HOURS_OR_DAYS if c.day_hours is not None else HOURS
    if c.hours_per_credit is not None:
        r = 1 / _frac(c.hours_per_credit)
        return hours_kind, lit(r.numerator), lit(r.denominator), dh.numerator, dh.denominator
    if c.credits_per_hour is not None:
        r = _frac(c.credits_per_hour)
        return hours_kind, lit(r.numerator), lit(r.denominator), dh.numerator, dh.denominator
    if c.fixed is not None:
        f = _frac(c.fixed) * 1000
        return CONST, lit(f.numerator), lit(f.denominator), 0, 1
    if c.by is not None:
        num, den = comp.table(c.by)
        return (hours_kind if c.by.per_hour else CONST), num, den, dh.numerator, dh.denominator
    if c.per_day is not None:
        r = _frac(c.per_day)
        return DAYS, lit(r.numerator), lit(r.denominator), 0, 1
    if c.per_topic is not None:
        r = _frac(c.per_topic)
        return TOPICS, lit(r.numerator), lit(r.denominator), 0, 1
    assert c.preset
    return CREDITS, lit(1), lit(1), 0, 1


def _lines(df: pl.DataFrame, comp: _Compiled, targets: list[tuple[str, dict[str, Any]]]) -> pl.DataFrame:
    """Per record: gates, conversion, multipliers, exclusion -> credited lines.

    Every rule's condition looks only at a record's categorical facts, so it
    is evaluated once per distinct combination of them (a few thousand in a
    province) and joined back; only the arithmetic runs per row."""
    df = df.filter(pl.col("__year").is_between(comp.cycle_start, comp.last_year))
    key_cols, numeric = _referenced(comp, targets)
    if numeric or not key_cols:
        return _lines_rowwise(df, comp, targets)
    combos = df.select(key_cols).unique()
    exprs = _record_exprs(comp, targets)
    combos = combos.with_columns(exprs)
    max_outputs = _max_outputs(comp)
    slot_cols = _slot_exprs(comp)
    combos = combos.with_columns(slot_cols)
    df = df.join(combos, on=key_cols, how="left", nulls_equal=True, maintain_order="left").with_columns(
        pl.int_range(pl.len()).alias("__rec"))
    ordered = _canonical_order(df)
    frames = []
    hours = pl.col(_milli("hours"))
    days = pl.col(_milli("days"))
    for k in range(max_outputs):
        if f"__cat{k}" not in df.columns:
            continue
        sub = df.filter(pl.col(f"__cat{k}").is_in(comp.categories))
        qk = pl.col(f"__qk{k}")
        qnum = (pl.when(qk == CONST).then(pl.lit(1, dtype=pl.Int64))
                .when(qk == HOURS).then(hours)
                .when(qk == HOURS_OR_DAYS).then(pl.when(hours.is_not_null()).then(hours)
                                                .otherwise(days * pl.col(f"__dn{k}")))
                .when(qk == DAYS).then(days)
                .when(qk == TOPICS).then(pl.col("topics").cast(pl.Int64) * 1000)
                .otherwise(pl.col(_milli("credits")))).fill_null(0)
        qden = pl.when((qk == HOURS_OR_DAYS) & hours.is_null()).then(pl.col(f"__dd{k}")).otherwise(1)
        theme = pl.when(pl.col(f"__theme_rec{k}")).then(pl.col("theme").cast(pl.Utf8)).otherwise(pl.col(f"__theme{k}"))
        sub = sub.with_columns(
            pl.col(f"__cat{k}").alias("__cat"), theme.alias("__theme"),
            (qnum * pl.col(f"__cn{k}")).alias("__num"), (qden * pl.col(f"__cd{k}")).alias("__den"),
            pl.lit(k).alias("__k"),
        )
        frames.append(sub)
    return _finish_lines(frames, comp, ordered)


def _max_outputs(comp: _Compiled) -> int:
    return max((len(comp.ev._outputs[c.id]) for c in comp.ev.conversions), default=0)


def _slot_exprs(comp: _Compiled) -> list[pl.Expr]:
    """Per combination of categorical facts (after ``_record_exprs``), for each
    output slot k of the chosen conversion: its category, theme, quantity kind
    and coefficient (``__cat{k}``, ``__theme_rec{k}``, ``__theme{k}``,
    ``__qk{k}``, ``__cn{k}``/``__cd{k}``, days→hours ``__dn{k}``/``__dd{k}``)."""
    ev = comp.ev
    slot_cols = []
    for k in range(_max_outputs(comp)):
        chains: dict[str, Any] = {}
        for i, c in enumerate(ev.conversions):
            outs = ev._outputs[c.id]
            if len(outs) <= k:
                continue
            out = outs[k]
            is_i = pl.col("__conv") == i
            qkind, cn, cd, dn, dd = _coefficient(comp, out.credits)
            values = {
                "cat": pl.col("__category_id").cast(pl.Utf8) if out.category == "@record" else pl.lit(out.category),
                "theme_rec": pl.lit(out.theme == "@record"),
                "theme": pl.lit(out.theme if out.theme != "@record" else None, dtype=pl.Utf8),
                "qk": pl.lit(qkind), "cn": cn, "cd": cd, "dn": pl.lit(dn, dtype=pl.Int64), "dd": pl.lit(dd, dtype=pl.Int64),
            }
            for name, value in values.items():
                chains[name] = pl.when(is_i).then(value) if name not in chains else chains[name].when(is_i).then(value)
        for name, chain in chains.items():
            slot_cols.append(chain.otherwise(None).alias(f"__{name}{k}"))
    return slot_cols


def _finish_lines(frames: list[pl.DataFrame], comp: _Compiled, ordered: bool) -> pl.DataFrame:
    ev = comp.ev
    if not frames:
        return pl.DataFrame()
    lines = pl.concat(frames, how="vertical_relaxed")
    preset_of = [g.otherwise == "preset" for g in ev.gates]
    gated_preset = pl.col("__failed").replace_strict(dict(enumerate(preset_of)), default=False, return_dtype=pl.Boolean)
    num = pl.col("__num") * pl.col("__mnum")
    den = pl.col("__den") * pl.col("__mden")
    milli = (2 * num + den) // (2 * den)
    lines = lines.with_columns(
        pl.when(pl.col("__failed") < 0).then(milli)
        .when(gated_preset & pl.col(_milli("credits")).is_not_null()).then(pl.col(_milli("credits")))
        .otherwise(0).alias("__milli"),
        (pl.col("__failed") < 0).alias("__passed"),
    )
    # Caps need the canonical order (year, record id) within each teacher.
    # Input already in that order (the generator's, an export's) is only
    # re-sorted on integers; anything else is sorted on the strings.
    if ordered:
        return lines if len(frames) == 1 else lines.sort(["__rec", "__k"])
    return lines.sort(["__t", "__year", "record_id", "__k"])


def _canonical_order(df: pl.DataFrame) -> bool:
    """Are the rows grouped by teacher and, within one, in (year, record id) order?"""
    if df.height < 2:
        return True
    prev_t = pl.col("__t").shift(1)
    prev_y = pl.col("__year").shift(1)
    prev_r = pl.col("record_id").shift(1)
    step = ((pl.col("__t") > prev_t) | ((pl.col("__t") == prev_t) & (
        (pl.col("__year") > prev_y) | ((pl.col("__year") == prev_y) & (pl.col("record_id") > prev_r))))).fill_null(True)
    return bool(df.select(step.all()).item())


def _record_exprs(comp: _Compiled, targets: list[tuple[str, dict[str, Any]]]) -> list[pl.Expr]:
    """The per-record decisions, one expression each: the first failing gate
    (``__failed``), the first matching conversion (``__conv``), exclusion,
    the product of matching multipliers as a fraction, and each target mask."""
    ev = comp.ev
    gates: Any = None
    for i, g in enumerate(ev.gates):
        ok = comp.match(g.require) if g.require is not None else pl.lit(True)
        if g.max_absence_share is not None:
            s = Fraction(g.max_absence_share)
            over = (pl.col(_milli("hours")).fill_null(0) > 0) & (
                pl.col(_milli("absent_hours")).fill_null(0) * s.denominator > pl.col(_milli("hours")) * s.numerator)
            ok = ok & ~over.fill_null(False)
        fail = comp.match(g.when) & ~ok
        gates = pl.when(fail).then(pl.lit(i)) if gates is None else gates.when(fail).then(pl.lit(i))
    convs: Any = None
    for i, c in enumerate(ev.conversions):
        m = comp.match(c.when)
        convs = pl.when(m).then(pl.lit(i)) if convs is None else convs.when(m).then(pl.lit(i))
    mult_num: pl.Expr = pl.lit(1, dtype=pl.Int64)
    mult_den: pl.Expr = pl.lit(1, dtype=pl.Int64)
    for mu in ev.multipliers:
        f = _frac(mu.factor)
        mask = comp.match(mu.when)
        mult_num = mult_num * pl.when(mask).then(pl.lit(f.numerator, dtype=pl.Int64)).otherwise(1)
        mult_den = mult_den * pl.when(mask).then(pl.lit(f.denominator, dtype=pl.Int64)).otherwise(1)
    return [
        (gates.otherwise(pl.lit(-1)) if gates is not None else pl.lit(-1)).alias("__failed"),
        (convs.otherwise(pl.lit(-1)) if convs is not None else pl.lit(-1)).alias("__conv"),
        (pl.any_horizontal([comp.match(e.when) for e in ev.excludes]) if ev.excludes else pl.lit(False))
        .alias("__excluded"),
        mult_num.alias("__mnum"), mult_den.alias("__mden"),
        *[comp.match(m).alias(name) for name, m in targets],
    ]


def _lines_rowwise(df: pl.DataFrame, comp: _Compiled, targets: list[tuple[str, dict[str, Any]]]) -> pl.DataFrame:
    """Per record, every expression over every row: the general path (numeric
    conditions, bands, absence shares)."""
    ev = comp.ev
    df = df.with_columns(
        *_record_exprs(comp, targets),
        pl.int_range(pl.len()).alias("__rec"),
    )
    ordered = _canonical_order(df)
    frames = []
    max_outputs = max((len(ev._outputs[c.id]) for c in ev.conversions), default=0)
    for k in range(max_outputs):
        sub = df.filter(pl.col("__conv") >= 0)
        cat_chain: Any = None
        theme_chain: Any = None
        num_chain: Any = None
        den_chain: Any = None
        has: list[int] = []
        for i, c in enumerate(ev.conversions):
            outs = ev._outputs[c.id]
            if len(outs) <= k:
                continue
            has.append(i)
            out = outs[k]
            is_i = pl.col("__conv") == i
            cat = pl.col("__category_id") if out.category == "@record" else pl.lit(out.category)
            theme = pl.col("theme") if out.theme == "@record" else pl.lit(out.theme, dtype=pl.Utf8)
            num, den = comp.credits_fraction(out.credits)
            cat_chain = (pl if cat_chain is None else cat_chain).when(is_i).then(cat)
            theme_chain = (pl if theme_chain is None else theme_chain).when(is_i).then(theme)
            num_chain = (pl if num_chain is None else num_chain).when(is_i).then(num)
            den_chain = (pl if den_chain is None else den_chain).when(is_i).then(den)
        if not has:
            continue
        sub = sub.filter(pl.col("__conv").is_in(has)).with_columns(
            cat_chain.otherwise(None).alias("__cat"), theme_chain.otherwise(None).alias("__theme"),
            num_chain.otherwise(0).alias("__num"), den_chain.otherwise(1).alias("__den"),
            pl.lit(k).alias("__k"),
        )
        sub = sub.filter(pl.col("__cat").is_in(comp.categories))
        frames.append(sub)
    return _finish_lines(frames, comp, ordered)


# ---------------------------------------------------------------- stage 2


def _group_sum(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sum of integer ``values`` per key in 0..n-1, exactly (int64 throughout;
    NumPy's bincount would add in binary floating point)."""
    if kernels.ENABLED:
        result: np.ndarray = kernels.group_sum(keys.astype(np.int64, copy=False), values.astype(np.int64, copy=False), n)
        return result
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, keys, values.astype(np.int64, copy=False))
    return out


def _segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group id per row and group start per group, for sorted keys."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if kernels.ENABLED:
        pair: tuple[np.ndarray, np.ndarray] = kernels.segments(keys)
        return pair
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    gid = np.cumsum(np.r_[True, keys[1:] != keys[:-1]]) - 1
    return gid, starts


def _apply_cap(amount: np.ndarray, mask: np.ndarray, gid: np.ndarray, starts: np.ndarray,
               limit: np.ndarray | int | None, highest_only: bool) -> None:
    """In place: the engine's record-by-record cap over each group, in order."""
    if highest_only and len(amount):
        masked = np.where(mask, amount, -1)
        gmax = np.maximum.reduceat(masked, starts) if len(starts) else masked
        is_max = mask & (masked == gmax[gid])
        rows = np.flatnonzero(is_max)
        first = np.full(len(starts), -1, dtype=np.int64)
        if len(rows):
            _, idx = np.unique(gid[rows], return_index=True)
            first[gid[rows[idx]]] = rows[idx]
        keep = np.zeros(len(amount), dtype=bool)
        keep[first[first >= 0]] = True
        amount[mask & ~keep] = 0
    if limit is None:
        return
    if kernels.ENABLED:
        per_group = isinstance(limit, np.ndarray)
        limits = limit.astype(np.int64, copy=False) if isinstance(limit, np.ndarray) else np.array([limit], dtype=np.int64)
        kernels.apply_cap(amount, mask, gid, limits, per_group)
        return
    # only the lines the cap covers: a running sum within each group, clipped
    rows = np.flatnonzero(mask)
    if not len(rows):
        return
    a = amount[rows]
    g = gid[rows]
    s = np.cumsum(a)
    before = s - a
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    base = np.repeat(before[first], np.diff(np.r_[first, len(rows)]))
    local = s - base
    lim = limit[g] if isinstance(limit, np.ndarray) else limit
    amount[rows] = np.clip(local, 0, lim) - np.clip(local - a, 0, lim)


@dataclass
class _Scope:
    counted: np.ndarray  # [groups, categories]
    reqs: list[tuple[Any, np.ndarray, np.ndarray, np.ndarray]]  # (rule, applies[groups], min, actual)


Req = tuple[Any, np.ndarray, np.ndarray]  # (minimum rule, applies per group, required thousandths per group)


@functools.lru_cache(maxsize=1024)  # a policy's few numbers, asked for in every piece
def _milli_of(value: Decimal) -> int:
    f = _frac(value) * 1000
    if f.denominator != 1:
        raise InputError(f"政策数值 {value} 超过千分位精度")
    return int(f)


def _scope(comp: _Compiled, scope: str, lines: dict[str, np.ndarray], amount: np.ndarray, gkey: np.ndarray,
           n_groups: int, reqs: list[Req], transfer_on: dict[str, np.ndarray],
           tmatch: dict[str, np.ndarray]) -> _Scope:
    """Caps, transfers and minimums of one scope (years or the cycle) for all
    groups at once; ``amount`` is updated in place by the caps."""
    ev = comp.ev
    ncat = len(comp.categories)
    cat = lines["cat"]
    excluded = lines["excluded"]
    gid, starts = _segments(gkey)
    # the keys are dense group numbers for the scope: map to 0..n_groups-1
    group_index = gkey[starts] if len(starts) else np.zeros(0, dtype=np.int64)
    caps = [c for c in ev.caps if c.scope == scope]
    caps.sort(key=lambda c: c.share_of_total is not None)
    for cap in caps:
        mask = tmatch[cap.id] & ~excluded
        limit: np.ndarray | int | None = None
        if cap.max is not None:
            mx = _frac(cap.max) * 1000
            limit = int(mx.numerator // mx.denominator)  # a cap is never exceeded: round down
        if cap.share_of_total is not None:
            s = Fraction(cap.share_of_total)
            if kernels.ENABLED:
                others = kernels.others_sum(gid, amount, tmatch[cap.id], excluded, len(starts))
            else:
                others = _group_sum(gid, np.where(~mask & ~excluded, amount, 0), len(starts))
            allowed = (others * s.numerator) // (s.denominator - s.numerator)
            limit = allowed if limit is None else np.minimum(allowed, limit)
        _apply_cap(amount, mask, gid, starts, limit, cap.highest_only)
    if kernels.ENABLED:
        # gkey is the group's number itself (group_index[gid] == gkey)
        counted = kernels.cell_sum(gkey, cat, ncat, amount, excluded, n_groups)
    else:
        keys = group_index[gid] * ncat + cat if len(cat) else np.zeros(0, dtype=np.int64)
        live = ~excluded
        if live.all():
            counted = _group_sum(keys, amount, n_groups * ncat)
        else:
            counted = _group_sum(keys[live], amount[live], n_groups * ncat)
    counted = counted.reshape(n_groups, ncat)
    # the engine's transfers reserve each category's minimum as it applies to the group
    mins: dict[str, np.ndarray] = {}
    for m, applies, req in reqs:
        if isinstance(m.target, Target) and m.target.category and m.measure == "credits":
            mins[m.target.category] = np.where(applies, req, mins.get(m.target.category, 0))
    for tr in ev.transfers:
        if tr.scope not in (scope, "both"):
            continue
        on = transfer_on[tr.id]
        to = comp.cat_index[tr.to]
        for src in tr.from_:
            si = comp.cat_index[src]
            reserve: Any = _milli_of(tr.above) if tr.above is not None else mins.get(src, 0)
            available = np.maximum(0, counted[:, si] - reserve)
            if tr.mode == "overflow":
                move = available
            else:
                need = np.maximum(0, mins.get(tr.to, 0) - counted[:, to])
                move = np.minimum(available, need)
            move = np.where(on, move, 0)
            counted[:, si] -= move
            counted[:, to] += move
    out = []
    for m, applies, req in reqs:
        actual = _measure(comp, m, lines, amount, counted, gid, len(starts), group_index, n_groups, tmatch)
        out.append((m, applies, req, actual))
    return _Scope(counted, out)


def _measure(comp: _Compiled, m: Any, lines: dict[str, np.ndarray], amount: np.ndarray, counted: np.ndarray,
             gid: np.ndarray, n_local: int, group_index: np.ndarray, n_groups: int,
             tmatch: dict[str, np.ndarray]) -> np.ndarray:
    target = m.target
    excluded = lines["excluded"]
    if m.measure == "credits":
        if target == "total":
            total: np.ndarray = counted.sum(axis=1)
            return total
        if target.category is not None:
            one: np.ndarray = counted[:, comp.cat_index[target.category]].copy()
            return one
        if target.categories is not None:
            some: np.ndarray = counted[:, [comp.cat_index[c] for c in target.categories]].sum(axis=1)
            return some
        mask = tmatch[m.id] & ~excluded
        return _sum_by_group(np.where(mask, amount, 0), gid, n_local, group_index, n_groups)
    if target == "total":
        mask = np.ones(len(excluded), dtype=bool)
    elif target.match is not None:
        mask = tmatch[m.id]
    else:
        mask = tmatch[m.id] & ~excluded
    mask = mask & lines["passed"]
    if m.measure == "earned_credits":
        return _sum_by_group(np.where(mask, lines["milli"], 0), gid, n_local, group_index, n_groups)
    # hours / count: distinct records among the target lines
    rec = lines["rec"]
    if kernels.ENABLED:
        values = lines["hours"] if m.measure == "hours" else np.zeros(0, dtype=np.int64)
        local = kernels.first_line_sum(mask, rec, values, 1000, gid, n_local)
        out = np.zeros(n_groups, dtype=np.int64)
        out[group_index] = local
        return out
    first = np.zeros(len(rec), dtype=bool)
    if len(rec):
        rows = np.flatnonzero(mask)
        if len(rows):
            # a record's lines are adjacent (canonical order, outputs in turn),
            # so its first covered line is where ``rec`` changes
            r = rec[rows]
            first[rows[np.r_[True, r[1:] != r[:-1]]]] = True
    if m.measure == "hours":
        return _sum_by_group(np.where(first, lines["hours"], 0), gid, n_local, group_index, n_groups)
    return _sum_by_group(first.astype(np.int64) * 1000, gid, n_local, group_index, n_groups)


def _sum_by_group(values: np.ndarray, gid: np.ndarray, n_local: int, group_index: np.ndarray,
                  n_groups: int) -> np.ndarray:
    local = _group_sum(gid, values, n_local)
    out = np.zeros(n_groups, dtype=np.int64)
    out[group_index] = local
    return out


def _milli_target_masks(comp: _Compiled) -> list[tuple[str, dict[str, Any]]]:
    """Record-level masks the scope stage needs (match targets)."""
    out = []
    rules: list[Cap | Minimum] = [*comp.ev.caps, *comp.ev.minimums]
    for rule in rules:
        t = rule.target
        if isinstance(t, Target) and t.match is not None:
            out.append((f"__m:{rule.id}", t.match))
    return out


# ---------------------------------------------------------------- driver


def _teacher_mask_exprs(comp: _Compiled) -> list[pl.Expr]:
    # built once per policy: building them took a third of the masks' time
    if comp.teacher_mask_exprs is None:
        ev = comp.ev
        exprs = []
        for m in ev.minimums:
            exprs.append(comp.teacher_match(m.applies_to).alias(f"min:{m.id}"))
        for w in ev.waives:
            exprs.append(comp.teacher_match(w.applies_to).alias(f"waive:{w.id}"))
        for tr in ev.transfers:
            exprs.append(comp.teacher_match(tr.applies_to).alias(f"tr:{tr.id}"))
        for pc in ev.partials:
            exprs.append(comp.teacher_match(pc.applies_to).alias(f"pc:{pc.id}"))
        comp.teacher_mask_exprs = exprs
    return comp.teacher_mask_exprs


def _teacher_masks(comp: _Compiled, teachers: pl.DataFrame) -> dict[str, np.ndarray]:
    exprs = _teacher_mask_exprs(comp)
    if not exprs:
        return {}
    # with_columns broadcasts a literal (an empty applies_to) to every teacher
    frame = teachers.with_columns(exprs)
    return {c: frame.get_column(c).to_numpy().astype(bool) for c in frame.columns[teachers.width:]}


@functools.lru_cache(maxsize=4096)
def parse_leaves(text: str) -> tuple[Leave, ...]:
    """The leave column's text as leaves.  Cached: a province has a few
    hundred distinct texts for tens of thousands of teachers with leave."""
    leaves: list[Leave] = []
    for part in text.replace("；", ";").split(";"):
        part = part.strip()
        if part:
            # "2022:产假" or "2022:病假:否" (not approved by the school, 山东 第二十一条)
            year, _, rest = part.partition(":")
            kind, _, approved = rest.partition(":")
            leaves.append(Leave(int(year.strip().removesuffix("年")), kind.strip(),
                                approved=approved.strip() not in ("否", "false", "False", "0")))
    return tuple(leaves)


def _engine_teacher(row: dict[str, Any]) -> Teacher:
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


def _run_routed(comp: _Compiled, df: pl.DataFrame) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    teachers_out = []
    years_out = []
    for _, group in df.group_by("teacher_id", maintain_order=True):
        rows = group.to_dicts()
        teacher = _engine_teacher(rows[0])
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


def _attribute(df: pl.DataFrame, comp: _Compiled, teachers: pl.DataFrame) -> pl.DataFrame:
    """``__year``: the year a record counts in.  The engine's attribute_year
    rules, first applicable rule wins (北京 第十八条 completion year; 山东
    第二十一条 make-up, only into a year of approved leave).  Conditions keep
    seeing the registration year in ``year``."""
    ev = comp.ev
    chain: Any = None
    for a in ev.attributions:
        applies = comp.match(a.when) & pl.col(a.field).is_not_null()
        if a.require_leave:
            approved = set()
            leaves = teachers.select("teacher_id", pl.col("leaves").cast(pl.Utf8)).filter(pl.col("leaves").is_not_null())
            for tid, text in leaves.iter_rows():
                for lv in _engine_teacher({"teacher_id": tid, "leaves": text}).leaves:
                    if lv.approved and lv.kind in a.require_leave:
                        approved.add(f"{tid}|{lv.year}")
            key = pl.concat_str([pl.col("teacher_id").cast(pl.Utf8), pl.col(a.field).cast(pl.Utf8)], separator="|")
            applies = applies & key.is_in(sorted(approved)).fill_null(False)
        then = pl.col(a.field).cast(pl.Int64)
        chain = pl.when(applies).then(then) if chain is None else chain.when(applies).then(then)
    year = pl.col("year").cast(pl.Int64)
    return df.with_columns((chain.otherwise(year) if chain is not None else year).alias("__year"))


def _leave_table(teachers: pl.DataFrame) -> dict[int, list[tuple[int, str]]]:
    """teacher index -> [(year, kind)] for the few teachers with leave."""
    out: dict[int, list[tuple[int, str]]] = {}
    leaves = teachers.get_column("leaves").cast(pl.Utf8)
    rows = np.flatnonzero(leaves.is_not_null().to_numpy())
    for i, text in zip(rows.tolist(), leaves.gather(rows).to_list(), strict=True):
        if text:
            out[i] = [(lv.year, lv.kind) for lv in parse_leaves(text)]
    return out


def _evaluate_chunk(comp: _Compiled, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    df = _prepare(df, comp)
    routed_rows = _route_mask(df, comp)
    routed_df = df.filter(routed_rows)
    df = df.filter(~routed_rows)
    teacher_cols = ["teacher_id", *TEACHER_COLUMNS, "leaves", *[c for c in UNIT_COLUMNS if c in df.columns]]
    teachers = df.select(teacher_cols).unique(subset="teacher_id", keep="first", maintain_order=True)
    n_t = teachers.height
    df = df.join(teachers.select("teacher_id").with_row_index("__t"), on="teacher_id", how="left")
    df = _attribute(df, comp, teachers)
    lines_df = _lines(df, comp, _milli_target_masks(comp)) if n_t else pl.DataFrame()
    if lines_df.height:
        lines = {
            "t": lines_df.get_column("__t").to_numpy().astype(np.int64),
            "y": (lines_df.get_column("__year").to_numpy().astype(np.int64) - comp.cycle_start),
            "cat": lines_df.get_column("__cat").cast(pl.Utf8).replace_strict(comp.cat_index, return_dtype=pl.Int64)
            .to_numpy(),
            "milli": lines_df.get_column("__milli").to_numpy().astype(np.int64),
            "excluded": lines_df.get_column("__excluded").to_numpy().astype(bool),
            "passed": lines_df.get_column("__passed").to_numpy().astype(bool),
            "hours": lines_df.get_column(_milli("hours")).fill_null(0).to_numpy().astype(np.int64),
            "rec": lines_df.get_column("__rec").to_numpy().astype(np.int64),
        }
        mcols = {name: lines_df.get_column(name).to_numpy().astype(bool) for name, _ in _milli_target_masks(comp)}
    else:
        lines = _no_lines()
        mcols = {name: np.zeros(0, dtype=bool) for name, _ in _milli_target_masks(comp)}

    def theme() -> pl.Series:
        return lines_df.get_column("__theme").cast(pl.Utf8) if lines_df.height else pl.Series([], dtype=pl.Utf8)

    out, years_df = _stage2(comp, teachers, lines, mcols, theme)
    if routed_df.height:
        t_rows, y_rows = _run_routed(comp, routed_df)
        units = routed_df.select("teacher_id", *[c for c in UNIT_COLUMNS if c in routed_df.columns]).unique(
            subset="teacher_id", keep="first", maintain_order=True)
        routed_out = pl.DataFrame(t_rows).join(units, on="teacher_id", how="left")
        out = pl.concat([out, routed_out.select(out.columns)], how="vertical_relaxed")
        years_df = pl.concat([years_df, pl.DataFrame(y_rows, schema=years_df.schema)], how="vertical_relaxed")
    return out, years_df


def _pick(arrays: dict[str, np.ndarray], rows: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The given rows of every array; no copy when that is every row."""
    if len(rows) == n:
        return arrays
    return {k: v[rows] for k, v in arrays.items()}

def _no_lines() -> dict[str, np.ndarray]:
    lines = {k: np.zeros(0, dtype=np.int64) for k in ("t", "y", "cat", "milli", "hours", "rec")}
    lines["excluded"] = np.zeros(0, dtype=bool)
    lines["passed"] = np.zeros(0, dtype=bool)
    return lines


def _stage2(comp: _Compiled, teachers: pl.DataFrame, lines: dict[str, np.ndarray], mcols: dict[str, np.ndarray],
            theme: Callable[[], pl.Series], with_years: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per scope, from credited lines (NumPy arrays in canonical order, ``t``
    the teacher's row in ``teachers``, ``y`` the year's offset in the cycle):
    partial cycles, leave years, caps, transfers, minimums, verdicts."""
    ev = comp.ev
    n_t = teachers.height
    years = np.arange(comp.cycle_start, comp.last_year + 1, dtype=np.int64)
    n_y = len(years)
    ncs = comp.policy.cycle.years
    tmasks = _teacher_masks(comp, teachers)

    # --- per teacher: when her cycle starts (partial_cycle), leave years
    hired = teachers.get_column("hired_year").cast(pl.Int64).fill_null(-1).to_numpy()
    transfer = teachers.get_column("transfer_in_year").cast(pl.Int64).fill_null(-1).to_numpy()
    p_idx = np.full(n_t, -1, dtype=np.int64)
    begin = np.zeros(n_t, dtype=np.int64)
    decided = np.zeros(n_t, dtype=bool)
    for i, pc in enumerate(ev.partials):
        pm = tmasks[f"pc:{pc.id}"] & ~decided
        base = transfer if pc.start == "transfer_in_year" else hired
        b = base + 1 if pc.start == "hired_year_next" else base
        hit = pm & (base >= 0) & (b > comp.cycle_start)
        p_idx[hit] = i
        begin[hit] = b[hit]
        decided |= hit
        if pc.exclusive:
            decided |= pm
    partial = p_idx >= 0
    n_owed = np.where(partial, np.maximum(0, comp.cycle_end - begin + 1), 0)
    start = np.where(partial, begin, np.maximum(comp.cycle_start, np.maximum(hired, transfer)))
    excl_pre = partial & np.isin(p_idx, [i for i, pc in enumerate(ev.partials) if pc.pre_start_records == "exclude"])
    leaves = _leave_table(teachers)
    leave_idx = np.full((n_t, n_y), -1, dtype=np.int64)
    leave_years: dict[int, np.ndarray] = {}
    for li, lr in enumerate(ev.leaves):
        counts = np.zeros(n_t, dtype=np.int64)
        for t, items in leaves.items():
            counts[t] = len({y for y, k in items if k in lr.kinds and comp.cycle_start <= y <= comp.cycle_end})
            for y, k in items:
                if k in lr.kinds and comp.cycle_start <= y <= comp.last_year and leave_idx[t, y - comp.cycle_start] < 0:
                    leave_idx[t, y - comp.cycle_start] = li
        leave_years[li] = counts
    required = years[None, :] >= start[:, None]
    has_hire_minimums = any(m.scope == "hire_year" for m in ev.minimums)
    hire_only = ~required & (years[None, :] == hired[:, None]) & has_hire_minimums
    in_leave = (leave_idx >= 0) & required & ~hire_only

    synthetic = _leave_minimums(comp)
    tmatch = _line_targets(comp, lines, mcols, theme, synthetic)
    if excl_pre.any():
        in_cycle = ~(excl_pre[lines["t"]] & (lines["y"] + comp.cycle_start < start[lines["t"]]))
        year_pick = np.flatnonzero(in_cycle | hire_only[lines["t"], lines["y"]])
        cycle_pick = np.flatnonzero(in_cycle)
    else:  # every line is in the cycle: no per-line gathers
        year_pick = cycle_pick = np.arange(len(lines["t"]))

    # --- years
    t_of_year = np.repeat(np.arange(n_t), n_y)
    y_of_year = np.tile(np.arange(n_y), n_t)
    req_flat = required.reshape(-1)
    hire_flat = hire_only.reshape(-1)
    leave_flat = in_leave.reshape(-1)
    leave_idx_flat = leave_idx.reshape(-1)
    waived = _waived(comp, tmasks, n_t)
    year_reqs: list[Req] = []
    for m in ev.minimums:
        base = tmasks[f"min:{m.id}"][t_of_year] & ~waived.get(m.id, np.zeros(n_t, dtype=bool))[t_of_year]
        if m.scope == "year":
            applies = base & req_flat & ~leave_flat & ~hire_flat
        elif m.scope == "hire_year":
            applies = base & (years[y_of_year] == hired[t_of_year]) & (req_flat | hire_flat) & ~leave_flat
        else:
            continue
        year_reqs.append((m, applies, np.where(applies, _milli_of(m.min), 0)))
    for li, syns in synthetic.items():
        for syn in syns:
            applies = leave_flat & (leave_idx_flat == li)
            year_reqs.append((syn, applies, np.where(applies, _milli_of(syn.min), 0)))
    n_lines = len(lines["t"])
    year_lines = _pick(lines, year_pick, n_lines)
    year_amount = year_lines["milli"].copy()
    year_scope = _scope(comp, "year", year_lines, year_amount, year_lines["t"] * n_y + year_lines["y"], n_t * n_y,
                        year_reqs, {tr.id: tmasks[f"tr:{tr.id}"][t_of_year] for tr in ev.transfers},
                        _pick(tmatch, year_pick, n_lines))
    if len(year_pick) == n_lines:
        amount = year_amount  # year caps carry into the cycle
    else:
        amount = lines["milli"].copy()
        amount[year_pick] = year_amount

    # --- cycle
    cycle_reqs: list[Req] = []
    for m in ev.minimums:
        if m.scope != "cycle":
            continue
        applies = tmasks[f"min:{m.id}"] & ~waived.get(m.id, np.zeros(n_t, dtype=bool))
        value = np.full(n_t, _milli_of(m.min), dtype=np.int64)
        if m.measure == "credits":
            for i, pc in enumerate(ev.partials):
                sel = p_idx == i
                if not sel.any():
                    continue
                n = n_owed[sel]
                if pc.structure == "total_only":
                    if m.target == "total":
                        assert pc.per_year is not None
                        value[sel] = _milli_of(pc.per_year) * n
                    else:
                        applies = applies & ~sel
                elif m.target == "total" and pc.per_year is not None:
                    value[sel] = _milli_of(pc.per_year) * n
                else:
                    base_m = _milli_of(m.min)
                    value[sel] = (2 * base_m * n + ncs) // (2 * ncs)
            key = "total" if m.target == "total" else (m.target.category if isinstance(m.target, Target) else None)
            if key is not None:
                for li, lr in enumerate(ev.leaves):
                    cut = lr.cycle_reduction.get(key)
                    if cut:
                        n_leave = leave_years[li]
                        value = np.where(n_leave > 0, np.maximum(0, value - _milli_of(cut) * n_leave), value)
        cycle_reqs.append((m, applies, np.where(applies, value, 0)))
    cycle_lines = _pick(lines, cycle_pick, n_lines)
    cycle_scope = _scope(comp, "cycle", cycle_lines, amount[cycle_pick] if len(cycle_pick) < n_lines else amount,
                         cycle_lines["t"], n_t, cycle_reqs, {tr.id: tmasks[f"tr:{tr.id}"] for tr in ev.transfers},
                         _pick(tmatch, cycle_pick, n_lines))

    # --- verdicts
    every = comp.policy.cycle.requires_every_year
    passed = np.ones(n_t, dtype=bool)
    for _m, applies, req, actual in cycle_scope.reqs:
        passed &= ~applies | (actual >= req)
    year_ok = np.ones(n_t * n_y, dtype=bool)
    year_has = np.zeros(n_t * n_y, dtype=bool)
    binding_ok = np.ones(n_t * n_y, dtype=bool)
    binds_any = every or any(m.binds_cycle for m in ev.minimums if m.scope != "cycle")
    for m, applies, req, actual in year_scope.reqs:
        met = ~applies | (actual >= req)
        year_ok &= met
        year_has |= applies
        if m.binds_cycle if m.binds_cycle is not None else every:
            binding_ok &= met
    passed &= binding_ok.reshape(n_t, n_y).all(axis=1)
    if binds_any and comp.as_of.year < comp.cycle_end:
        passed[:] = False
    in_progress = comp.as_of < dt.date(comp.cycle_end, 12, 31)
    # the status from the verdict in Polars: a NumPy array of strings was
    # slower to hand over than the rest of the row
    status = pl.when(pl.col("passed")).then(pl.lit("达标")).otherwise(pl.lit("进行中" if in_progress else "未达标"))
    out = teachers.select("teacher_id", *[c for c in UNIT_COLUMNS if c in teachers.columns]).with_columns(
        pl.Series("passed", passed)).with_columns(status.alias("status"),
        pl.Series("total_milli", cycle_scope.counted.sum(axis=1)), pl.lit(False).alias("routed"),
        *[pl.Series(f"cat:{c}", cycle_scope.counted[:, i]) for i, c in enumerate(comp.categories)],
    )
    if with_years and n_t:
        years_df = pl.DataFrame({
            "teacher_id": teachers.get_column("teacher_id").cast(pl.Utf8).gather(np.repeat(np.arange(n_t), n_y)),
            "year": np.tile(years, n_t),
            "__ok": year_ok, "__has": year_has,
            "total_milli": year_scope.counted.sum(axis=1),
        }).select("teacher_id", "year", pl.when(pl.col("__has")).then(pl.col("__ok")).otherwise(None).alias("passed"),
                  "total_milli")
    else:
        years_df = _NO_YEARS.clear()
    return out, years_df


_NO_YEARS = pl.DataFrame(schema={"teacher_id": pl.Utf8, "year": pl.Int64, "passed": pl.Boolean,
                                 "total_milli": pl.Int64})


def _leave_minimums(comp: _Compiled) -> dict[int, list[Minimum]]:
    """The engine's synthetic minimums of each leave_year rule (made once per
    policy: validating the rule objects showed in every piece)."""
    if comp.leave_minimums is None:
        out: dict[int, list[Minimum]] = {}
        for li, lr in enumerate(comp.ev.leaves):
            out[li] = [Minimum(kind="minimum", id=f"{lr.id}#{k + 1}", label=lr.label, cite=lr.cite, scope="year",
                               target=lm.target, min=lm.min) for k, lm in enumerate(lr.year_minimums)]
        comp.leave_minimums = out
    return comp.leave_minimums


def _waived(comp: _Compiled, tmasks: dict[str, np.ndarray], n_t: int) -> dict[str, np.ndarray]:
    waived: dict[str, np.ndarray] = {}
    for w in comp.ev.waives:
        for rid in w.rules:
            waived[rid] = waived.get(rid, np.zeros(n_t, dtype=bool)) | tmasks[f"waive:{w.id}"]
    return waived


def _line_targets(comp: _Compiled, lines: dict[str, np.ndarray], mcols: dict[str, np.ndarray],
                  theme: Callable[[], pl.Series],
                  synthetic: dict[int, list[Minimum]]) -> dict[str, np.ndarray]:
    """Per rule with a target: which lines it covers (before the excluded filter)."""
    tmatch: dict[str, np.ndarray] = {}
    rules: list[Cap | Minimum] = [*comp.ev.caps, *comp.ev.minimums, *(m for ms in synthetic.values() for m in ms)]
    for rule in rules:
        t = rule.target
        if not isinstance(t, Target):
            continue
        if t.match is not None:
            tmatch[rule.id] = mcols[f"__m:{rule.id}"]
        elif t.theme is not None:
            tmatch[rule.id] = (theme() == t.theme).fill_null(False).to_numpy().astype(bool)
        elif t.category is not None:
            tmatch[rule.id] = lines["cat"] == comp.cat_index[t.category]
        elif t.categories is not None:
            tmatch[rule.id] = np.isin(lines["cat"], [comp.cat_index[c] for c in t.categories])
    return tmatch


def _unit_rates(teachers: pl.DataFrame) -> pl.DataFrame:
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

    comp = _Compiled(policy, options, as_of)
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
        t, y = done if done is not None else _evaluate_chunk(comp, chunk)
        teacher_frames.append(t)
        year_frames.append(y)
    teachers = pl.concat(teacher_frames, how="vertical_relaxed") if teacher_frames else pl.DataFrame()
    years = pl.concat(year_frames, how="vertical_relaxed") if year_frames else pl.DataFrame()
    routed = int(teachers.get_column("routed").sum()) if teachers.height else 0
    return BatchResult(teachers, years, _unit_rates(teachers) if teachers.height else pl.DataFrame(), routed,
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
