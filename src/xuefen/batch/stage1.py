"""Stage 1 of the batch evaluator: the input frame (canonical terms, exact
thousandths) and the per-record stage as Polars expressions — ``gate`` (first
failing gate wins), ``conversion`` (first match wins, ``outputs`` exploded
into lines), ``multiplier`` (product of matching factors), ``exclude``,
``attribute_year`` (first applicable rule; make-up only into a year of
approved leave).  Credits are exact fractions of integers, rounded half up to
thousandths once, as the engine does."""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any

import polars as pl

from xuefen import vocab
from xuefen.errors import InputError, Problem
from xuefen.model import RECORD_FIELDS, Leave
from xuefen.policy.schema import Credits, match_items

from .compile import (
    CONST,
    CREDITS,
    DAYS,
    DECIMAL_FIELDS,
    ENUM_RECORD,
    ENUM_TEACHER,
    HOURS,
    HOURS_OR_DAYS,
    NUMERIC_FACTS,
    TEACHER_COLUMNS,
    TOPICS,
    CompiledPolicy,
    fact_column,
    frac,
    kind_of,
    milli_col,
)


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


def prepare(df: pl.DataFrame, comp: CompiledPolicy) -> pl.DataFrame:
    for col in ["teacher_id", *TEACHER_COLUMNS, "leaves", *RECORD_FIELDS]:
        if col not in df.columns:
            missing: Any = pl.Int64 if kind_of(col) == "int" else pl.Boolean if kind_of(col) == "bool" else pl.Utf8
            df = df.with_columns(pl.lit(None, dtype=missing).alias(col))
    df = df.rename({"id": "record_id"}) if "record_id" not in df.columns else df
    exprs = []
    for col in DECIMAL_FIELDS:
        dtype = df.schema[col]
        if isinstance(dtype, pl.Decimal):
            exprs.append((pl.col(col) * 1000).cast(pl.Int64).alias(milli_col(col)))
        elif dtype in (pl.Int64, pl.Int32, pl.Int16, pl.Int8, pl.UInt32, pl.UInt16, pl.UInt8):
            exprs.append((pl.col(col).cast(pl.Int64) * 1000).alias(milli_col(col)))
        elif dtype == pl.Utf8 or dtype == pl.Null:
            exprs.append((pl.col(col).cast(pl.Decimal(18, 3)) * 1000).cast(pl.Int64).alias(milli_col(col)))
        else:
            raise InputError(Problem(f"列 {col} 为浮点数，不能精确表示学时/学分；请用十进制或文本", column=col))
    exprs.append(pl.col("category").replace_strict(comp.alias, default=pl.col("category"), return_dtype=pl.Utf8)
                 .alias("__category_id"))
    return df.with_columns(exprs)


def exact_milli(df: pl.DataFrame) -> pl.Expr:
    """True where every decimal figure has at most three decimals (else the
    teacher is routed: the engine keeps such figures exact)."""
    checks = []
    for col in DECIMAL_FIELDS:
        dtype = df.schema[col]
        if isinstance(dtype, pl.Decimal) and (dtype.scale or 0) > 3:
            checks.append(((pl.col(col) * 1000).cast(pl.Int64).cast(dtype) == pl.col(col) * 1000).fill_null(True))
    return pl.all_horizontal(checks) if checks else pl.lit(True)


def record_matches(comp: CompiledPolicy, targets: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any] | None]:
    """Every condition the per-record stage evaluates: match targets, gates,
    conversions, exclusions, multipliers."""
    ev = comp.ev
    matches: list[dict[str, Any] | None] = [m for _, m in targets]
    for g in ev.gates:
        matches += [g.when, g.require]
    with_when: list[Any] = [*ev.conversions, *ev.excludes, *ev.multipliers]
    matches += [r.when for r in with_when]
    return matches

def _referenced(comp: CompiledPolicy, targets: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], bool]:
    """The columns stage 1 looks at, and whether any condition is numeric
    (then the row-wise path is used)."""
    ev = comp.ev
    cols: set[str] = set()
    numeric = any(g.max_absence_share for g in ev.gates)
    for m in record_matches(comp, targets):
        for key, _ in match_items(m):
            col = fact_column(key)
            if col is None:
                numeric = True
            else:
                cols.add(col)
    for c in ev.conversions:
        for out in ev.outputs[c.id]:
            if out.category == "@record":
                cols.add("__category_id")
            if out.theme == "@record":
                cols.add("theme")
            cr = out.credits
            if cr.bands is not None:
                numeric = True
            if cr.by is not None:
                if cr.by.field in NUMERIC_FACTS:
                    numeric = True
                cols.add(cr.by.field)
    return sorted(cols), numeric


def coefficient(comp: CompiledPolicy, c: Credits) -> tuple[int, pl.Expr, pl.Expr, int, int]:
    """(quantity kind, coefficient numerator, denominator, days→hours num, den)
    such that credits × 1000 = quantity × coefficient; the coefficient depends
    only on the record's categorical facts."""
    def lit(v: int) -> pl.Expr:
        return pl.lit(v, dtype=pl.Int64)

    dh = frac(c.day_hours) if c.day_hours is not None else Fraction(0)
    hours_kind = HOURS_OR_DAYS if c.day_hours is not None else HOURS
    if c.hours_per_credit is not None:
        r = 1 / frac(c.hours_per_credit)
        return hours_kind, lit(r.numerator), lit(r.denominator), dh.numerator, dh.denominator
    if c.credits_per_hour is not None:
        r = frac(c.credits_per_hour)
        return hours_kind, lit(r.numerator), lit(r.denominator), dh.numerator, dh.denominator
    if c.fixed is not None:
        f = frac(c.fixed) * 1000
        return CONST, lit(f.numerator), lit(f.denominator), 0, 1
    if c.by is not None:
        num, den = comp.table(c.by)
        return (hours_kind if c.by.per_hour else CONST), num, den, dh.numerator, dh.denominator
    if c.per_day is not None:
        r = frac(c.per_day)
        return DAYS, lit(r.numerator), lit(r.denominator), 0, 1
    if c.per_topic is not None:
        r = frac(c.per_topic)
        return TOPICS, lit(r.numerator), lit(r.denominator), 0, 1
    assert c.preset
    return CREDITS, lit(1), lit(1), 0, 1


def credited_lines(df: pl.DataFrame, comp: CompiledPolicy, targets: list[tuple[str, dict[str, Any]]]) -> pl.DataFrame:
    """Per record: gates, conversion, multipliers, exclusion -> credited lines.

    Every rule's condition looks only at a record's categorical facts, so it
    is evaluated once per distinct combination of them (a few thousand in a
    province) and joined back; only the arithmetic runs per row."""
    df = df.filter(pl.col("__year").is_between(comp.cycle_start, comp.last_year))
    key_cols, numeric = _referenced(comp, targets)
    if numeric or not key_cols:
        return _lines_rowwise(df, comp, targets)
    combos = df.select(key_cols).unique()
    exprs = record_exprs(comp, targets)
    combos = combos.with_columns(exprs)
    n_outputs = max_outputs(comp)
    slot_cols = slot_exprs(comp)
    combos = combos.with_columns(slot_cols)
    df = df.join(combos, on=key_cols, how="left", nulls_equal=True, maintain_order="left").with_columns(
        pl.int_range(pl.len()).alias("__rec"))
    ordered = _canonical_order(df)
    frames = []
    hours = pl.col(milli_col("hours"))
    days = pl.col(milli_col("days"))
    for k in range(n_outputs):
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
                .otherwise(pl.col(milli_col("credits")))).fill_null(0)
        qden = pl.when((qk == HOURS_OR_DAYS) & hours.is_null()).then(pl.col(f"__dd{k}")).otherwise(1)
        theme = pl.when(pl.col(f"__theme_rec{k}")).then(pl.col("theme").cast(pl.Utf8)).otherwise(pl.col(f"__theme{k}"))
        sub = sub.with_columns(
            pl.col(f"__cat{k}").alias("__cat"), theme.alias("__theme"),
            (qnum * pl.col(f"__cn{k}")).alias("__num"), (qden * pl.col(f"__cd{k}")).alias("__den"),
            pl.lit(k).alias("__k"),
        )
        frames.append(sub)
    return _finish_lines(frames, comp, ordered)


def max_outputs(comp: CompiledPolicy) -> int:
    return max((len(comp.ev.outputs[c.id]) for c in comp.ev.conversions), default=0)


def slot_exprs(comp: CompiledPolicy) -> list[pl.Expr]:
    """Per combination of categorical facts (after ``record_exprs``), for each
    output slot k of the chosen conversion: its category, theme, quantity kind
    and coefficient (``__cat{k}``, ``__theme_rec{k}``, ``__theme{k}``,
    ``__qk{k}``, ``__cn{k}``/``__cd{k}``, days→hours ``__dn{k}``/``__dd{k}``)."""
    ev = comp.ev
    slot_cols = []
    for k in range(max_outputs(comp)):
        chains: dict[str, Any] = {}
        for i, c in enumerate(ev.conversions):
            outs = ev.outputs[c.id]
            if len(outs) <= k:
                continue
            out = outs[k]
            is_i = pl.col("__conv") == i
            qkind, cn, cd, dn, dd = coefficient(comp, out.credits)
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


def _finish_lines(frames: list[pl.DataFrame], comp: CompiledPolicy, ordered: bool) -> pl.DataFrame:
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
        .when(gated_preset & pl.col(milli_col("credits")).is_not_null()).then(pl.col(milli_col("credits")))
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


def record_exprs(comp: CompiledPolicy, targets: list[tuple[str, dict[str, Any]]]) -> list[pl.Expr]:
    """The per-record decisions, one expression each: the first failing gate
    (``__failed``), the first matching conversion (``__conv``), exclusion,
    the product of matching multipliers as a fraction, and each target mask."""
    ev = comp.ev
    gates: Any = None
    for i, g in enumerate(ev.gates):
        ok = comp.match(g.require) if g.require is not None else pl.lit(True)
        if g.max_absence_share is not None:
            s = Fraction(g.max_absence_share)
            over = (pl.col(milli_col("hours")).fill_null(0) > 0) & (
                pl.col(milli_col("absent_hours")).fill_null(0) * s.denominator > pl.col(milli_col("hours")) * s.numerator)
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
        f = frac(mu.factor)
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


def _lines_rowwise(df: pl.DataFrame, comp: CompiledPolicy, targets: list[tuple[str, dict[str, Any]]]) -> pl.DataFrame:
    """Per record, every expression over every row: the general path (numeric
    conditions, bands, absence shares)."""
    ev = comp.ev
    df = df.with_columns(
        *record_exprs(comp, targets),
        pl.int_range(pl.len()).alias("__rec"),
    )
    ordered = _canonical_order(df)
    frames = []
    for k in range(max_outputs(comp)):
        sub = df.filter(pl.col("__conv") >= 0)
        cat_chain: Any = None
        theme_chain: Any = None
        num_chain: Any = None
        den_chain: Any = None
        has: list[int] = []
        for i, c in enumerate(ev.conversions):
            outs = ev.outputs[c.id]
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


def attribute_years(df: pl.DataFrame, comp: CompiledPolicy, teachers: pl.DataFrame) -> pl.DataFrame:
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
                for lv in parse_leaves(str(text or "")):
                    if lv.approved and lv.kind in a.require_leave:
                        approved.add(f"{tid}|{lv.year}")
            key = pl.concat_str([pl.col("teacher_id").cast(pl.Utf8), pl.col(a.field).cast(pl.Utf8)], separator="|")
            applies = applies & key.is_in(sorted(approved)).fill_null(False)
        then = pl.col(a.field).cast(pl.Int64)
        chain = pl.when(applies).then(then) if chain is None else chain.when(applies).then(then)
    year = pl.col("year").cast(pl.Int64)
    return df.with_columns((chain.otherwise(year) if chain is not None else year).alias("__year"))
