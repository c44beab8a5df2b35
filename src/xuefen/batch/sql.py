"""The batch evaluation as SQL on PostgreSQL, where the live platform keeps its data.

The same policy files and the same decisions as :mod:`xuefen.batch.evaluate`,
split where the work is:

* **Stage 1, the rule decisions, in Python once per combination of facts.**
  Every condition of a record's gates, conversion, multipliers, exclusion,
  year attribution, match targets and routing reads only its categorical
  facts and the interval each numeric fact falls in between the numbers the
  policy compares it with.  ``SELECT DISTINCT`` of those keys (a few hundred
  rows for a province) is decided by the general path's own Polars
  expressions (``columnar.decision_tables``), and the decision table is loaded into a
  TEMP table; the teachers' ``applies_to`` conditions likewise, once per
  combination of teacher facts.
* **Per record, in SQL:** a join to the decision table and integer arithmetic,
  ``credits × 1000 = floor((2·q·num + den) / (2·den))`` in exact integers.
* **Stage 2, in SQL,** mirroring :mod:`.stage2` (``stage2``, its scopes, caps and measures):
  caps as running sums in the canonical order (teacher, year, record id,
  output) with window functions, clipped; share-of-total caps;
  ``highest_only``; year caps carrying into the cycle; transfers reserving the
  minimums that apply; minimums per year, per hire year and per cycle
  (credits, earned credits, hours, count); partial cycles; leave years;
  waivers; verdicts and status.

Credit bands (朝阳 ×2, 肃州) and absence-share gates (潍坊) read raw numbers
rather than intervals: their quantity and the first failing gate are computed
per record in SQL from the same constants (``_numeric_tables``).  All nine
shipped policies translate.  What is not translated is never skipped:

* a policy with a condition on a column the relations do not carry, or a cap
  without a target, raises :class:`NotTranslatable` before anything runs — the
  caller evaluates it with the Python batch evaluator;
* teachers who need the per-teacher engine in the batch evaluator too
  (``completion`` or ``penalty`` matching one of their records, leave
  minimums on themes or record matches while they have leave, duplicate
  record ids, figures finer than thousandths, a line in two caps that cross)
  are left out of the SQL result and listed in :attr:`SqlResult.routed` for
  the caller to evaluate.

Input: three SQL relations (a table name or a parenthesised query) —
``teachers`` (``teacher_id``, ``stage``, ``post``, ``hired_year``,
``transfer_in_year``, ``normal_graduate``), ``records`` (``teacher_id``,
``record_id`` and every interchange record field by its interchange name;
``credits`` is the preset credits; NULL where a fact is missing) and
``leaves`` (``teacher_id``, ``year``, ``kind``, ``approved``).  Output: two
TEMP tables of the session, ``xf_out`` (per teacher: ``teacher_id``,
``passed``, ``status``, ``total_milli``, ``c_<i>`` the counted thousandths of
category ``i``) and ``xf_out_year`` (``teacher_id``, ``year``, ``passed`` —
NULL when nothing is required that year — and ``total_milli``).

``tests/web/test_sql.py`` proves the result equal to the per-teacher engine
on random ledgers for every translated policy.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import polars as pl

from xuefen import vocab
from xuefen.engine.core import status_of
from xuefen.errors import InputError, Problem
from xuefen.policy.schema import Minimum, Policy, Target

from .columnar import Codes, Plan, decision_tables, match_columns
from .compile import (
    CONST,
    CREDITS,
    DAYS,
    DECIMAL_FIELDS,
    HOURS,
    HOURS_OR_DAYS,
    TEACHER_COLUMNS,
    TOPICS,
    CompiledPolicy,
    kind_of,
    milli_of,
)
from .stage1 import coefficient, record_exprs
from .stage2 import leave_minimums

__all__ = ["NotTranslatable", "SqlResult", "evaluate_sql", "fetch", "release", "untranslatable"]

_PREFIX = "xf_"
_RECORD_COLUMNS = ("year", "category", "theme", "level", "form", "location", "hours", "days", "credits", "result",
                   "role", "achievement", "program", "absent_hours", "topics", "words", "approved", "certificate",
                   "subject_related", "education_system", "completed_year", "makeup_for_year")
_BANDS = 100  # quantity kinds from here on: credit band table b = kind - _BANDS
_SQL_TYPE = {"decimal": "numeric", "year": "integer", "int": "bigint", "bool": "boolean"}


class NotTranslatable(Exception):
    """The policy has a rule this module does not translate to SQL; evaluate
    it with the Python batch evaluator instead."""


@dataclass
class SqlResult:
    categories: list[str]  # c_<i> of xf_out is categories[i]
    evaluated: int  # teachers in xf_out
    routed: list[Any] = field(default_factory=list)  # teacher ids left for the Python evaluators
    statements: int = 0


def untranslatable(policy: Policy, options: dict[str, str] | None, as_of: dt.date) -> str | None:
    """Why this policy cannot be evaluated in SQL (None: it can)."""
    return _why_not(Plan(CompiledPolicy(policy, options, as_of)))


def _why_not(plan: Plan) -> str | None:
    for col in plan.key_cols:
        if col not in _RECORD_COLUMNS and col not in TEACHER_COLUMNS and col != "__category_id":
            return f"条件读取 {col}，尚无 SQL 译法"
    comp = plan.comp
    applies: list[Any] = [*comp.ev.minimums, *comp.ev.waives, *comp.ev.transfers, *comp.ev.partials]
    for rule in applies:
        for col in match_columns(rule.applies_to):
            if col not in TEACHER_COLUMNS:
                return f"适用条件读取 {col}，尚无 SQL 译法"
    for cap in comp.ev.caps:
        if not isinstance(cap.target, Target):
            return "上限没有对象，尚无 SQL 译法"
    return None


# ---------------------------------------------------------------- SQL text


def _q(value: str) -> str:
    """A string literal (standard_conforming_strings: only quotes double)."""
    return "'" + value.replace("'", "''") + "'"


def _floordiv(a: str, b: str) -> str:
    """Floor division of exact integers (b > 0), as Python's ``//``:
    ``div`` truncates toward zero, and numeric ``/`` would round."""
    return f"(div({a}, {b}) - CASE WHEN mod({a}, {b}) < 0 THEN 1 ELSE 0 END)"


def _key_join(left: str, right: str, n: int) -> str:
    """Equality of the key columns k0… of two relations, NULL equal to NULL,
    in a form a hash join can use."""
    if n == 0:
        return "TRUE"
    return " AND ".join(f"coalesce({left}.k{i}, '') = coalesce({right}.k{i}, '') AND "
                        f"({left}.k{i} IS NULL) = ({right}.k{i} IS NULL)" for i in range(n))


def _or(parts: list[str]) -> str:
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


class _Run:
    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.count = 0

    def __call__(self, sql: str, params: Any = None) -> None:
        self.count += 1
        if params is None:
            self.cursor.execute(sql)
        else:
            self.cursor.execute(sql, params)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        self(sql)
        return list(self.cursor.fetchall())

    def table(self, name: str, select: str) -> None:
        self(f"CREATE TEMP TABLE {name} AS {select}")
        self(f"ANALYZE {name}")

    def load(self, name: str, columns: list[tuple[str, str, list[Any]]]) -> None:
        """A TEMP table from Python lists, one array parameter per column."""
        decl = ", ".join(f"{c} {t}" for c, t, _ in columns)
        self(f"CREATE TEMP TABLE {name} ({decl})")
        if columns and columns[0][2]:
            arrays = ", ".join(f"%s::{t}[]" for _, t, _ in columns)
            self(f"INSERT INTO {name} SELECT * FROM unnest({arrays})", [v for _, _, v in columns])
        self(f"ANALYZE {name}")


def _drop_all(run: _Run) -> None:
    names = run.rows("SELECT relname FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relkind = 'r' "
                     f"AND left(relname, {len(_PREFIX)}) = '{_PREFIX}'")
    for (name,) in names:
        run(f"DROP TABLE IF EXISTS {name}")


# ---------------------------------------------------------------- decisions


def _typed(text: str | None, kind: str) -> Any:
    """A key read back from its SQL text."""
    if text is None:
        return None
    if kind == "int":
        return int(text)
    if kind == "bool":
        return text == "true"
    return text


def _canonical(name: str, values: list[Any], comp: CompiledPolicy) -> list[Any]:
    """Vocabulary variants to canonical terms (an unknown term is an error,
    as in the batch evaluator); categories to their ids."""
    if name == "__category_id":
        return [comp.alias.get(v, v) if v is not None else None for v in values]
    if name not in vocab.ENUMS:
        return values
    mapping = {variant: canon for canon, variants in vocab.ENUMS[name].items() for variant in (canon, *variants)}
    out: list[Any] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        canon = mapping.get(v.strip())
        if canon is None:
            raise InputError(Problem(f"“{v}”不是可识别的取值", column=name))
        out.append(canon)
    return out


def _codes(name: str, kind: str, texts: list[str | None], comp: CompiledPolicy) -> tuple[Codes, np.ndarray]:
    """One key column of the distinct rows as the columnar path's codes."""
    values = _canonical(name, [_typed(t, kind) for t in texts], comp)
    distinct: dict[Any, int] = {}
    codes = np.array([distinct.setdefault((type(v).__name__, v), len(distinct)) for v in values], dtype=np.int64)
    stand_in = [v for _, v in distinct]
    dtype = pl.Int64 if kind == "int" else pl.Boolean if kind == "bool" else pl.Utf8
    return Codes(codes, stand_in or [None], dtype), codes


def _numeric_sql(expr: str, thresholds: set[Fraction]) -> str:
    """The stand-in of a numeric fact (see ``columnar._numeric_codes``): the
    largest candidate not above it, one below the smallest candidate if it is
    below them all."""
    if not thresholds:
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE 0 END"
    cand: set[int] = {0}
    for t in thresholds:
        lo, hi = math.floor(t), math.ceil(t)
        cand.update((lo - 1, lo, lo + 1, hi, hi + 1))
    points = sorted(cand, reverse=True)
    whens = " ".join(f"WHEN {expr} >= {p} THEN {p}" for p in points)
    return f"CASE WHEN {expr} IS NULL THEN NULL {whens} ELSE {points[-1] - 1} END"


# ---------------------------------------------------------------- the run


def evaluate_sql(cursor: Any, policy: Policy, as_of: dt.date, options: dict[str, str] | None = None, *,
                 teachers: str, records: str, leaves: str) -> SqlResult:
    """Evaluate every teacher of ``teachers`` inside PostgreSQL; the figures
    are left in the TEMP tables ``xf_out`` and ``xf_out_year`` of the
    cursor's session (see the module docstring).  Raises
    :class:`NotTranslatable` before touching the database when the policy has
    a rule without an SQL form."""
    comp = CompiledPolicy(policy, options, as_of)
    plan = Plan(comp)
    why = _why_not(plan)
    if why is not None:
        raise NotTranslatable(f"政策 {policy.id}：{why}")
    return _Translation(plan, _Run(cursor)).execute(teachers, records, leaves)


def release(cursor: Any) -> None:
    """Drop the TEMP tables of the last evaluation (they would otherwise last
    as long as the session)."""
    _drop_all(_Run(cursor))


def fetch(cursor: Any, result: SqlResult) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The figures as frames shaped like the batch output: per teacher
    ``teacher_id, passed, status, total_milli, cat:<category>``; per year
    ``teacher_id, year, passed, total_milli``."""
    cats = ", ".join(f"c_{i}" for i in range(len(result.categories)))
    cursor.execute(f"SELECT teacher_id, passed, status, total_milli, {cats} FROM xf_out ORDER BY teacher_id")
    rows = cursor.fetchall()
    names = ["teacher_id", "passed", "status", "total_milli", *(f"cat:{c}" for c in result.categories)]
    teachers = pl.DataFrame([list(r) for r in rows], schema=names, orient="row") if rows else pl.DataFrame(
        schema=names)
    cursor.execute("SELECT teacher_id, year, passed, total_milli FROM xf_out_year ORDER BY teacher_id, year")
    rows = cursor.fetchall()
    years = pl.DataFrame([list(r) for r in rows], schema=["teacher_id", "year", "passed", "total_milli"],
                         orient="row") if rows else pl.DataFrame(schema=["teacher_id", "year", "passed",
                                                                         "total_milli"])
    return teachers, years


class _Translation:
    def __init__(self, plan: Plan, run: _Run) -> None:
        self.plan = plan
        self.comp = plan.comp
        self.ev = plan.comp.ev
        self.run = run
        self.cs = self.comp.cycle_start
        self.ce = self.comp.cycle_end
        self.last = self.comp.last_year
        self.ncat = len(self.comp.categories)
        self.targets = {name.removeprefix("__m:"): f"m_{i}" for i, (name, _) in enumerate(plan.targets)}
        self.synthetic = leave_minimums(self.comp)
        self.bands: list[tuple[Any, int, list[int]]] = []  # (band table, common denominator, numerators)

    def execute(self, teachers: str, records: str, leaves: str) -> SqlResult:
        run = self.run
        _drop_all(run)
        run.table("xf_t", "SELECT row_number() OVER (ORDER BY teacher_id)::bigint AS t, teacher_id, "
                          "stage::text AS stage, post::text AS post, hired_year::integer AS hired_year, "
                          "transfer_in_year::integer AS transfer_in_year, normal_graduate::boolean AS normal_graduate "
                          f"FROM {teachers} s")
        run.table("xf_lv", "SELECT t.t, l.year::integer AS year, l.kind::text AS kind, "
                           f"coalesce(l.approved::boolean, TRUE) AS approved FROM {leaves} l "
                           "JOIN xf_t t ON t.teacher_id = l.teacher_id")
        self._teacher_table()
        self._record_tables(records)
        self._lines()
        self._route_crossing()
        year_final = self._year_scope()
        self._cycle_scope(year_final)
        routed = [r[0] for r in run.rows("SELECT t.teacher_id FROM xf_route r JOIN xf_t t USING (t) "
                                         "ORDER BY t.teacher_id")]
        evaluated = run.rows("SELECT count(*) FROM xf_out")[0][0]
        return SqlResult(list(self.comp.categories), int(evaluated), routed, run.count)

    # ------------------------------------------------------------ teachers

    def _teacher_table(self) -> None:
        """xf_tp: per teacher the applies_to masks (decided once per
        combination of teacher facts), the partial cycle, the start of her
        required years and her leave years."""
        comp, ev, run = self.comp, self.ev, self.run
        masks: list[tuple[str, Any]] = []
        for j, m in enumerate(ev.minimums):
            masks.append((f"mn_{j}", m.applies_to))
        for j, w in enumerate(ev.waives):
            masks.append((f"wv_{j}", w.applies_to))
        for j, tr in enumerate(ev.transfers):
            masks.append((f"tr_{j}", tr.applies_to))
        for j, pc in enumerate(ev.partials):
            masks.append((f"pc_{j}", pc.applies_to))
        cols: list[str] = sorted(set().union(*(match_columns(a) for _, a in masks)) if masks else set())
        keys = ", ".join(f"{c}::text AS k{i}" for i, c in enumerate(cols))
        texts = run.rows(f"SELECT DISTINCT {keys} FROM xf_t") if cols else [()]
        frame = pl.DataFrame({c: pl.Series(c, _canonical(c, [_typed(r[i], kind_of(c)) for r in texts], comp),
                                           dtype=pl.Int64 if kind_of(c) == "int" else
                                           pl.Boolean if kind_of(c) == "bool" else pl.Utf8)
                              for i, c in enumerate(cols)}) if cols else pl.DataFrame({"__dummy": [0]})
        decided = frame.with_columns([comp.teacher_match(a).alias(name) for name, a in masks]) if masks else frame
        table: list[tuple[str, str, list[Any]]] = [
            (f"k{i}", "text", [r[i] for r in texts]) for i in range(len(cols))]
        for name, _ in masks:
            table.append((name, "boolean", [bool(v) for v in decided.get_column(name).fill_null(False).to_list()]))
        if not table:
            table = [("dummy", "integer", [0])]
        run.load("xf_tm", table)
        mask_cols = "".join(f", tm.{name}" for name, _ in masks)
        # the partial cycle of each teacher: the first that applies, an
        # exclusive one ending the search where it applies at all
        p_case = []
        for i, pc in enumerate(ev.partials):
            base = "x.ty" if pc.start == "transfer_in_year" else "x.hy"
            begin = f"{base} + 1" if pc.start == "hired_year_next" else base
            p_case.append(f"WHEN x.pc_{i} AND {base} >= 0 AND {begin} > {self.cs} THEN {i}")
            if pc.exclusive:
                p_case.append(f"WHEN x.pc_{i} THEN -1")
        p_idx = f"CASE {' '.join(p_case)} ELSE -1 END" if p_case else "-1"
        begin_case = []
        for i, pc in enumerate(ev.partials):
            base = "z.ty" if pc.start == "transfer_in_year" else "z.hy"
            begin_case.append(f"WHEN {i} THEN {base}{' + 1' if pc.start == 'hired_year_next' else ''}")
        begin = f"CASE p_idx {' '.join(begin_case)} ELSE 0 END" if begin_case else "0"
        excl = [str(i) for i, pc in enumerate(ev.partials) if pc.pre_start_records == "exclude"]
        leave_counts = "".join(
            f", (SELECT count(DISTINCT l.year) FROM xf_lv l WHERE l.t = y.t AND l.kind IN "
            f"({', '.join(_q(k) for k in lr.kinds)}) AND l.year BETWEEN {self.cs} AND {self.ce}) AS nl_{li}"
            for li, lr in enumerate(ev.leaves) if lr.kinds)
        leave_counts += "".join(f", 0::bigint AS nl_{li}" for li, lr in enumerate(ev.leaves) if not lr.kinds)
        run.table("xf_tp", f"""
            SELECT y.*, CASE WHEN y.p_idx >= 0 THEN greatest(0, {self.ce} - y.bg + 1) ELSE 0 END AS n_owed,
                   CASE WHEN y.p_idx >= 0 THEN y.bg ELSE greatest({self.cs}, y.hy, y.ty) END AS st,
                   ({'y.p_idx IN (' + ', '.join(excl) + ')' if excl else 'FALSE'}) AS excl_pre{leave_counts}
            FROM (SELECT z.*, {begin} AS bg FROM (SELECT x.*, {p_idx} AS p_idx FROM (
                SELECT t.t, coalesce(t.hired_year, -1) AS hy, coalesce(t.transfer_in_year, -1) AS ty{mask_cols}
                FROM xf_t t JOIN xf_tm tm ON {_key_join_teacher(cols)}) x) z) y""")
        # per teacher and year of the cycle up to the evaluation date
        has_hire = any(m.scope == "hire_year" for m in ev.minimums)
        lidx = " ".join(f"WHEN EXISTS (SELECT 1 FROM xf_lv l WHERE l.t = p.t AND l.year = g.y AND l.kind IN "
                        f"({', '.join(_q(k) for k in lr.kinds)})) THEN {li}"
                        for li, lr in enumerate(ev.leaves) if lr.kinds)
        lidx_sql = f"CASE {lidx} ELSE -1 END" if lidx else "-1"
        years = f"""
            SELECT z.*, (z.lidx >= 0 AND z.req AND NOT z.hire_only) AS in_leave FROM (
                SELECT p.t, g.y, (g.y >= p.st) AS req,
                       (g.y < p.st AND g.y = p.hy AND {'TRUE' if has_hire else 'FALSE'}) AS hire_only,
                       {lidx_sql} AS lidx
                FROM xf_tp p CROSS JOIN generate_series({{first}}, {{last}}) AS g(y)) z"""
        run.table("xf_ty", years.format(first=self.cs, last=self.last))
        if self.last < self.ce:
            # the years still to come, with the same facts: whether one of
            # them has a requirement the cycle verdict needs (_cycle_scope)
            run.table("xf_ty_later", years.format(first=self.last + 1, last=self.ce))

    # ------------------------------------------------------------ records

    def _record_tables(self, records: str) -> None:
        """xf_rec: every record with its decisions and the year it counts in;
        xf_route: the teachers left for the Python evaluators."""
        plan, comp, run = self.plan, self.comp, self.run
        key_exprs: list[tuple[str, str, str]] = []  # (name in the decision frame, SQL, kind)
        for col in plan.key_cols:
            if col == "__category_id":
                key_exprs.append((col, "r.category", "str"))
            elif col in TEACHER_COLUMNS:
                key_exprs.append((col, f"t.{col}", kind_of(col)))
            else:
                key_exprs.append((col, f"r.{col}", kind_of(col)))
        for col in plan.numeric_cols:
            expr = f"(r.{col} * 1000)" if col in DECIMAL_FIELDS else f"r.{col}"
            name = f"__{col}_m" if col in DECIMAL_FIELDS else col
            key_exprs.append((name, _numeric_sql(expr, plan.numeric_keys[col]), "int"))
        fields = ", ".join(f"r.{c}::{_SQL_TYPE.get(_kind_of(c), 'text')} AS {c}" for c in _RECORD_COLUMNS)
        keys = "".join(f", ({sql})::text AS k{i}" for i, (_, sql, _) in enumerate(key_exprs))
        run.table("xf_r0", f"SELECT t.t, r.record_id::text AS rid, {fields}{keys} "
                           f"FROM {records} r JOIN xf_t t ON t.teacher_id = r.teacher_id")
        n = len(key_exprs)
        distinct = run.rows(f"SELECT DISTINCT {', '.join(f'k{i}' for i in range(n))} FROM xf_r0") if n else [()]
        names = [name for name, _, _ in key_exprs]
        cols: list[Codes] = []
        strides: list[int] = []
        present = np.zeros(len(distinct), dtype=np.int64)
        stride = 1
        for i, (name, _, kind) in enumerate(key_exprs):
            codes, code = _codes(name, kind, [r[i] for r in distinct], comp)
            cols.append(codes)
            strides.append(stride)
            present += code * stride
            stride *= len(codes.values)
            if stride >= 1 << 62:
                raise NotTranslatable("组合过多")
        # credit bands and absence shares read raw numbers: the columnar
        # tables have no form for them, so those policies get their own
        share = any(g.max_absence_share is not None for g in self.ev.gates)
        if not distinct:
            lut: dict[str, np.ndarray] = {}
        elif plan.numeric:
            lut = self._numeric_tables(names, cols, present, strides)
        else:
            lut = decision_tables(plan, names, cols, present, strides)
        m = len(distinct)
        failed = lut["failed"] if m else np.zeros(0, dtype=np.int64)
        combo: list[tuple[str, str, list[Any]]] = [("cid", "integer", list(range(m)))]
        combo += [(f"k{i}", "text", [r[i] for r in distinct]) for i in range(n)]
        combo += [("failed", "integer", [int(v) for v in failed]),
                  ("preset", "boolean", [bool(plan.preset_of[f]) and f >= 0 for f in failed.tolist()]),
                  ("excluded", "boolean", [bool(v) for v in lut.get("excluded", [])]),
                  ("route", "boolean", [bool(v) for v in lut.get("route", [])])]
        for name, col in self.targets.items():
            combo.append((col, "boolean", [bool(v) for v in lut.get(f"__m:{name}", [])]))
        for i in range(len(self.ev.attributions)):
            combo.append((f"attr_{i}", "boolean", [bool(v) for v in lut.get(f"attr{i}", [])]))
        if share:
            for i in range(len(self.ev.gates)):
                combo.append((f"gw_{i}", "boolean", [bool(v) for v in lut.get(f"gw{i}", [])]))
                combo.append((f"gr_{i}", "boolean", [bool(v) for v in lut.get(f"gr{i}", [])]))
        run.load("xf_combo", combo)
        slot: dict[str, list[Any]] = {c: [] for c in ("cid", "k", "cat", "qk", "num", "den", "dn", "dd",
                                                        "theme_rec", "theme")}
        for k in range(plan.max_outputs):
            if f"cat{k}" not in lut:
                continue
            for cid in range(m):
                cat = int(lut[f"cat{k}"][cid])
                if cat < 0:
                    continue  # no output k, or a category the policy does not count: no line
                slot["cid"].append(cid)
                slot["k"].append(k)
                slot["cat"].append(cat)
                slot["qk"].append(int(lut[f"qk{k}"][cid]))
                slot["num"].append(int(lut[f"num{k}"][cid]))
                slot["den"].append(int(lut[f"den{k}"][cid]))
                slot["dn"].append(int(lut[f"dn{k}"][cid]))
                slot["dd"].append(int(lut[f"dd{k}"][cid]))
                slot["theme_rec"].append(bool(lut[f"theme_rec{k}"][cid]))
                theme = lut[f"theme{k}"][cid]
                slot["theme"].append(None if theme is None else str(theme))
        types = {"cid": "integer", "k": "integer", "cat": "integer", "qk": "integer", "num": "numeric",
                 "den": "numeric", "dn": "numeric", "dd": "numeric", "theme_rec": "boolean", "theme": "text"}
        run.load("xf_slot", [(c, types[c], v) for c, v in slot.items()])
        # the year a record counts in: the first attribution rule that applies
        whens = []
        for i, a in enumerate(self.ev.attributions):
            cond = f"c.attr_{i} AND r.{a.field} IS NOT NULL"
            if a.require_leave:
                kinds = ", ".join(_q(k) for k in a.require_leave)
                cond += (f" AND EXISTS (SELECT 1 FROM xf_lv l WHERE l.t = r.t AND l.year = r.{a.field} "
                         f"AND l.approved AND l.kind IN ({kinds}))")
            whens.append(f"WHEN {cond} THEN r.{a.field}")
        year = f"CASE {' '.join(whens)} ELSE r.year END" if whens else "r.year"
        extra = "".join(f", c.{col}" for col in self.targets.values())
        if share:
            # the first failing gate, per record: an absence share compares two of its facts
            fails = []
            for i, g in enumerate(self.ev.gates):
                over = "FALSE"
                if g.max_absence_share is not None:
                    f = Fraction(g.max_absence_share)
                    over = (f"(coalesce(r.hours * 1000, 0) > 0 AND coalesce(r.absent_hours * 1000, 0) * {f.denominator}"
                            f" > r.hours * 1000 * {f.numerator})")
                fails.append(f"WHEN c.gw_{i} AND NOT (c.gr_{i} AND NOT {over}) THEN {i}")
            presets = " ".join(f"WHEN {i} THEN {'TRUE' if g.otherwise == 'preset' else 'FALSE'}"
                               for i, g in enumerate(self.ev.gates))
            run.table("xf_rec", f"""
                SELECT x.*, CASE x.failed {presets} ELSE FALSE END AS preset FROM (
                  SELECT r.*, c.cid, CASE {' '.join(fails)} ELSE -1 END AS failed, c.excluded, c.route{extra},
                         {year} AS ay
                  FROM xf_r0 r JOIN xf_combo c ON {_key_join('r', 'c', n)}) x""")
        else:
            run.table("xf_rec", f"SELECT r.*, c.cid, c.failed, c.preset, c.excluded, c.route{extra}, {year} AS ay "
                                f"FROM xf_r0 r JOIN xf_combo c ON {_key_join('r', 'c', n)}")
        fine = " OR ".join(f"(r.{c} * 1000) <> trunc(r.{c} * 1000)" for c in DECIMAL_FIELDS)
        leave_route = "UNION SELECT DISTINCT l.t FROM xf_lv l " if plan.route_leaves else ""
        # routed as in the batch evaluator: completion/penalty matches, finer
        # figures than thousandths, duplicate record ids, leave minimums the
        # batch form has not got
        run.table("xf_route", f"""
            SELECT DISTINCT r.t FROM xf_rec r WHERE r.route OR {fine}
            UNION SELECT r.t FROM xf_rec r GROUP BY r.t, r.rid HAVING count(*) > 1
            {leave_route}""")
        # a teacher without any record in the relation is evaluated too (all zero)

    def _lines(self) -> None:
        """xf_line: one line per record and conversion output in the cycle,
        its credits in exact thousandths, numbered in canonical order."""
        targets = "".join(f", r.{col}" for col in self.targets.values())
        hm, dm, cm = "(r.hours * 1000)", "(r.days * 1000)", "(r.credits * 1000)"
        qty = (f"CASE s.qk WHEN {CONST} THEN 1 WHEN {HOURS} THEN coalesce({hm}, 0) "
               f"WHEN {HOURS_OR_DAYS} THEN CASE WHEN {hm} IS NOT NULL THEN {hm} ELSE coalesce({dm}, 0) * s.dn END "
               f"WHEN {DAYS} THEN coalesce({dm}, 0) WHEN {TOPICS} THEN coalesce(r.topics, 0) * 1000 "
               f"WHEN {CREDITS} THEN coalesce({cm}, 0) {self._band_sql()}ELSE 0 END")
        den = f"CASE WHEN s.qk = {HOURS_OR_DAYS} AND r.hours IS NULL THEN s.den * s.dd ELSE s.den END"
        self.run.table("xf_line", f"""
            SELECT x.*, row_number() OVER (ORDER BY x.t, x.y, x.rid COLLATE "C", x.k) AS ord FROM (
              SELECT r.t, r.ay AS y, r.rid, s.k, s.cat, r.excluded, (r.failed < 0) AS passed,
                CASE WHEN r.failed < 0 THEN {_floordiv('2 * q.q * s.num + q.d', '2 * q.d')}
                     WHEN r.preset AND r.credits IS NOT NULL THEN {cm} ELSE 0 END::bigint AS milli,
                coalesce({hm}, 0)::bigint AS hours,
                CASE WHEN s.theme_rec THEN r.theme ELSE s.theme END AS theme{targets}
              FROM xf_rec r JOIN xf_slot s ON s.cid = r.cid
              CROSS JOIN LATERAL (SELECT ({qty})::numeric AS q, ({den})::numeric AS d) q
              WHERE r.ay BETWEEN {self.cs} AND {self.last} AND r.t NOT IN (SELECT t FROM xf_route)) x""")

    def _route_crossing(self) -> None:
        """Teachers with a line in two caps that cross join xf_route: the
        engine allocates those caps together (batch/stage2.crossing_teachers)."""
        for a, b in self.comp.cap_pairs:
            first, second = self._tm(a), self._tm(b)
            by = "t, y" if a.scope == "year" else "t"
            self.run(f"""
                INSERT INTO xf_route SELECT DISTINCT x.t FROM (
                  SELECT t FROM xf_line WHERE NOT excluded GROUP BY {by}
                  HAVING bool_or({first} AND {second}) AND bool_or({first} AND NOT {second})) x
                WHERE x.t NOT IN (SELECT t FROM xf_route)""")

    def _numeric_tables(self, names: list[str], cols: list[Codes], present: np.ndarray,
                        strides: list[int]) -> dict[str, np.ndarray]:
        """``columnar.decision_tables`` for a policy with credit bands or absence
        shares: the same decisions by the same expressions, except that a
        band's credits and an absence share are left to SQL per record —
        here a band output gets the quantity kind ``_BANDS + b`` and each
        gate its two conditions (``gw``: when, ``gr``: require)."""
        comp, plan, ev = self.comp, self.plan, self.ev
        data = {}
        for name, col, stride in zip(names, cols, strides, strict=True):
            code = (present // stride) % len(col.values)
            data[name] = pl.Series(name, [col.values[c] for c in code.tolist()], dtype=col.dtype)
        frame = pl.DataFrame(data) if data else pl.DataFrame({"__dummy": np.zeros(len(present))})
        for fact in ("hours", "absent_hours"):
            # read by the absence-share expression, whose answer SQL gives instead
            if f"__{fact}_m" not in frame.columns:
                frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias(f"__{fact}_m"))
        extra = []
        if plan.route_matches:
            extra.append(pl.any_horizontal([comp.match(m) for m in plan.route_matches]).alias("__route"))
        for i, a in enumerate(ev.attributions):
            extra.append(comp.match(a.when).alias(f"__attr{i}"))
        for i, g in enumerate(ev.gates):
            extra.append(comp.match(g.when).alias(f"__gw{i}"))
            extra.append((comp.match(g.require) if g.require is not None else pl.lit(True)).alias(f"__gr{i}"))
        frame = frame.with_columns(record_exprs(comp, plan.targets)).with_columns(extra)
        n = frame.height

        def arr(col: str, fill: Any = 0, dtype: Any = np.int64) -> np.ndarray:
            return np.asarray(frame.get_column(col).fill_null(fill).to_numpy(), dtype=dtype)

        out = {"failed": arr("__failed", -1), "excluded": arr("__excluded", False, bool),
               "mnum": arr("__mnum", 1), "mden": arr("__mden", 1),
               "route": arr("__route", False, bool) if plan.route_matches else np.zeros(n, dtype=bool)}
        for name, _ in plan.targets:
            out[name] = arr(name, False, bool)
        for i in range(len(ev.attributions)):
            out[f"attr{i}"] = arr(f"__attr{i}", False, bool)
        for i in range(len(ev.gates)):
            out[f"gw{i}"] = arr(f"__gw{i}", False, bool)
            out[f"gr{i}"] = arr(f"__gr{i}", False, bool)
        conv = arr("__conv", -1)
        for k in range(plan.max_outputs):
            cat = np.full(n, -1, dtype=np.int64)
            qk = np.full(n, CONST, dtype=np.int64)
            cn = np.zeros(n, dtype=object)
            cd = np.ones(n, dtype=object)
            dn = np.zeros(n, dtype=object)
            dd = np.ones(n, dtype=object)
            theme_rec = np.zeros(n, dtype=bool)
            theme = np.full(n, None, dtype=object)
            for i, c in enumerate(ev.conversions):
                outs = ev.outputs[c.id]
                rows = np.flatnonzero(conv == i)
                if len(outs) <= k or not len(rows):
                    continue
                o = outs[k]
                sub = frame[rows.tolist()]
                cats = sub.get_column("__category_id").cast(pl.Utf8).to_list() if o.category == "@record" \
                    else [o.category] * len(rows)
                cat[rows] = [comp.cat_index.get(v, -1) if v is not None else -1 for v in cats]
                theme_rec[rows] = o.theme == "@record"
                theme[rows] = o.theme if o.theme != "@record" else None
                if o.credits.bands is not None:
                    b, common = self._band(o.credits.bands)
                    qk[rows], cn[rows], cd[rows], dn[rows], dd[rows] = _BANDS + b, 1, common, 0, 1
                    continue
                kind, num_e, den_e, dn_v, dd_v = coefficient(comp, o.credits)
                values = sub.with_columns(num_e.alias("__cn"), den_e.alias("__cd"))
                qk[rows] = kind
                cn[rows] = values.get_column("__cn").fill_null(0).to_list()
                cd[rows] = values.get_column("__cd").fill_null(1).to_list()
                dn[rows], dd[rows] = dn_v, dd_v
            out[f"cat{k}"] = cat
            out[f"qk{k}"] = qk
            out[f"num{k}"] = cn * out["mnum"].astype(object)
            out[f"den{k}"] = cd * out["mden"].astype(object)
            out[f"dn{k}"] = dn
            out[f"dd{k}"] = dd
            out[f"theme_rec{k}"] = theme_rec
            out[f"theme{k}"] = theme
        return out

    def _band(self, bands: Any) -> tuple[int, int]:
        """(index, common denominator) of a band table, each table once."""
        for b, (known, common, _) in enumerate(self.bands):
            if known is bands:
                return b, common
        values = [Fraction(band.credits) * 1000 for band in bands.bands]
        common = math.lcm(*(v.denominator for v in values))
        self.bands.append((bands, common, [int(v * common) for v in values]))
        return len(self.bands) - 1, common

    def _band_sql(self) -> str:
        """The quantity of a band output: the numerator of the first band the
        fact falls in (the general path's ``credits_fraction``), 0 if none."""
        parts = []
        for b, (bands, _, numerators) in enumerate(self.bands):
            name = bands.field
            scale = 1000 if name in ("days", "hours") else 1
            col = f"(r.{name} * 1000)" if scale == 1000 else f"trunc(r.{name})"
            whens = []
            for band, numerator in zip(bands.bands, numerators, strict=True):
                lo = Fraction(band.min) * scale
                cond = f"{col} * {lo.denominator} >= {lo.numerator}"
                if band.max is not None:
                    hi = Fraction(band.max) * scale
                    cond += f" AND {col} * {hi.denominator} < {hi.numerator}"
                whens.append(f"WHEN {cond} THEN {numerator}")
            parts.append(f"WHEN {_BANDS + b} THEN CASE {' '.join(whens)} ELSE 0 END ")
        return "".join(parts)

    # ------------------------------------------------------------ stage 2

    def _tm(self, rule: Any) -> str:
        """SQL: the lines a rule's target covers (before the exclusion filter)."""
        t = rule.target
        if not isinstance(t, Target):
            return "TRUE"
        if t.match is not None:
            return self.targets[rule.id]
        if t.theme is not None:
            return f"coalesce(theme = {_q(t.theme)}, FALSE)"
        if t.themes is not None:
            return f"coalesce(theme IN ({', '.join(_q(x) for x in t.themes)}), FALSE)"
        if t.category is not None:
            return f"(cat = {self.comp.cat_index[t.category]})"
        assert t.categories is not None
        return f"(cat IN ({', '.join(str(self.comp.cat_index[c]) for c in t.categories)}))"

    def _caps(self, scope: str, source: str, group: str, name: str) -> str:
        """The caps of one scope, one TEMP table each, in the batch's order
        (plain caps before share-of-total); returns the last table.  Each
        cap's lines keep their amount ``a`` unless the cap covers them."""
        plain = sorted((c for c in self.ev.caps if c.scope == scope), key=lambda c: c.share_of_total is not None)
        caps = [(c, group, "") for c in plain]
        if scope == "year":
            # a cumulative cycle cap runs on through the teacher's years, after each year's own caps
            caps += [(c, "t", " AND in_cycle") for c in self.ev.caps if c.cumulative]
        prev = source
        base = "t, y, rid, k, cat, excluded, passed, milli, hours, theme, ord, in_cycle" + "".join(
            f", {c}" for c in self.targets.values())
        for j, (cap, by, only) in enumerate(caps):
            mask = f"({self._tm(cap)} AND NOT excluded{only})"
            w = f"PARTITION BY {by}"
            limits = []
            if cap.max is not None:
                mx = Fraction(cap.max) * 1000
                limits.append(str(mx.numerator // mx.denominator))  # a cap is never exceeded: round down
            if cap.share_of_total is not None:
                s = Fraction(cap.share_of_total)
                limits.append(_floordiv(f"coalesce(others, 0) * {s.numerator}", str(s.denominator - s.numerator)))
            amount = "a"
            if cap.highest_only:
                # only the first line of the highest amount in canonical order keeps it
                amount = f"CASE WHEN {mask} AND ord <> keep THEN 0 ELSE a END"
            lim = limits[0] if len(limits) == 1 else f"least({', '.join(limits)})" if limits else None
            if lim is None:
                clipped = "ah"
            else:
                clipped = (f"CASE WHEN {mask} THEN greatest(0, least({lim}, run)) - "
                           f"greatest(0, least({lim}, run - ah)) ELSE ah END")
            table = f"{name}_{j + 1}"
            self.run.table(table, f"""
                SELECT {base}, ({clipped})::bigint AS a FROM (
                  SELECT d.*, sum(ah) FILTER (WHERE {mask}) OVER ({w} ORDER BY ord ROWS UNBOUNDED PRECEDING) AS run
                  FROM (SELECT c.*, {amount} AS ah FROM (
                    SELECT b.*, min(ord) FILTER (WHERE {mask} AND a = hm) OVER ({w}) AS keep FROM (
                      SELECT p.*, max(a) FILTER (WHERE {mask}) OVER ({w}) AS hm,
                             sum(a) FILTER (WHERE NOT {mask} AND NOT excluded) OVER ({w}) AS others
                      FROM {prev} p) b) c) d) e""")
            prev = table
        return prev

    def _measures(self, reqs: list[Any]) -> tuple[list[str], list[str], dict[int, str]]:
        """Per requirement not read from the counted categories: the window
        columns over the scope's lines and the aggregate per group."""
        windows: list[str] = []
        aggs: list[str] = []
        out: dict[int, str] = {}
        for j, m in enumerate(reqs):
            target = m.target
            if m.measure == "credits":
                if target == "total" or target.category is not None or target.categories is not None:
                    continue
                aggs.append(f"sum(a) FILTER (WHERE {self._tm(m)} AND NOT excluded) AS ms_{j}")
                out[j] = f"ms_{j}"
                continue
            if target == "total":
                mask = "TRUE"
            elif target.match is not None:
                mask = self._tm(m)
            else:
                mask = f"({self._tm(m)} AND NOT excluded)"
            mask = f"{mask} AND passed"
            if m.measure == "earned_credits":
                aggs.append(f"sum(milli) FILTER (WHERE {mask}) AS ms_{j}")
            else:
                # hours / count: distinct records among the covered lines
                windows.append(f"min(k) FILTER (WHERE {mask}) OVER (PARTITION BY t, rid) AS fk_{j}")
                value = "hours" if m.measure == "hours" else "1000"
                aggs.append(f"sum({value}) FILTER (WHERE {mask} AND k = fk_{j}) AS ms_{j}")
            out[j] = f"ms_{j}"
        return windows, aggs, out

    def _counted(self, lines: str, groups: str, keys: list[str], reqs: list[Any], name: str) -> dict[int, str]:
        """{name}: per group the counted thousandths of every category
        (``c_<i>``) and the measures of the requirements that are not."""
        windows, aggs, out = self._measures(reqs)
        cats = [f"sum(a) FILTER (WHERE cat = {i} AND NOT excluded) AS c_{i}" for i in range(self.ncat)]
        inner = f"(SELECT l.*{''.join(', ' + w for w in windows)} FROM {lines} l)" if windows else lines
        cols = ", ".join(f"coalesce(a.c_{i}, 0)::bigint AS c_{i}" for i in range(self.ncat))
        cols += "".join(f", coalesce(a.{v}, 0)::bigint AS {v}" for v in out.values())
        on = " AND ".join(f"a.{k} = g.{k}" for k in keys)
        self.run.table(name, f"""
            SELECT g.*, {cols} FROM {groups} g LEFT JOIN (
              SELECT {', '.join(keys)}, {', '.join(cats + aggs)} FROM {inner} s GROUP BY {', '.join(keys)}) a
            ON {on}""")
        return out

    def _requirements(self, scope: str) -> list[tuple[Any, str, str]]:
        """(minimum, applies, required thousandths) per requirement of the
        scope, as SQL over a group row ``g`` joined with its teacher ``p``."""
        ev = self.ev
        out: list[tuple[Any, str, str]] = []

        def waived(m: Minimum) -> str:
            return _or([f"p.wv_{i}" for i, w in enumerate(ev.waives) if m.id in w.rules])

        for j, m in enumerate(ev.minimums):
            base = f"p.mn_{j} AND NOT {waived(m)}"
            if scope == "year":
                if m.scope == "year":
                    applies = f"{base} AND g.req AND NOT g.in_leave AND NOT g.hire_only"
                elif m.scope == "hire_year":
                    applies = f"{base} AND g.y = p.hy AND (g.req OR g.hire_only) AND NOT g.in_leave"
                else:
                    continue
                out.append((m, applies, str(milli_of(m.min))))
            elif m.scope == "cycle":
                out.append((m, *self._cycle_value(m, base)))
        if scope == "year":
            for li, syns in self.synthetic.items():
                for syn in syns:
                    out.append((syn, f"g.in_leave AND g.lidx = {li}", str(milli_of(syn.min))))
        return out

    def _cycle_value(self, m: Minimum, applies: str) -> tuple[str, str]:
        """A cycle minimum's applicability and size: partial cycles prorate
        or replace it, leave years reduce it."""
        ev = self.ev
        ncs = self.comp.policy.cycle.years
        value = str(milli_of(m.min))
        if m.measure != "credits":
            return applies, value
        cases = []
        for i, pc in enumerate(ev.partials):
            if pc.structure == "total_only":
                if m.target == "total":
                    assert pc.per_year is not None
                    cases.append(f"WHEN {i} THEN {milli_of(pc.per_year)} * p.n_owed")
                else:
                    applies = f"{applies} AND p.p_idx <> {i}"
            elif m.target == "total" and pc.per_year is not None:
                cases.append(f"WHEN {i} THEN {milli_of(pc.per_year)} * p.n_owed")
            else:
                base_m = milli_of(m.min)
                cases.append(f"WHEN {i} THEN {_floordiv(f'2 * {base_m} * p.n_owed + {ncs}', str(2 * ncs))}")
        if cases:
            value = f"CASE p.p_idx {' '.join(cases)} ELSE {value} END"
        key = "total" if m.target == "total" else (m.target.category if isinstance(m.target, Target) else None)
        if key is not None:
            for li, lr in enumerate(ev.leaves):
                cut = lr.cycle_reduction.get(key)
                if cut:
                    value = (f"CASE WHEN p.nl_{li} > 0 THEN greatest(0, ({value}) - {milli_of(cut)} * p.nl_{li}) "
                             f"ELSE ({value}) END")
        return applies, value

    def _verdicts(self, scope: str, counted: str, keys: list[str], reqs: list[tuple[Any, str, str]],
                  measures: dict[int, str], name: str) -> None:
        """{name}: per group the categories after the transfers of the scope,
        each requirement met or not, and the group's verdicts."""
        ev, comp = self.ev, self.comp
        on = " AND ".join(f"p.{k} = g.{k}" for k in keys if k == "t")
        req_cols = "".join(f", ({applies}) AS ap_{j}, CASE WHEN {applies} THEN {value} ELSE 0 END AS rq_{j}"
                           for j, (_, applies, value) in enumerate(reqs))
        req_cols += "".join(f", p.tr_{ti} AS tr_{ti}" for ti in range(len(ev.transfers)))
        cats = [f"c_{i}" for i in range(self.ncat)]
        rest = [*keys, *measures.values(), *(f"ap_{j}" for j in range(len(reqs))),
                *(f"rq_{j}" for j in range(len(reqs))), *(f"tr_{ti}" for ti in range(len(ev.transfers)))]
        # each step materialised: inlined, every step would repeat the
        # expressions of all the steps before it, several times over
        ctes = [f"s0 AS MATERIALIZED (SELECT g.*{req_cols} FROM {counted} g JOIN xf_tp p ON {on})"]
        # the engine's transfers reserve each category's minimum as it applies to the group
        mins: dict[str, str] = {}
        for j, (m, _, _) in enumerate(reqs):
            if isinstance(m.target, Target) and m.target.category and m.measure == "credits":
                mins[m.target.category] = f"CASE WHEN ap_{j} THEN rq_{j} ELSE {mins.get(m.target.category, '0')} END"
        step = 0
        for ti, tr in enumerate(ev.transfers):
            if tr.scope not in (scope, "both"):
                continue
            to = comp.cat_index[tr.to]
            for src in tr.from_:
                si = comp.cat_index[src]
                reserve = str(milli_of(tr.above)) if tr.above is not None else mins.get(src, "0")
                available = f"greatest(0, c_{si} - ({reserve}))"
                if tr.mode == "overflow":
                    move = available
                else:
                    need = f"greatest(0, ({mins.get(tr.to, '0')}) - c_{to})"
                    move = f"least({available}, {need})"
                move = f"CASE WHEN tr_{ti} THEN {move} ELSE 0 END"
                new = [f"c_{i} - mv AS c_{i}" if i == si else f"c_{i} + mv AS c_{i}" if i == to else f"c_{i}"
                       for i in range(self.ncat)] if si != to else cats
                ctes.append(f"s{step + 1} AS MATERIALIZED (SELECT {', '.join([*rest, *new])} FROM ("
                            f"SELECT s{step}.*, {move} AS mv FROM s{step}) x)")
                step += 1
        met = []
        binding = []
        for j, (m, _, _) in enumerate(reqs):
            target = m.target
            if j in measures:
                actual = measures[j]
            elif target == "total":
                actual = " + ".join(cats) if cats else "0"
            elif target.category is not None:
                actual = f"c_{comp.cat_index[target.category]}"
            else:
                actual = " + ".join(f"c_{comp.cat_index[c]}" for c in target.categories)
            cond = f"(NOT ap_{j} OR ({actual}) >= rq_{j})"
            met.append(cond)
            if scope == "year" and self.ev.binds(m):
                binding.append(cond)
        ok = " AND ".join(met) if met else "TRUE"
        has = _or([f"ap_{j}" for j in range(len(reqs))])
        total = " + ".join(cats) if cats else "0"
        self.run.table(name, f"""
            WITH {', '.join(ctes)}
            SELECT {', '.join(keys)}, {', '.join(cats)}, ({total})::bigint AS total_milli, ({ok}) AS ok,
                   ({has}) AS has, ({' AND '.join(binding) if binding else 'TRUE'}) AS binding
            FROM s{step}""")

    def _year_scope(self) -> str:
        run = self.run
        run.table("xf_yl_0", """
            SELECT l.*, NOT (p.excl_pre AND l.y < p.st) AS in_cycle, l.milli AS a
            FROM xf_line l JOIN xf_tp p USING (t) JOIN xf_ty g ON g.t = l.t AND g.y = l.y
            WHERE NOT (p.excl_pre AND l.y < p.st) OR g.hire_only""")
        final = self._caps("year", "xf_yl_0", "t, y", "xf_yl")
        reqs = self._requirements("year")
        measures = self._counted(final, "xf_ty", ["t", "y"], [m for m, _, _ in reqs], "xf_yc")
        self._verdicts("year", "xf_yc", ["t", "y"], reqs, measures, "xf_yv")
        run.table("xf_out_year", """
            SELECT t.teacher_id, v.t, v.y AS year, CASE WHEN v.has THEN v.ok END AS passed, v.total_milli
            FROM xf_yv v JOIN xf_t t USING (t) WHERE v.t NOT IN (SELECT t FROM xf_route)""")
        run("CREATE INDEX ON xf_out_year (t, year)")  # callers look up a teacher's years
        return final

    def _cycle_scope(self, year_final: str) -> None:
        comp, run = self.comp, self.run
        # year caps carry into the cycle
        run.table("xf_cl_0", f"SELECT * FROM {year_final} WHERE in_cycle")
        final = self._caps("cycle", "xf_cl_0", "t", "xf_cl")
        reqs = self._requirements("cycle")
        measures = self._counted(final, "(SELECT t FROM xf_tp)", ["t"], [m for m, _, _ in reqs], "xf_cc")
        self._verdicts("cycle", "xf_cc", ["t"], reqs, measures, "xf_cv")
        later = [applies for m, applies, _ in self._requirements("year") if self.ev.binds(m)]
        if self.last < self.ce and later:
            run.table("xf_left", f"""
                SELECT g.t, bool_or({_or(later)}) AS pending
                FROM xf_ty_later g JOIN xf_tp p USING (t) GROUP BY g.t""")
            left_join, pending = "LEFT JOIN xf_left l USING (t)", "coalesce(l.pending, FALSE)"
        else:
            left_join, pending = "", "FALSE"
        before_end = comp.as_of < dt.date(comp.cycle_end, 12, 31)
        cats = "".join(f", v.c_{i}" for i in range(self.ncat))
        passed = f"(v.ok AND coalesce(b.binding, TRUE) AND NOT {pending})"
        run.table("xf_out", f"""
            SELECT t.teacher_id, v.t, x.passed,
                   CASE WHEN x.passed THEN {_q(status_of(True, before_end))}
                        ELSE {_q(status_of(False, before_end))} END AS status,
                   v.total_milli{cats}
            FROM xf_cv v JOIN xf_t t USING (t)
            LEFT JOIN (SELECT t, bool_and(binding) AS binding FROM xf_yv GROUP BY t) b USING (t)
            {left_join}
            CROSS JOIN LATERAL (SELECT {passed} AS passed) x
            WHERE v.t NOT IN (SELECT t FROM xf_route)""")


def _kind_of(column: str) -> str:
    from xuefen.model import RECORD_FIELDS

    return RECORD_FIELDS[column][1]


def _key_join_teacher(cols: list[str]) -> str:
    if not cols:
        return "TRUE"
    return " AND ".join(f"coalesce(t.{c}::text, '') = coalesce(tm.k{i}, '') AND (t.{c} IS NULL) = (tm.k{i} IS NULL)"
                        for i, c in enumerate(cols))
