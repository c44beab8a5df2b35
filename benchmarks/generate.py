"""A synthetic province: one flat Parquet file of teachers and their records.

    python -m benchmarks.generate --teachers 1000000 --records 100 --policy yongji --seed 1 -o var/bench/p.parquet

One row per record, the teacher's facts and organisation repeated on each of her
rows, rows clustered by teacher (sorted by ``teacher_id``, then ``year``, then
``record_id``).  Columns are the interchange keys (``docs/interchange.md``);
``title`` is left out (free text, large, never read by a rule).  Numbers that a
rule computes with are ``decimal128(9, 3)`` — exact, as the engine's decimals;
enumerated values are dictionary-encoded canonical vocabulary terms.

The records are drawn so that the policy has something to decide: record kinds,
levels and results in the proportions a county's ledger shows, the hours of each
teacher's year sized against the policy's own yearly standards, with a fifth of
the teachers placed within a few per cent of the thresholds so that verdicts
depend on exact arithmetic.  Distributions: ``docs/scale.md``.

Memory is bounded by ``chunk_teachers`` (default 50,000 teachers; row groups of
whole teachers, about a million rows each), not by the size of the province.  Random numbers come from Arrow's
seeded generator, so a file is a function of its arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xuefen import vocab

GENERATOR_VERSION = "5"

# 32-bit dictionary indices, as Parquet stores them: narrower indices made the
# reader check and narrow every value (measured here: 4 % of reading and
# evaluating a 山东 file)
ENUM32 = pa.dictionary(pa.int32(), pa.string())
MILLI = pa.decimal128(9, 3)
ROW_GROUP_ROWS = 1_000_000

TEACHER_COLUMNS = ("teacher_id", "stage", "post", "hired_year", "transfer_in_year", "normal_graduate", "leaves")
ORG_COLUMNS = ("city", "district", "school")
RECORD_COLUMNS = (
    "record_id", "year", "category", "theme", "level", "form", "location", "hours", "days", "credits",
    "result", "role", "achievement", "program", "absent_hours", "topics", "words", "approved",
    "certificate", "subject_related", "education_system", "completed_year", "makeup_for_year",
)
DECIMAL_COLUMNS = ("hours", "days", "credits", "absent_hours")
# enumerated columns and the vocabulary each draws from (category/theme: the policy's own terms)
VOCAB_COLUMNS = {
    "stage": "stage", "post": "post", "level": "level", "form": "form", "location": "location",
    "result": "result", "role": "role", "achievement": "achievement", "program": "program",
}

# Columns every row has (a record's teacher, id and year; every teacher's school)
# are declared required: readers then decode no null flags for them.
SCHEMA = pa.schema([
    pa.field("teacher_id", pa.string(), nullable=False),
    ("stage", ENUM32),
    ("post", ENUM32),
    ("hired_year", pa.int16()),
    ("transfer_in_year", pa.int16()),
    ("normal_graduate", pa.bool_()),
    ("leaves", pa.string()),
    pa.field("city", ENUM32, nullable=False),
    pa.field("district", ENUM32, nullable=False),
    pa.field("school", ENUM32, nullable=False),
    pa.field("record_id", pa.string(), nullable=False),
    pa.field("year", pa.int16(), nullable=False),
    ("category", ENUM32),
    ("theme", ENUM32),
    ("level", ENUM32),
    ("form", ENUM32),
    ("location", ENUM32),
    ("hours", MILLI),
    ("days", MILLI),
    ("credits", MILLI),
    ("result", ENUM32),
    ("role", ENUM32),
    ("achievement", ENUM32),
    ("program", ENUM32),
    ("absent_hours", MILLI),
    ("topics", pa.int32()),
    ("words", pa.int32()),
    ("approved", pa.bool_()),
    ("certificate", pa.bool_()),
    ("subject_related", pa.bool_()),
    ("education_system", pa.bool_()),
    ("completed_year", pa.int16()),
    ("makeup_for_year", pa.int16()),
])


# ---------------------------------------------------------------- record kinds


@dataclass(frozen=True)
class Kind:
    """One kind of record and how often a teacher has it.

    ``bucket`` names the yearly requirement the record's credits go towards
    (its hours are sized so that the bucket's records together make the
    teacher's target for that year); ``X`` records get free hours, ``A`` are
    achievements (no hours), ``F`` are fixed-credit records placed on purpose
    (学历教育, 新任教师培训).  ``coef`` is the credits per hour the policy gives
    the kind, used only to size the hours."""

    weight: float
    bucket: str
    coef: float = 1.0
    form: str | None = None
    level: str | None = None
    location: str | None = None
    program: str | None = None
    role: str | None = "学员"
    theme: str | None = None
    category: str | None = None
    achievement: str | None = None
    preset: float = 0.0  # share of these records whose credits the school or county set


@dataclass(frozen=True)
class Spec:
    base: tuple[Kind, ...]
    targets: dict[str, float]  # credits per bucket in one year, for a teacher exactly at the standard
    headteacher: tuple[Kind, ...] | None = None  # drawn instead of ``base`` for post 班主任
    leave: tuple[Kind, ...] | None = None  # drawn in a leave year (永吉: only 校本研修 counts)
    leave_targets: dict[str, float] | None = None
    leave_factor: float = 0.4  # without a leave table: share of a normal year earned in a leave year
    leave_kinds: tuple[str, ...] = ("产假", "哺乳期")
    makeup: bool = False  # records after a leave year credited to it (山东 第二十一条)
    degree_share: float = 0.0  # teachers studying for a degree, one 学历教育 record a year
    probation: bool = False  # new hires have a 新任教师培训 record in their first year


def _k(weight: float, bucket: str, coef: float = 1.0, **kw: Any) -> Kind:
    return Kind(weight, bucket, coef, **kw)


ACHIEVEMENT = _k(0.005, "A", form=None, level="市级", role="第一作者", achievement="论文")
DEGREE = _k(0.0, "F", form="学历教育", role=None)
PROBATION = _k(0.0, "F", form="集中", level="区县级", program="新任教师培训")

YONGJI = Spec(
    base=(
        _k(0.13, "C", 1.0, form="集中", level="区县级", location="县域内"),
        _k(0.01, "C", 1.0, form="集中", level="区县级", program="送教下乡"),
        _k(0.02, "C", 1.2, form="集中", level="市级", location="县域内"),
        _k(0.02, "C", 1.3, form="集中", level="市级", location="县域外"),
        _k(0.01, "C", 1.2, form="集中", level="省级", location="县域内"),
        _k(0.02, "C", 1.3, form="集中", level="省级", location="县域外"),
        _k(0.01, "C", 1.3, form="集中", level="国家级", location="县域外", program="国培计划"),
        _k(0.005, "C", 1.2, form="集中", level="市级"),  # location not filled in
        _k(0.01, "C", 1.0, form="集中", level="区县级", location="县域内", program="班主任培训"),
        _k(0.005, "C", 1.3, form="集中", level="市级", location="县域外", program="班主任培训"),
        _k(0.01, "C", 1.0, form="集中", level="区县级", location="县域内", role="主讲教师"),
        _k(0.003, "C", 1.0, form="集中", level="市级", location="县域外", role="指导教师"),
        _k(0.08, "O", 0.7, form="网络", level="省级", program="信息技术应用能力提升工程2.0"),
        _k(0.06, "O", 0.7, form="网络", level="国家级", program="国培计划"),
        _k(0.06, "O", 0.7, form="网络", level="省级"),
        _k(0.06, "O", 0.7, form="网络", level="市级"),
        _k(0.33, "S", 0.5, form="校本", level="校级"),
        _k(0.12, "S", 0.8, form="学区", level="学区"),
        _k(0.005, "X", form="讲座", level="校级"),  # no conversion in 永吉: shown, never counted
        _k(0.01, "X", form="教研活动", level="区县级"),
        ACHIEVEMENT,
    ),
    targets={"C": 24, "O": 16, "S": 24},
    leave=(_k(0.75, "S", 0.5, form="校本", level="校级"), _k(0.25, "S", 0.8, form="学区", level="学区")),
    leave_targets={"S": 12},
)

_SHANDONG_BASE = (
    _k(0.08, "T", form="集中", level="区县级"),
    _k(0.05, "T", form="集中", level="市级"),
    _k(0.03, "T", form="集中", level="省级"),
    _k(0.10, "T", form="网络", level="省级"),
    _k(0.03, "T", form="网络", level="国家级", program="国培计划"),
    _k(0.02, "T", form="网络", level="省级", program="信息技术应用能力提升工程2.0"),
    _k(0.03, "T", form="短期培训", level="区县级"),
    _k(0.03, "T", form="教研活动", level="区县级"),
    _k(0.09, "P", form="网络", level="省级", theme="公需科目"),
    _k(0.03, "P", form="网络", level="市级", category="公需课"),
    _k(0.28, "S", form="校本", level="校级", preset=0.5),
    _k(0.06, "S", form="自主研习", role=None, preset=0.3),
    _k(0.01, "T", 2.0, form="集中", level="区县级", role="主讲教师"),
    _k(0.003, "T", 2.0, form="集中", level="市级", role="课程专家"),
    _k(0.01, "T", form="集中", level="市级", program="班主任培训"),
    _k(0.01, "A", level="市级", role="第一作者", achievement="论文"),
)
SHANDONG = Spec(
    base=_SHANDONG_BASE,
    targets={"T": 34, "P": 14, "S": 24},
    headteacher=tuple(replace(k, weight=0.05) if k.program == "班主任培训" else k for k in _SHANDONG_BASE),
    leave_kinds=("产假", "病假"),
    makeup=True,
    degree_share=0.02,
    probation=True,
)


def generic_spec(category_ids: Sequence[str], themes: Sequence[str]) -> Spec:
    """A mix for the other policies: every form at a spread of levels, some
    records with the policy's own categories and themes, some achievements."""
    levels = ["区县级", "市级", "省级", "校级", "国家级", "学区"]
    kinds = [
        _k(1.0, "X", form=form, level=levels[i % len(levels)], location="县域内" if i % 3 == 0 else None)
        for i, form in enumerate(vocab.allowed("form"))
    ]
    kinds += [_k(1.0, "X", form="集中", level="市级", category=c) for c in category_ids]
    kinds += [_k(0.8, "X", form="网络", level="省级", theme=t) for t in themes]
    kinds += [_k(0.4, "A", level=levels[i % 4], role="第一作者" if i % 2 else "主持人", achievement=a)
              for i, a in enumerate(vocab.allowed("achievement"))]
    kinds += [_k(0.3, "X", form="集中", level="区县级", role="主讲教师"),
              _k(0.3, "X", form="集中", level="区县级", program="班主任培训")]
    return Spec(base=tuple(kinds), targets={})


def spec_for(policy_id: str, category_ids: Sequence[str] = (), themes: Sequence[str] = ()) -> Spec:
    if policy_id == "yongji":
        return YONGJI
    if policy_id == "shandong":
        return SHANDONG
    return generic_spec(category_ids, themes)


# ---------------------------------------------------------------- teacher distributions

STAGES = {"幼儿园": 0.07, "小学": 0.43, "初中": 0.27, "高中": 0.15, "中职": 0.04, "特殊教育": 0.01, "其他": 0.03}
POSTS = {"专任教师": 0.77, "班主任": 0.15, "非专任教师": 0.03, "领导干部": 0.03, "局直事业单位": 0.01, "校长": 0.01}
RESULTS = {"合格": 0.875, "优秀": 0.09, "不合格": 0.025, "未参加": 0.01}
NEW_HIRE = 0.03  # first hired during the evaluated cycle
TRANSFER_IN_CYCLE = 0.02
TRANSFER_BEFORE = 0.04
MATERNITY = 0.04  # 产假 in one year; 60 % also 哺乳期 the next
NURSING_AFTER = 0.6
SICK = 0.01
# diligence: the teacher's credits as a multiple of the standard
COMFORTABLE = (0.68, 1.08, 1.45)
NEAR = (0.20, 0.985, 1.02)
SHORT = (0.12, 0.55, 0.97)
TEACHERS_PER_DISTRICT = 8333  # 1M teachers: 120 districts
DISTRICTS_PER_CITY = 8.6  # 120 districts: 14 cities


def as_of_default(policy: Any) -> int:
    """The last year of the first whole cycle that starts when the policy takes effect."""
    from xuefen.engine.evaluate import Evaluator

    ev = Evaluator(policy)
    start, end = ev.cycle_for(policy.effective.from_.year)
    if start < policy.effective.from_.year:
        start, end = ev.cycle_for(end + 1)
    return end


# ---------------------------------------------------------------- helpers


_B = 1 << 21


def _uniforms(frame: pl.DataFrame, key: str, seed: int, stream: int, names: Sequence[str]) -> pl.DataFrame:
    """Add up to three uniform [0, 1) columns per 64-bit hash of ``key`` (a
    global teacher or row number), so a value depends on the seed and the
    row, not on how the file is chunked.  Polars' seeded hash is stable within
    one Polars version (pinned)."""
    cols: list[pl.Expr] = []
    for j in range(0, len(names), 3):
        h = pl.col(key).hash(seed * 1_000_003 + stream + j)
        parts = [h % _B, (h // _B) % _B, h // (_B * _B) // 2]
        cols += [(part.cast(pl.Float64) / _B).alias(name) for part, name in zip(parts, names[j:j + 3], strict=False)]
    return frame.with_columns(cols)


def _draw(u: pl.Series, weights: Sequence[float]) -> pl.Series:
    """Indices into ``weights`` drawn with those weights."""
    total = sum(weights)
    cum: list[float] = []
    acc = 0.0
    for w in weights[:-1]:
        acc += w / total
        cum.append(acc)
    return pl.Series(cum, dtype=pl.Float64).search_sorted(u, side="right").cast(pl.Int32)


def _enum(values: Sequence[str]) -> pl.Enum:
    return pl.Enum(list(dict.fromkeys(values)))


@dataclass
class _Org:
    school_ends: pl.Series  # cumulative teacher count at the end of each school
    school_stage: list[str]
    n_schools: int
    n_districts: int
    n_cities: int

    def names(self) -> tuple[list[str], list[str], list[str]]:
        return ([f"C{c:02d}" for c in range(self.n_cities)],
                [f"D{d:03d}" for d in range(self.n_districts)],
                [f"S{s:05d}" for s in range(self.n_schools)])


def _org(n: int, seed: int) -> _Org:
    rng = random.Random(seed * 31 + 7)
    ends: list[int] = []
    total = 0
    stages = list(STAGES)
    weights = list(STAGES.values())
    school_stage: list[str] = []
    while total < n:
        total += rng.randint(20, 180)  # mean 100 teachers a school
        ends.append(min(total, n))
        school_stage.append(rng.choices(stages, weights)[0])
    n_schools = len(ends)
    n_districts = max(1, min(n_schools, round(n / TEACHERS_PER_DISTRICT)))
    n_cities = max(1, min(n_districts, round(n_districts / DISTRICTS_PER_CITY)))
    return _Org(pl.Series(ends, dtype=pl.Int64), school_stage, n_schools, n_districts, n_cities)


# ---------------------------------------------------------------- one chunk


def _teachers(i0: int, m: int, seed: int, org: _Org, cycle_start: int, as_of_year: int,
              spec: Spec, id_width: int) -> pl.DataFrame:
    tix = pl.Series("tix", range(i0, i0 + m), dtype=pl.Int64)
    u_names = ["u_stage_random", "u_post", "u_stage", "u_hire", "u_hire_year", "u_transfer", "u_transfer_year",
               "u_grad", "u_leave", "u_leave_year", "u_dil", "u_dil2", "u_degree"]
    u = _uniforms(pl.DataFrame([tix]), "tix", seed, 0, u_names)
    school = org.school_ends.search_sorted(tix, side="right").cast(pl.Int64)
    district = school * org.n_districts // org.n_schools
    city = district * org.n_cities // org.n_districts
    cities, districts, schools = org.names()
    school_stage = pl.Series(org.school_stage, dtype=_enum(vocab.allowed("stage"))).gather(school)
    stage_enum = _enum(vocab.allowed("stage"))
    random_stage = pl.Series(list(STAGES), dtype=stage_enum).gather(_draw(u["u_stage_random"], list(STAGES.values())))
    post = pl.Series(list(POSTS), dtype=_enum(vocab.allowed("post"))).gather(_draw(u["u_post"], list(POSTS.values())))
    later_years = max(0, as_of_year - cycle_start)  # years after the cycle's first, up to as_of
    df = u.with_columns(stage_school=school_stage, stage_random=random_stage, post=post)
    new_hire = pl.col("u_hire") < NEW_HIRE
    hired = (pl.when(new_hire)
             .then(cycle_start + (pl.col("u_hire_year") * (later_years + 1)).floor().cast(pl.Int64).clip(0, later_years))
             .otherwise(cycle_start - 1 - (pl.col("u_hire_year") * 35).floor().cast(pl.Int64)))
    transfer = (pl.when(new_hire).then(None)
                .when(pl.col("u_transfer") < TRANSFER_IN_CYCLE)
                .then(cycle_start + 1 + (pl.col("u_transfer_year") * later_years).floor().cast(pl.Int64)
                      .clip(0, max(0, later_years - 1)))
                .when(pl.col("u_transfer") < TRANSFER_IN_CYCLE + TRANSFER_BEFORE)
                .then(pl.max_horizontal(pl.col("hired_year"),
                                        cycle_start - 1 - (pl.col("u_transfer_year") * 10).floor().cast(pl.Int64)))
                .otherwise(None))
    # a transfer within the cycle needs a later year to move to
    if later_years == 0:
        transfer = pl.when(pl.col("u_transfer") < TRANSFER_IN_CYCLE).then(None).otherwise(transfer)
    df = df.with_columns(
        stage=pl.when(pl.col("u_stage") < 0.95).then(pl.col("stage_school")).otherwise(pl.col("stage_random")),
        hired_year=hired, new_hire=new_hire,
    ).with_columns(transfer_in_year=transfer)
    df = df.with_columns(
        y0=pl.when(pl.col("new_hire")).then(pl.col("hired_year")).otherwise(cycle_start),
    ).with_columns(ny=as_of_year - pl.col("y0") + 1)
    leave_year = pl.col("y0") + (pl.col("u_leave_year") * pl.col("ny")).floor().cast(pl.Int64).clip(0, pl.col("ny") - 1)
    maternity = pl.col("u_leave") < MATERNITY
    sick = (pl.col("u_leave") >= MATERNITY) & (pl.col("u_leave") < MATERNITY + SICK)
    df = df.with_columns(
        leave_year=pl.when(maternity | sick).then(leave_year).otherwise(None),
        leave_kind=pl.when(maternity).then(pl.lit("产假")).when(sick).then(pl.lit("病假")).otherwise(None),
        # u_leave is uniform within [0, MATERNITY) for a maternity leave: reuse it for the nursing draw
        nursing=maternity & (pl.col("u_leave") < MATERNITY * NURSING_AFTER) & (leave_year + 1 <= as_of_year),
    )
    leaves = (pl.when(pl.col("leave_year").is_null()).then(None)
              .when(pl.col("nursing"))
              .then(pl.format("{}:{};{}:哺乳期", pl.col("leave_year"), pl.col("leave_kind"), pl.col("leave_year") + 1))
              .otherwise(pl.format("{}:{}", pl.col("leave_year"), pl.col("leave_kind"))))
    c_w, c_lo, c_hi = COMFORTABLE
    n_w, n_lo, n_hi = NEAR
    s_lo, s_hi = SHORT[1], SHORT[2]
    d = pl.col("u_dil2")
    diligence = (pl.when(pl.col("u_dil") < c_w).then(c_lo + d * (c_hi - c_lo))
                 .when(pl.col("u_dil") < c_w + n_w).then(n_lo + d * (n_hi - n_lo))
                 .otherwise(s_lo + d * (s_hi - s_lo)))
    df = df.with_columns(
        teacher_id=pl.format("T{}", pl.col("tix").cast(pl.String).str.zfill(id_width)),
        normal_graduate=pl.when(pl.col("u_grad") < 0.70).then(True).when(pl.col("u_grad") < 0.95).then(False)
        .otherwise(None),
        leaves=leaves,
        diligence=diligence,
        near=(pl.col("u_dil") >= c_w) & (pl.col("u_dil") < c_w + n_w),
        degree=pl.col("u_degree") < spec.degree_share,
        city=pl.Series(cities, dtype=_enum(cities)).gather(city),
        district=pl.Series(districts, dtype=_enum(districts)).gather(district),
        school=pl.Series(schools, dtype=_enum(schools)).gather(school),
    )
    return df


def _kinds_frame(spec: Spec, cat_enum: pl.Enum) -> tuple[pl.DataFrame, dict[str, int]]:
    tables: dict[str, tuple[Kind, ...]] = {"base": spec.base}
    if spec.headteacher:
        tables["head"] = spec.headteacher
    if spec.leave:
        tables["leave"] = spec.leave
    rows: list[Kind] = []
    offsets: dict[str, int] = {}
    for name, kinds in tables.items():
        offsets[name] = len(rows)
        rows.extend(kinds)
    offsets["degree"] = len(rows)
    rows.append(DEGREE)
    offsets["probation"] = len(rows)
    rows.append(PROBATION)

    def col(name: str, field: str) -> pl.Series:
        return pl.Series(name, [getattr(k, name) for k in rows], dtype=_enum(vocab.allowed(field)))

    target_of: list[float] = []
    for name, kinds in tables.items():
        targets = (spec.leave_targets or {}) if name == "leave" else spec.targets
        target_of.extend(targets.get(k.bucket, 0.0) for k in kinds)
    target_of += [0.0, 0.0]
    frame = pl.DataFrame([
        pl.Series("kind", range(len(rows)), dtype=pl.Int32),
        pl.Series("bucket", [k.bucket for k in rows]),
        pl.Series("bucket_code", ["CSOTPXAF".index(k.bucket) for k in rows], dtype=pl.Int64),
        pl.Series("coef", [k.coef for k in rows], dtype=pl.Float64),
        pl.Series("target", target_of, dtype=pl.Float64),
        pl.Series("preset", [k.preset for k in rows], dtype=pl.Float64),
        col("form", "form"), col("level", "level"), col("location", "location"), col("program", "program"),
        col("role", "role"), col("achievement", "achievement"),
        pl.Series("theme", [k.theme for k in rows], dtype=cat_enum),
        pl.Series("category", [k.category for k in rows], dtype=cat_enum),
    ])
    return frame, offsets


def _records(t: pl.DataFrame, r: int, seed: int, cycle_start: int, as_of_year: int,
             spec: Spec, kinds: pl.DataFrame, offsets: dict[str, int]) -> pl.DataFrame:
    m = t.height
    n = m * r
    width = max(3, len(str(r - 1)))
    idx = pl.int_range(0, n, dtype=pl.Int64, eager=True)
    local = idx // r
    teacher_cols = ["tix", "teacher_id", "stage", "post", "hired_year", "transfer_in_year", "normal_graduate",
                    "leaves", "city", "district", "school", "diligence", "near", "degree", "new_hire", "y0", "ny",
                    "leave_year", "leave_kind", "nursing"]
    rec = t.select(pl.col(teacher_cols).gather(local)).with_columns(k=(idx % r).cast(pl.Int32))
    rec = rec.with_columns(row=pl.col("tix") * r + pl.col("k"))
    rec = _uniforms(rec, "row", seed, 100, ["u_kind", "u_w", "u_g", "u_round", "u_result", "u_appr", "u_preset",
                                             "u_misc", "u_misc2", "u_hours", "u_out", "u_makeup"])
    year = pl.col("y0") + (pl.col("k").cast(pl.Int64) * pl.col("ny")) // r
    # a few records of the previous cycle (the file is a whole ledger, not one cycle)
    out_of_cycle = (~pl.col("new_hire")) & (pl.col("k") == 0) & (pl.col("u_out") < 0.3)
    rec = rec.with_columns(year=pl.when(out_of_cycle).then(cycle_start - 1).otherwise(year), out=out_of_cycle)
    if "哺乳期" in spec.leave_kinds:
        in_leave = (pl.col("year") == pl.col("leave_year")) | (pl.col("nursing") & (pl.col("year") == pl.col("leave_year") + 1))
    else:  # 哺乳期 is not a leave this policy knows: only the first year is a leave year
        in_leave = pl.col("year") == pl.col("leave_year")
    rec = rec.with_columns(in_leave=(in_leave & pl.col("leave_kind").is_in(list(spec.leave_kinds))).fill_null(False))
    # record kind
    kind = _draw(rec["u_kind"], [kd.weight for kd in spec.base]) + offsets["base"]
    if spec.headteacher:
        head = _draw(rec["u_kind"], [kd.weight for kd in spec.headteacher]) + offsets["head"]
        kind = pl.select(pl.when(rec["post"] == "班主任").then(head).otherwise(kind)).to_series()
    if spec.leave:
        leave = _draw(rec["u_kind"], [kd.weight for kd in spec.leave]) + offsets["leave"]
        kind = pl.select(pl.when(rec["in_leave"]).then(leave).otherwise(kind)).to_series()
    rec = rec.with_columns(kind=kind.cast(pl.Int32))
    # rows are in (teacher, year) order: a record opens its year when the previous row is another teacher or year
    first_of_year = (pl.col("k") == 0) | (pl.col("year") != pl.col("year").shift(1))
    if spec.degree_share:
        rec = rec.with_columns(kind=pl.when(pl.col("degree") & first_of_year & ~pl.col("out") & ~pl.col("in_leave"))
                               .then(offsets["degree"]).otherwise(pl.col("kind")))
    if spec.probation:
        rec = rec.with_columns(kind=pl.when(pl.col("new_hire") & first_of_year & (pl.col("year") == pl.col("hired_year")))
                               .then(offsets["probation"]).otherwise(pl.col("kind")))
    rec = rec.join(kinds, on="kind", how="left", maintain_order="left")
    targeted = list(spec.targets)
    # hours: each (teacher, year, bucket) group shares the year's target for its bucket
    sized = pl.col("bucket").is_in(targeted) & (pl.col("target") > 0) & ~pl.col("out")
    rec = rec.with_columns(
        sized=sized,
        grp=pl.when(sized).then((pl.col("row") - pl.col("k")) * 64 + (pl.col("year") - cycle_start) * 8
                                + pl.col("bucket_code")).otherwise(-1),
        w=0.5 + pl.col("u_w"),
    )
    rec = rec.with_columns(w_sum=pl.col("w").sum().over("grp"), wobble=pl.col("u_g").first().over("grp") - 0.5)
    leave_factor = 1.0 if spec.leave else spec.leave_factor
    # the year's own wobble around the teacher's diligence: ±3 %, ±1 % for a teacher near the threshold
    g = pl.col("diligence") * (1 + pl.when(pl.col("near")).then(0.02).otherwise(0.06) * pl.col("wobble"))
    target = pl.col("target") * g * pl.when(pl.col("in_leave")).then(leave_factor).otherwise(1.0)
    is_preset = pl.col("u_preset") < pl.col("preset")
    per_credit = 1 + (pl.col("u_misc2") * 3).floor()  # a school's own rate: 1-3 hours a credit
    rec = rec.with_columns(share=target * pl.col("w") / pl.col("w_sum"), is_preset=is_preset & pl.col("sized"))
    hours_f = (pl.when(pl.col("sized"))
               .then(pl.when(pl.col("is_preset")).then(pl.col("share") * per_credit)
                     .otherwise(pl.col("share") / pl.col("coef")))
               .otherwise(2 + pl.col("u_hours") * 22))
    grid = pl.when(pl.col("u_round") < 0.89).then(500).when(pl.col("u_round") < 0.99).then(100).otherwise(1)
    hours_m = ((hours_f * 1000 / grid).round(0).cast(pl.Int64) * grid).clip(lower_bound=grid)
    probation_hours = (pl.when(pl.col("u_hours") < 0.9).then(120_000)
                       .otherwise(96_000 + (pl.col("u_w") * 47).floor().cast(pl.Int64) * 500))
    rec = rec.with_columns(
        hours_m=pl.when(pl.col("kind") == offsets["probation"]).then(probation_hours)
        .when(pl.col("bucket").is_in(["A", "F"])).then(None)
        .otherwise(hours_m),
        preset_m=pl.when(pl.col("is_preset"))
        .then(((pl.col("share") * 2).round(0).cast(pl.Int64) * 500).clip(lower_bound=500)).otherwise(None),
    )
    # results, approval and the rest
    result = pl.Series(list(RESULTS), dtype=_enum(vocab.allowed("result"))).gather(
        _draw(rec["u_result"], list(RESULTS.values())))
    approved = pl.when(pl.col("u_appr") < 0.975).then(True).when(pl.col("u_appr") < 0.99).then(False).otherwise(None)
    rec = rec.with_columns(result=result, approved=approved)
    # an unapproved record: half of them carry credits the county set (永吉 gate-approved: preset)
    unapproved = (~pl.col("approved")).fill_null(False) & (pl.col("u_preset") < 0.5) & pl.col("hours_m").is_not_null()
    preset = (pl.when(unapproved).then(((pl.col("hours_m") * pl.col("coef")) / 500).round(0).cast(pl.Int64) * 500)
              .otherwise(pl.col("preset_m")))
    central = pl.col("form") == "集中"
    makeup = pl.lit(None, dtype=pl.Int64)
    if spec.makeup:
        first_after = pl.col("leave_year") + 1 + pl.col("nursing").cast(pl.Int64)
        makeup = (pl.when(pl.col("year") == first_after).then(
            pl.when(pl.col("u_makeup") < 0.3).then(pl.col("leave_year"))).otherwise(
            pl.when(pl.col("u_makeup") < 0.002).then(pl.col("year") - 1)))
    return rec.select(
        "teacher_id", "stage", "post", "hired_year", "transfer_in_year", "normal_graduate", "leaves",
        "city", "district", "school",
        record_id=pl.format("r{}", pl.col("k").cast(pl.String).str.zfill(width)),
        year=pl.col("year"),
        category=pl.col("category"), theme=pl.col("theme"), level=pl.col("level"), form=pl.col("form"),
        location=pl.col("location"),
        hours=pl.col("hours_m"),
        days=pl.when(central & pl.col("hours_m").is_not_null())
        .then(((pl.col("hours_m") + 5999) // 6000) * 1000).otherwise(None),
        credits=preset,
        result=pl.when(pl.col("bucket") == "A").then(None).otherwise(pl.col("result")),
        role=pl.col("role"), achievement=pl.col("achievement"), program=pl.col("program"),
        absent_hours=pl.when(central & (pl.col("u_misc") < 0.03) & pl.col("hours_m").is_not_null())
        .then(pl.min_horizontal(pl.col("hours_m"), 500 + (pl.col("u_misc") * 100 * 7).floor().cast(pl.Int64) * 500))
        .otherwise(None),
        topics=pl.lit(None, dtype=pl.Int32),
        words=pl.when(pl.col("bucket") == "A").then(3000 + (pl.col("u_hours") * 900).floor().cast(pl.Int32) * 10)
        .otherwise(None),
        approved=pl.col("approved"),
        certificate=pl.when(pl.col("form").is_in(["集中", "网络"]) & pl.col("result").is_in(["合格", "优秀"])
                            & (pl.col("u_misc2") < 0.7)).then(True).otherwise(None),
        subject_related=pl.when(pl.col("u_misc") < 0.4).then(True).when(pl.col("u_misc") < 0.5).then(False)
        .otherwise(None),
        education_system=pl.when(pl.col("form") == "学历教育").then(True).otherwise(None),
        completed_year=pl.lit(None, dtype=pl.Int64),
        makeup_for_year=makeup,
    )


_MILLI_SCALE = pa.scalar(Decimal("0.001"), pa.decimal128(4, 3))


def _to_arrow(df: pl.DataFrame) -> Any:
    table = df.to_arrow()
    cols = []
    for f in SCHEMA:
        col = table.column(f.name)
        if f.name in DECIMAL_COLUMNS:
            col = pc.multiply(col.cast(pa.decimal128(19, 0)), _MILLI_SCALE).cast(MILLI)
        elif pa.types.is_dictionary(f.type):
            if not pa.types.is_dictionary(col.type):
                col = pc.dictionary_encode(col)
            col = col.cast(f.type)
        else:
            col = col.cast(f.type)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=SCHEMA)


def generate(n_teachers: int, records_per_teacher: int, policy_id: str, as_of_year: int | None = None,
             seed: int = 1, out_path: str | os.PathLike[str] = "province.parquet", *,
             chunk_teachers: int = 50_000, compression: str = "snappy", progress: bool = False) -> Path:
    """Write the synthetic province to ``out_path`` (atomically) and return the path."""
    from xuefen.engine.evaluate import Evaluator
    from xuefen.policy.loader import default_registry

    if n_teachers < 1 or records_per_teacher < 1:
        raise ValueError("n_teachers and records_per_teacher must be at least 1")
    policy = default_registry().get(policy_id)
    if as_of_year is None:
        as_of_year = as_of_default(policy)
    cycle_start, _ = Evaluator(policy).cycle_for(as_of_year)
    themes = [t for c in policy.categories for t in c.themes]
    spec = spec_for(policy.id, [c.id for c in policy.categories], themes)
    cat_values = [c.id for c in policy.categories] + [a for c in policy.categories for a in c.aliases] + themes
    cat_values += [kd.category for kd in (*spec.base, *(spec.headteacher or ())) if kd.category]
    cat_values += [kd.theme for kd in (*spec.base, *(spec.headteacher or ())) if kd.theme]
    kinds, offsets = _kinds_frame(spec, _enum(cat_values or ["-"]))
    org = _org(n_teachers, seed)
    id_width = max(7, len(str(n_teachers - 1)))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    meta = {
        "xuefen.generator": GENERATOR_VERSION, "xuefen.policy": policy.id, "xuefen.as_of_year": str(as_of_year),
        "xuefen.cycle_start": str(cycle_start), "xuefen.seed": str(seed), "xuefen.teachers": str(n_teachers),
        "xuefen.records_per_teacher": str(records_per_teacher),
    }
    schema = SCHEMA.with_metadata(meta)
    started = time.perf_counter()
    # Decimals as INT32 (not big-endian fixed-length bytes): exact all the same,
    # and readers decode them about six times faster.  Snappy (Arrow's default)
    # rather than zstd: 40 % larger, but reading ten million rows and
    # evaluating them took about 8 % less time here (zstd set up a fresh
    # decompression context for every page).
    with pq.ParquetWriter(tmp, schema, compression=compression, store_decimal_as_integer=True) as writer:
        for i0 in range(0, n_teachers, chunk_teachers):
            m = min(chunk_teachers, n_teachers - i0)
            t = _teachers(i0, m, seed, org, cycle_start, as_of_year, spec, id_width)
            rows = _records(t, records_per_teacher, seed, cycle_start, as_of_year, spec, kinds, offsets)
            # row groups of whole teachers, about a million rows each (Arrow's default size)
            per_group = max(1, ROW_GROUP_ROWS // max(1, records_per_teacher)) * max(1, records_per_teacher)
            writer.write_table(_to_arrow(rows).replace_schema_metadata(meta), row_group_size=min(rows.height, per_group))
            if progress:
                done = i0 + m
                print(f"  {done:,}/{n_teachers:,} teachers, {time.perf_counter() - started:.1f}s", file=sys.stderr)
    tmp.replace(out)
    return out


# ---------------------------------------------------------------- reading back as interchange


def _leaves(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    out = []
    for part in text.split(";"):
        year, kind = part.split(":")
        out.append({"year": int(year), "kind": kind})
    return out


def iter_ledgers(path: str | os.PathLike[str], *, batch_rows: int = 200_000,
                 limit: int | None = None) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The file as interchange dictionaries, one teacher at a time, ready for
    :func:`xuefen.model.parse_teacher` / :func:`~xuefen.model.parse_record`
    (blank values left out, decimals as ``Decimal``).  Relies on the rows
    being clustered by teacher."""
    pf = pq.ParquetFile(path)
    teacher: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    seen = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        cols = {name: batch.column(name).to_pylist() for name in batch.schema.names}
        for i in range(batch.num_rows):
            tid = cols["teacher_id"][i]
            if teacher is None or tid != teacher["id"]:
                if teacher is not None:
                    yield teacher, records
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
                teacher = {"id": tid}
                for name in TEACHER_COLUMNS[1:]:
                    value = cols[name][i]
                    if name == "leaves":
                        teacher["leaves"] = _leaves(value)
                    elif value is not None:
                        teacher[name] = value
                records = []
            rec: dict[str, Any] = {"id": cols["record_id"][i]}
            for name in RECORD_COLUMNS[1:]:
                if name in cols and cols[name][i] is not None:
                    rec[name] = cols[name][i]
            records.append(rec)
    if teacher is not None:
        yield teacher, records


# ---------------------------------------------------------------- command line



def iter_parsed(path: str | os.PathLike[str], *, limit: int | None = None) -> Iterator[
        tuple[Any, list[Any], list[dict[str, Any]]]]:
    """:func:`iter_ledgers` parsed through the interchange model as a file
    reader would: (teacher, records, raw rows); bad data raises InputError."""
    from xuefen.errors import InputError, Problem
    from xuefen.model import parse_record, parse_teacher

    def where(key: str, message: str) -> Problem:
        return Problem(message, column=key)

    for t, rows in iter_ledgers(path, limit=limit):
        teacher, problems = parse_teacher(t, where)
        records = []
        for row in rows:
            rec, more = parse_record(row, where)
            problems += more
            records.append(rec)
        if problems or teacher is None:
            raise InputError(problems)
        yield teacher, records, rows

def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.generate", description="生成合成的全省教师学分数据（Parquet）")
    ap.add_argument("--teachers", type=int, required=True)
    ap.add_argument("--records", type=int, default=100, help="records per teacher (default 100)")
    ap.add_argument("--policy", required=True)
    ap.add_argument("--as-of-year", type=int, default=None,
                    help="last year with records (default: end of the policy's first whole cycle)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=50_000, help="teachers per row group")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    path = generate(args.teachers, args.records, args.policy, args.as_of_year, args.seed, args.out,
                    chunk_teachers=args.chunk, progress=not args.quiet)
    took = time.perf_counter() - started
    size = path.stat().st_size
    print(f"{path}: {args.teachers:,} teachers × {args.records} records, {size / 1e6:.1f} MB, {took:.1f}s "
          f"({dt.datetime.now().isoformat(timespec='seconds')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
