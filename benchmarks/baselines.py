"""Hand-written baselines for the province benchmark: 永吉 and 山东 only.

Two independent implementations of the same rules the YAML states, to time the
batch evaluator against and to cross-check its verdicts:

* :func:`python_loop` — a plain Python loop over the rows of the Parquet file,
  one teacher at a time, integers in thousandths of a credit;
* :func:`duckdb_sql` — one hand-written DuckDB SQL query per policy, also in
  integer thousandths.

Each returns a Polars frame ``teacher_id, passed, total_milli`` (the cycle's
counted total in thousandths).  Both read the flat file
:mod:`benchmarks.generate` writes and evaluate with the policy's default
options (永吉 ``leave_cycle_reduction=reduce``, ``partial_cycle=prorate``;
山东 ``cycle_anchor=2024``, ``school_credits=hours``, ``partial_cycle=prorate``).

What is left out, deliberately (the engine and the batch evaluator do these):

* any option other than the default;
* explanations, shortfalls and per-category figures — only the verdict and total;
* 山东 ``hire_year`` checks in a year that is not otherwise required (a teacher
  first hired at the cycle's start and transferred in later) — the generator
  never makes one;
* leave approval: every leave in the file's ``leaves`` text counts as approved
  (the file has no approval flag);
* 永吉 ``partial_cycle`` for a teacher both hired and transferred in the cycle:
  the hire decides, as in the policy's rule order, but the start year is not
  cross-checked against a later transfer.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

POLICIES = ("yongji", "shandong")
UPPER = ("国家级", "省级", "市级")
COUNTY_UP = ("国家级", "省级", "市级", "区县级")


def _cycle(policy_id: str, as_of: dt.date) -> tuple[int, int]:
    first = {"yongji": 2018, "shandong": 2024}[policy_id]  # default options
    start = first + ((as_of.year - first) // 5) * 5
    return start, start + 4


def _half_up(numerator: int, denominator: int) -> int:
    """round(numerator / denominator) half up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def _leave_years(text: str | None, kinds: tuple[str, ...]) -> set[int]:
    out: set[int] = set()
    if text:
        for part in text.split(";"):
            year, kind = part.split(":")
            if kind in kinds:
                out.add(int(year))
    return out


# ---------------------------------------------------------------- reading rows


_COLUMNS = ("teacher_id", "stage", "post", "hired_year", "transfer_in_year", "leaves", "year", "category", "theme",
            "level", "form", "location", "hours", "credits", "result", "role", "achievement", "program",
            "approved", "makeup_for_year")


def _milli(col: Any) -> list[int | None]:
    """decimal128(9,3) -> Python ints in thousandths (exact)."""
    scaled = pc.multiply(col, pa.scalar(1000, pa.decimal128(4, 0)))
    return list(scaled.cast(pa.int64()).to_pylist())


def _teachers(path: str | os.PathLike[str], batch_rows: int = 500_000) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(teacher facts, record rows) per teacher; rows are clustered by teacher."""
    pf = pq.ParquetFile(path)
    current: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    for batch in pf.iter_batches(batch_size=batch_rows, columns=list(_COLUMNS)):
        cols: dict[str, list[Any]] = {}
        for name in _COLUMNS:
            col = batch.column(name)
            cols[name] = _milli(col) if name in ("hours", "credits") else col.to_pylist()
        tids = cols["teacher_id"]
        names = _COLUMNS[6:]
        for i in range(batch.num_rows):
            tid = tids[i]
            if current is None or tid != current["teacher_id"]:
                if current is not None:
                    yield current, rows
                current = {k: cols[k][i] for k in _COLUMNS[:6]}
                rows = []
            rows.append({k: cols[k][i] for k in names})
    if current is not None:
        yield current, rows


# ---------------------------------------------------------------- Python loop


def _start(t: dict[str, Any], cs: int, ce: int, transfer_partial: bool) -> tuple[int, int | None]:
    """(first required year, years owed when a partial-cycle rule applies)."""
    hired, moved = t["hired_year"], t["transfer_in_year"]
    if hired is not None and cs < hired <= ce:
        return hired, ce - hired + 1
    if transfer_partial and moved is not None and cs < moved <= ce:
        return moved, ce - moved + 1
    start = cs
    for v in (hired, moved):
        if v is not None and v > start:
            start = v
    return start, None


def _yongji_credits(r: dict[str, Any]) -> tuple[str | None, int]:
    """(category, thousandths) of one record: gates, first matching conversion, ×1.2."""
    role, level, form, program, loc = r["role"], r["level"], r["form"], r["program"], r["location"]
    cat: str | None
    coef: int | None
    if role in ("主讲教师", "指导教师", "辅导教师", "课程专家") and level in COUNTY_UP:
        cat, coef = "C", 1000
    elif form == "校本":
        cat, coef = "S", 500
    elif form == "学区":
        cat, coef = "S", 800
    elif form == "网络":
        cat, coef = "O", 700
    elif program == "班主任培训" and level == "区县级":
        cat, coef = "C", 1000
    elif program == "班主任培训" and level in UPPER:
        cat, coef = "C", {"县域内": 1200, "县域外": 1300}.get(loc) if loc else None
    elif form == "集中" and level == "区县级":
        cat, coef = "C", 1000
    elif form == "集中" and level in UPPER:
        cat, coef = "C", 1300 if loc == "县域外" else 1200
    else:
        return None, 0
    if r["result"] in ("不合格", "未参加"):
        return cat, 0
    if r["approved"] is False:
        return cat, r["credits"] or 0
    hours = r["hours"]
    if hours is None or coef is None:
        return cat, 0
    if r["result"] == "优秀" and form in ("集中", "网络"):
        return cat, _half_up(hours * coef * 1200, 1_000_000)
    return cat, _half_up(hours * coef, 1000)


def _yongji_transfers(t: dict[str, Any], c: int, o: int, s: int, min_c: int, min_o: int) -> tuple[int, int, int]:
    def sub(src: int, reserve: int, to: int, need_min: int) -> int:
        return min(max(0, src - reserve), max(0, need_min - to))

    if t["stage"] in ("高中", "特殊教育"):
        m = sub(s, 0, c, min_c)
        s, c = s - m, c + m
        m = sub(o, min_o, c, min_c)
        o, c = o - m, c + m
    if t["post"] in ("局直事业单位", "非专任教师"):
        m = sub(o, min_o, c, min_c)
        o, c = o - m, c + m
    m = sub(c, min_c, o, min_o)
    c, o = c - m, o + m
    return c, o, s


def _yongji_teacher(t: dict[str, Any], rows: list[dict[str, Any]], cs: int, ce: int, last: int,
                    final: bool) -> tuple[bool, int]:
    sums: dict[int, list[int]] = {}
    for r in rows:
        y = r["year"]
        if not cs <= y <= last:
            continue
        cat, value = _yongji_credits(r)
        if cat is None:
            continue
        acc = sums.setdefault(y, [0, 0, 0])
        acc["COS".index(cat)] += value
    start, owed = _start(t, cs, ce, transfer_partial=True)
    leave = _leave_years(t["leaves"], ("产假", "哺乳期"))
    leader = t["post"] == "领导干部"
    ok = True
    tc = to = ts = 0
    for y in range(cs, last + 1):
        c, o, s = sums.get(y, (0, 0, 0))
        s = min(s, 24_000)  # 校本研修 cap, every year
        tc, to, ts = tc + c, to + o, ts + s
        if y < start or not ok:
            continue
        if y in leave:
            ok = s >= 12_000
        elif leader:
            ok = c + o + s >= 64_000
        else:
            c, o, s = _yongji_transfers(t, c, o, s, 24_000, 16_000)
            ok = c >= 24_000 and o >= 16_000 and c + o + s >= 64_000
    total = tc + to + ts
    min_c, min_o, min_t = 120_000, 80_000, 320_000
    if owed is not None:
        min_c, min_o, min_t = (_half_up(v * owed, 5) for v in (min_c, min_o, min_t))
    n_leave = len({y for y in leave if cs <= y <= ce})
    min_c, min_o, min_t = max(0, min_c - 24_000 * n_leave), max(0, min_o - 16_000 * n_leave), max(0, min_t - 52_000 * n_leave)
    if leader:
        cycle_ok = total >= min_t
    else:
        tc, to, ts = _yongji_transfers(t, tc, to, ts, min_c, min_o)
        cycle_ok = tc >= min_c and to >= min_o and total >= min_t
    return ok and cycle_ok and final, total


def _shandong_teacher(t: dict[str, Any], rows: list[dict[str, Any]], cs: int, ce: int, last: int,
                      final: bool) -> tuple[bool, int]:
    leave = _leave_years(t["leaves"], ("产假", "病假"))
    # per year: [degree, probation, public, school, training], hours of 新任教师培训
    sums: dict[int, list[int]] = {}
    probation_hours: dict[int, int] = {}
    head_hours = 0
    for r in rows:
        y = r["year"]
        mk = r["makeup_for_year"]
        if mk is not None and mk in leave:
            y = mk
        if not cs <= y <= last:
            continue
        form, hours = r["form"], r["hours"]
        slot: int
        if form == "学历教育":
            slot, value = 0, 72_000
        elif r["program"] == "新任教师培训":
            slot, value = 1, 72_000
        elif r["category"] in ("公需科目", "公需课", "公需科目培训") or r["theme"] == "公需科目":
            slot, value = 2, hours or 0
        elif form in ("校本", "自主研习"):
            slot = 3
            value = r["credits"] if r["credits"] is not None else (hours or 0)
        elif r["achievement"] is None:
            slot, value = 4, hours or 0
        else:
            continue
        passed_gate = r["result"] not in ("不合格", "未参加") and r["approved"] is not False
        if not passed_gate:
            value = 0
        elif r["role"] in ("主讲教师", "课程专家", "指导教师") and r["level"] in COUNTY_UP:
            value *= 2
        sums.setdefault(y, [0, 0, 0, 0, 0])[slot] += value
        if passed_gate and r["program"] == "新任教师培训":
            probation_hours[y] = probation_hours.get(y, 0) + (hours or 0)
        if passed_gate and r["program"] == "班主任培训":
            head_hours += hours or 0
    start, owed = _start(t, cs, ce, transfer_partial=False)
    ok = True
    cycle = [0, 0, 0, 0, 0]
    registered = 0
    for y in range(cs, last + 1):
        s = sums.get(y, [0, 0, 0, 0, 0])
        s[0] = min(s[0], 72_000)  # 学历教育: 72 a year
        # 第十八条 累计登记不超过120 (default reading): a year registers what room the earlier left
        s[3] = min(s[3], max(0, 120_000 - registered))
        registered += s[3]
        for i in range(5):
            cycle[i] += s[i]
        if y < start or not ok:
            continue
        ok = sum(s) >= 48_000
        if ok and y == t["hired_year"]:
            ok = probation_hours.get(y, 0) >= 120_000
    others = cycle[0] + cycle[1] + cycle[3] + cycle[4]
    cycle[2] = min(cycle[2], others // 2)  # 公需科目 ≤ 1/3 of the total including itself
    total = others + cycle[2]
    min_t = 72_000 * owed if owed is not None else 360_000
    cycle_ok = total >= min_t and (t["post"] != "班主任" or head_hours >= 30_000)
    return ok and cycle_ok and final, total


def python_loop(policy_id: str, path: str | os.PathLike[str], as_of: dt.date) -> pl.DataFrame:
    """Per-teacher verdicts by a plain Python loop over the file's rows."""
    if policy_id not in POLICIES:
        raise ValueError(f"no baseline for {policy_id}")
    cs, ce = _cycle(policy_id, as_of)
    last = min(ce, as_of.year)
    final = as_of.year >= ce
    one = _yongji_teacher if policy_id == "yongji" else _shandong_teacher
    ids: list[str] = []
    passed: list[bool] = []
    totals: list[int] = []
    for t, rows in _teachers(path):
        ok, total = one(t, rows, cs, ce, last, final)
        ids.append(t["teacher_id"])
        passed.append(ok)
        totals.append(total)
    return pl.DataFrame({"teacher_id": ids, "passed": passed, "total_milli": totals},
                        schema={"teacher_id": pl.String, "passed": pl.Boolean, "total_milli": pl.Int64})


# ---------------------------------------------------------------- DuckDB SQL

_YONGJI_SQL = """
WITH rows AS (
  SELECT teacher_id, year, form, level, location, role, program, result, approved,
         CAST(hours * 1000 AS BIGINT) AS h, CAST(credits * 1000 AS BIGINT) AS c
  FROM read_parquet($path)
  WHERE year BETWEEN $cs AND $last
),
conv AS (
  SELECT *,
    CASE
      WHEN role IN ('主讲教师','指导教师','辅导教师','课程专家') AND level IN ('国家级','省级','市级','区县级') THEN 'C'
      WHEN form = '校本' OR form = '学区' THEN 'S'
      WHEN form = '网络' THEN 'O'
      WHEN program = '班主任培训' AND level IN ('国家级','省级','市级','区县级') THEN 'C'
      WHEN form = '集中' AND level IN ('国家级','省级','市级','区县级') THEN 'C'
    END AS cat,
    CASE
      WHEN role IN ('主讲教师','指导教师','辅导教师','课程专家') AND level IN ('国家级','省级','市级','区县级') THEN 1000
      WHEN form = '校本' THEN 500
      WHEN form = '学区' THEN 800
      WHEN form = '网络' THEN 700
      WHEN program = '班主任培训' AND level = '区县级' THEN 1000
      WHEN program = '班主任培训' THEN CASE location WHEN '县域内' THEN 1200 WHEN '县域外' THEN 1300 END
      WHEN level = '区县级' THEN 1000
      WHEN location = '县域外' THEN 1300
      ELSE 1200
    END AS coef
  FROM rows
),
credited AS (
  SELECT teacher_id, year, cat,
    CASE
      WHEN result IN ('不合格','未参加') THEN 0
      WHEN approved = false THEN coalesce(c, 0)
      WHEN h IS NULL OR coef IS NULL THEN 0
      WHEN result = '优秀' AND form IN ('集中','网络') THEN (h * coef * 1200 + 500000) // 1000000
      ELSE (h * coef + 500) // 1000
    END AS v
  FROM conv WHERE cat IS NOT NULL
),
per_year AS (
  SELECT teacher_id, year,
    sum(v) FILTER (cat = 'C') AS c, sum(v) FILTER (cat = 'O') AS o,
    least(coalesce(sum(v) FILTER (cat = 'S'), 0), 24000) AS s
  FROM credited GROUP BY teacher_id, year
),
teachers AS (
  SELECT teacher_id, any_value(stage) AS stage, any_value(post) AS post, any_value(hired_year) AS hired,
         any_value(transfer_in_year) AS moved, any_value(leaves) AS leaves
  FROM read_parquet($path) GROUP BY teacher_id
),
t AS (
  SELECT *,
    CASE WHEN hired > $cs AND hired <= $ce THEN hired
         WHEN moved > $cs AND moved <= $ce THEN moved END AS partial_start,
    stage IN ('高中','特殊教育') AS sub_hs,
    post IN ('局直事业单位','非专任教师') AS sub_online,
    post = '领导干部' AS leader,
    len(list_filter(range($cs, $ce + 1), lambda y: contains(coalesce(leaves, ''), y::VARCHAR || ':产假')
                                              OR contains(coalesce(leaves, ''), y::VARCHAR || ':哺乳期'))) AS n_leave
  FROM teachers
),
t2 AS (
  SELECT *,
    coalesce(partial_start, greatest($cs, coalesce(hired, 0), coalesce(moved, 0))) AS start_year,
    $ce - partial_start + 1 AS owed
  FROM t
),
-- one row per teacher and required year, records or not
grid AS (
  SELECT t2.teacher_id, t2.sub_hs, t2.sub_online, t2.leader, t2.leaves, y.year,
         coalesce(p.c, 0) AS c0, coalesce(p.o, 0) AS o0, coalesce(p.s, 0) AS s0
  FROM t2 CROSS JOIN (SELECT range AS year FROM range($cs, $last + 1)) y
  LEFT JOIN per_year p ON p.teacher_id = t2.teacher_id AND p.year = y.year
  WHERE y.year >= t2.start_year
),
-- the four substitutions of the year scope, in the policy's order
y1 AS (SELECT *, CASE WHEN sub_hs THEN least(s0, greatest(0, 24000 - c0)) ELSE 0 END AS m1 FROM grid),
y2 AS (SELECT *, CASE WHEN sub_hs THEN least(greatest(0, o0 - 16000), greatest(0, 24000 - (c0 + m1))) ELSE 0 END AS m2 FROM y1),
y3 AS (SELECT *, CASE WHEN sub_online THEN least(greatest(0, o0 - m2 - 16000), greatest(0, 24000 - (c0 + m1 + m2)))
                      ELSE 0 END AS m3 FROM y2),
y4 AS (SELECT *, c0 + m1 + m2 + m3 AS c1, o0 - m2 - m3 AS o1 FROM y3),
y5 AS (SELECT *, c1 - least(greatest(0, c1 - 24000), greatest(0, 16000 - o1)) AS c,
                 o1 + least(greatest(0, c1 - 24000), greatest(0, 16000 - o1)) AS o FROM y4),
years AS (
  SELECT teacher_id, bool_and(
    CASE WHEN contains(coalesce(leaves, ''), year::VARCHAR || ':产假')
              OR contains(coalesce(leaves, ''), year::VARCHAR || ':哺乳期') THEN s0 >= 12000
         WHEN leader THEN c0 + o0 + s0 >= 64000
         ELSE c >= 24000 AND o >= 16000 AND c0 + o0 + s0 >= 64000 END) AS years_ok
  FROM y5 GROUP BY teacher_id
),
cyc AS (
  SELECT t2.*, coalesce(sum(p.c), 0) AS c0, coalesce(sum(p.o), 0) AS o0, coalesce(sum(p.s), 0) AS s0
  FROM t2 LEFT JOIN per_year p USING (teacher_id)
  GROUP BY ALL
),
mins AS (
  SELECT *,
    greatest(0, CASE WHEN owed IS NULL THEN 120000 ELSE (2 * 120000 * owed + 5) // 10 END - 24000 * n_leave) AS min_c,
    greatest(0, CASE WHEN owed IS NULL THEN 80000 ELSE (2 * 80000 * owed + 5) // 10 END - 16000 * n_leave) AS min_o,
    greatest(0, CASE WHEN owed IS NULL THEN 320000 ELSE (2 * 320000 * owed + 5) // 10 END - 52000 * n_leave) AS min_t
  FROM cyc
),
c1 AS (SELECT *, CASE WHEN sub_hs THEN least(s0, greatest(0, min_c - c0)) ELSE 0 END AS m1 FROM mins),
c2 AS (SELECT *, CASE WHEN sub_hs THEN least(greatest(0, o0 - min_o), greatest(0, min_c - (c0 + m1))) ELSE 0 END AS m2 FROM c1),
c3 AS (SELECT *, CASE WHEN sub_online THEN least(greatest(0, o0 - m2 - min_o), greatest(0, min_c - (c0 + m1 + m2)))
                      ELSE 0 END AS m3 FROM c2),
c4 AS (SELECT *, c0 + m1 + m2 + m3 AS cc, o0 - m2 - m3 AS oo FROM c3),
c5 AS (SELECT *, cc - least(greatest(0, cc - min_c), greatest(0, min_o - oo)) AS c,
                 oo + least(greatest(0, cc - min_c), greatest(0, min_o - oo)) AS o FROM c4)
SELECT c5.teacher_id,
  (CASE WHEN leader THEN c0 + o0 + s0 >= min_t ELSE c >= min_c AND o >= min_o AND c0 + o0 + s0 >= min_t END)
    AND coalesce(years.years_ok, true) AND $final AS passed,
  CAST(c0 + o0 + s0 AS BIGINT) AS total_milli
FROM c5 LEFT JOIN years USING (teacher_id)
ORDER BY c5.teacher_id
"""

_SHANDONG_SQL = """
WITH raw AS (
  SELECT teacher_id, leaves, hired_year, year AS reg_year, makeup_for_year, form, level, category, theme, role,
         achievement, program, result, approved,
         CAST(hours * 1000 AS BIGINT) AS h, CAST(credits * 1000 AS BIGINT) AS c
  FROM read_parquet($path)
),
rows AS (
  SELECT *,
    CASE WHEN makeup_for_year IS NOT NULL
              AND (contains(coalesce(leaves, ''), makeup_for_year::VARCHAR || ':产假')
                   OR contains(coalesce(leaves, ''), makeup_for_year::VARCHAR || ':病假'))
         THEN makeup_for_year ELSE reg_year END AS year,
    coalesce(result NOT IN ('不合格','未参加'), true) AND approved IS DISTINCT FROM false AS gate_ok
  FROM raw
),
credited AS (
  SELECT teacher_id, year, gate_ok, program, h,
    CASE
      WHEN form = '学历教育' THEN 'D'
      WHEN program = '新任教师培训' THEN 'N'
      WHEN category IN ('公需科目','公需课','公需科目培训') OR theme = '公需科目' THEN 'P'
      WHEN form IN ('校本','自主研习') THEN 'S'
      WHEN achievement IS NULL THEN 'T'
    END AS cat,
    CASE WHEN NOT gate_ok THEN 0 ELSE
      (CASE
        WHEN form = '学历教育' OR program = '新任教师培训' THEN 72000
        WHEN category IN ('公需科目','公需课','公需科目培训') OR theme = '公需科目' THEN coalesce(h, 0)
        WHEN form IN ('校本','自主研习') THEN coalesce(c, h, 0)
        ELSE coalesce(h, 0)
      END) * (CASE WHEN role IN ('主讲教师','课程专家','指导教师') AND level IN ('国家级','省级','市级','区县级')
                   THEN 2 ELSE 1 END)
    END AS v
  FROM rows
  WHERE year BETWEEN $cs AND $last
),
per_year AS (
  SELECT teacher_id, year,
    least(coalesce(sum(v) FILTER (cat = 'D'), 0), 72000) AS d,
    coalesce(sum(v) FILTER (cat IN ('N','T')), 0) AS nt,
    coalesce(sum(v) FILTER (cat = 'P'), 0) AS p,
    coalesce(sum(v) FILTER (cat = 'S'), 0) AS s,
    coalesce(sum(h) FILTER (cat IS NOT NULL AND gate_ok AND program = '新任教师培训'), 0) AS probation_h,
    coalesce(sum(h) FILTER (cat IS NOT NULL AND gate_ok AND program = '班主任培训'), 0) AS head_h
  FROM credited WHERE cat IS NOT NULL GROUP BY teacher_id, year
),
-- 第十八条 累计登记不超过120 (default reading): each year registers what room the earlier years left
registered AS (
  SELECT teacher_id, year, d, nt, p, probation_h, head_h,
    least(s, greatest(0, 120000 - coalesce(sum(s) OVER (PARTITION BY teacher_id ORDER BY year
                                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))) AS s
  FROM per_year
),
teachers AS (
  SELECT teacher_id, any_value(post) AS post, any_value(hired_year) AS hired, any_value(transfer_in_year) AS moved
  FROM read_parquet($path) GROUP BY teacher_id
),
t2 AS (
  SELECT *,
    CASE WHEN hired > $cs AND hired <= $ce THEN hired
         ELSE greatest($cs, coalesce(hired, 0), coalesce(moved, 0)) END AS start_year,
    CASE WHEN hired > $cs AND hired <= $ce THEN $ce - hired + 1 END AS owed
  FROM teachers
),
years AS (
  SELECT t2.teacher_id, bool_and(
      coalesce(p.d + p.nt + p.p + p.s, 0) >= 48000
      AND (y.year <> coalesce(t2.hired, -1) OR coalesce(p.probation_h, 0) >= 120000)) AS years_ok
  FROM t2 CROSS JOIN (SELECT range AS year FROM range($cs, $last + 1)) y
  LEFT JOIN registered p ON p.teacher_id = t2.teacher_id AND p.year = y.year
  WHERE y.year >= t2.start_year
  GROUP BY t2.teacher_id
),
cyc AS (
  SELECT t2.teacher_id, any_value(t2.post) AS post, any_value(t2.owed) AS owed,
    coalesce(sum(p.d + p.nt), 0) + coalesce(sum(p.s), 0) AS others,
    coalesce(sum(p.p), 0) AS pub, coalesce(sum(p.head_h), 0) AS head_h
  FROM t2 LEFT JOIN registered p USING (teacher_id)
  GROUP BY t2.teacher_id
),
tot AS (SELECT *, others + least(pub, others // 2) AS total FROM cyc)
SELECT tot.teacher_id,
  total >= coalesce(72000 * owed, 360000) AND (post IS DISTINCT FROM '班主任' OR head_h >= 30000)
    AND coalesce(years.years_ok, true) AND $final AS passed,
  CAST(total AS BIGINT) AS total_milli
FROM tot LEFT JOIN years USING (teacher_id)
ORDER BY tot.teacher_id
"""


def duckdb_sql(policy_id: str, path: str | os.PathLike[str], as_of: dt.date, *, threads: int | None = None,
               memory_limit: str | None = None) -> pl.DataFrame:
    """Per-teacher verdicts by one hand-written DuckDB query."""
    import duckdb

    if policy_id not in POLICIES:
        raise ValueError(f"no baseline for {policy_id}")
    cs, ce = _cycle(policy_id, as_of)
    sql = _YONGJI_SQL if policy_id == "yongji" else _SHANDONG_SQL
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute("SET memory_limit = ?", [memory_limit])
    params = {"path": str(path), "cs": cs, "ce": ce, "last": min(ce, as_of.year), "final": as_of.year >= ce}
    table = con.sql(sql, params=params).to_arrow_table()
    con.close()
    return pl.DataFrame(pl.from_arrow(table)).select(
        pl.col("teacher_id").cast(pl.String), pl.col("passed").cast(pl.Boolean), pl.col("total_milli").cast(pl.Int64))
