"""The batch evaluator's compiled policy: a policy version with its options
and evaluation date, its conditions as Polars expressions and its credit
methods as exact integer fractions (credits × 1000).  Shared by the general
path (:mod:`.stage1`, :mod:`.stage2`), the columnar fast path
(:mod:`.columnar`) and the SQL translation (:mod:`.sql`)."""

from __future__ import annotations

import datetime as dt
import functools
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import polars as pl

from xuefen.engine.evaluate import Evaluator
from xuefen.engine.rules import BY_KIND
from xuefen.errors import InputError
from xuefen.model import RECORD_FIELDS, TEACHER_FIELDS
from xuefen.policy.schema import ANY_OF, ByTable, Credits, Minimum, Ops, Policy

TEACHER_COLUMNS = [k for k in TEACHER_FIELDS if k != "id"]
DECIMAL_FIELDS = [k for k, (_, kind) in RECORD_FIELDS.items() if kind == "decimal"]
UNIT_COLUMNS = ("school", "district", "city")
ENUM_RECORD = [k for k, (_, kind) in RECORD_FIELDS.items() if kind == "enum"]
ENUM_TEACHER = [k for k, (_, kind) in TEACHER_FIELDS.items() if kind == "enum"]
INT_FIELDS = {"year", "topics", "words", "completed_year", "makeup_for_year", "hired_year", "transfer_in_year"}


def frac(value: Decimal | int) -> Fraction:
    return Fraction(value)


def milli_col(column: str) -> str:
    return f"__{column}_m"


class CompiledPolicy:
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
        self.leave_minimums: dict[int, list[Minimum]] | None = None  # see leave_minimums
        # the compiled scope program (batch/fused.py), built on first use;
        # fused_built tells "not built yet" from "this policy has none"
        self.fused_program: Any = None
        self.fused_built = False
        # the conditions of the rule kinds without a batch form (the registry
        # says which): a teacher with a record matching one goes to the engine
        self.route_matches: list[dict[str, Any]] = [
            when for r in self.ev.rules
            if BY_KIND[r.kind].routed_in_batch and isinstance(when := getattr(r, "when", None), dict)]
        # a record in the policy's own words (a sub-type written as the
        # category, a theme alias) is read by the engine (engine/words.py)
        subtypes = [name for cat in policy.categories for name in cat.subtypes]
        theme_aliases = [name for cat in policy.categories for name in cat.theme_aliases]
        if subtypes:
            self.route_matches.append({"category": subtypes})
        if theme_aliases:
            self.route_matches.append({"theme": theme_aliases})
        # a record that names only a category stating facts (永吉 校本研修 = the 校本 form)
        for cat in policy.categories:
            for field_name in cat.facts:
                self.route_matches.append({"category": [cat.id, *cat.aliases], field_name: Ops(present=False)})
        self.cap_pairs = self.ev.crossable
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
            return pl.col(name), kind_of(name)
        if name == "category":
            return pl.col("__category_id"), "str"
        if name in DECIMAL_FIELDS:
            return pl.col(milli_col(name)), "milli"
        return pl.col(name), kind_of(name)

    def teacher_match(self, match: dict[str, Any]) -> pl.Expr:
        return self.match({(k if k.startswith("teacher.") else f"teacher.{k}"): v for k, v in match.items()})

    def match(self, match: dict[str, Any] | None) -> pl.Expr:
        if not match:
            return pl.lit(True)
        parts = []
        for key, expected in match.items():
            if key == ANY_OF:
                parts.append(pl.any_horizontal([self.match(m) for m in expected]))
                continue
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
            f = frac(value) * (1 if by.per_hour else 1000)
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
        hours_num: pl.Expr = pl.col(milli_col("hours"))
        hours_den: pl.Expr = one
        if c.day_hours is not None:
            dh = frac(c.day_hours)
            from_days = pl.col("hours").is_null() & pl.col("days").is_not_null()
            hours_num = pl.when(from_days).then(pl.col(milli_col("days")) * dh.numerator).otherwise(pl.col(milli_col("hours")))
            hours_den = pl.when(from_days).then(pl.lit(dh.denominator, dtype=pl.Int64)).otherwise(one)

        def rate(quantity: pl.Expr, den: pl.Expr, r: Fraction) -> tuple[pl.Expr, pl.Expr]:
            return (quantity * r.numerator).fill_null(0), den * r.denominator

        if c.hours_per_credit is not None:
            return rate(hours_num, hours_den, 1 / frac(c.hours_per_credit))
        if c.credits_per_hour is not None:
            return rate(hours_num, hours_den, frac(c.credits_per_hour))
        if c.fixed is not None:
            f = frac(c.fixed) * 1000
            return pl.lit(f.numerator, dtype=pl.Int64), pl.lit(f.denominator, dtype=pl.Int64)
        if c.by is not None:
            num, den = self.table(c.by)
            if c.by.per_hour:
                return (hours_num * num).fill_null(0), hours_den * den
            return num, den
        if c.per_day is not None:
            return rate(pl.col(milli_col("days")), one, frac(c.per_day))
        if c.per_topic is not None:
            return rate(pl.col("topics").cast(pl.Int64) * 1000, one, frac(c.per_topic))
        if c.preset:
            return pl.col(milli_col("credits")).fill_null(0), one
        assert c.bands is not None
        field_name = c.bands.field
        scale = 1000 if field_name in ("days", "hours") else 1
        col = pl.col(milli_col(field_name)) if scale == 1000 else pl.col(field_name).cast(pl.Int64)
        band_values = [frac(band.credits) * 1000 for band in c.bands.bands]
        common = math.lcm(*(v.denominator for v in band_values))
        chain: Any = None
        for band, bv in zip(c.bands.bands, band_values, strict=True):
            lo = frac(band.min) * scale
            cond = col * lo.denominator >= lo.numerator
            if band.max is not None:
                hi = frac(band.max) * scale
                cond = cond & (col * hi.denominator < hi.numerator)
            numerator = pl.lit(int(bv * common), dtype=pl.Int64)
            chain = pl.when(cond).then(numerator) if chain is None else chain.when(cond).then(numerator)
        return chain.otherwise(zero).fill_null(0), pl.lit(common, dtype=pl.Int64)


def kind_of(name: str) -> str:
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
        f = frac(value) * 1000
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
            b = frac(bound) * (1000 if kind == "milli" else 1)
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


CONST, HOURS, HOURS_OR_DAYS, DAYS, TOPICS, CREDITS = range(6)
NUMERIC_FACTS = {"hours", "days", "credits", "absent_hours", "topics", "words"}


def fact_column(key: str) -> str | None:
    """The frame column a condition's key reads (``category`` is read as its
    canonical id); None for a numeric fact."""
    name = key.removeprefix("teacher.")
    if name in NUMERIC_FACTS:
        return None
    if name in ("hired_in_cycle", "transferred_in_cycle"):
        return "hired_year" if name == "hired_in_cycle" else "transfer_in_year"
    return "__category_id" if name == "category" else name


@functools.lru_cache(maxsize=1024)  # a policy's few numbers, asked for in every piece
def milli_of(value: Decimal) -> int:
    f = frac(value) * 1000
    if f.denominator != 1:
        raise InputError(f"政策数值 {value} 超过千分位精度")
    return int(f)
