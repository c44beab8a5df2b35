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

Two methods compute the figures.  ``sql`` (the default on PostgreSQL) runs the
policy translated to SQL (``xuefen.batch.sql``) over the ledger tables and
compares the figures with the stored results inside the database, so only the
ids of the teachers whose figures differ come back to Python; a policy the
translation does not cover, and the teachers it leaves for the Python
evaluators, go through the batch evaluator as before (counted in
``Outcome.routed``).  ``batch`` (the default on SQLite) reads the counting
records into one frame and runs the batch evaluator.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl
from django.db import connection

from xuefen.batch import evaluate_frame
from xuefen.batch.sql import NotTranslatable, evaluate_sql, release
from xuefen.model import RECORD_FIELDS
from xuefen.policy.loader import default_registry
from xuefen.policy.schema import Policy
from xuefen.web.models import Org, Record, Teacher, TeacherResult
from xuefen.web.permissions import COUNTING
from xuefen.web.services.evaluation import FACT_FIELDS, Policies, evaluator, refresh_results

# Ids per query: SQLite caps the parameters of one statement.
_CHUNK = 500


METHODS = ("sql", "batch")


@dataclass
class Outcome:
    teachers: int  # teachers under the unit
    unchanged: int  # figures confirmed (by SQL or the batch evaluator): nothing written
    refreshed: int  # re-evaluated and stored one by one
    seconds: float
    method: str = "batch"
    routed: int = 0  # with the sql method: teachers handed to the Python batch evaluator instead


def default_method() -> str:
    return "sql" if connection.vendor == "postgresql" else "batch"


def reevaluate(org: Org | None = None, today: dt.date | None = None, method: str | None = None, *,
               policy: str | None = None, bound_here: bool = False) -> Outcome:
    """Bring every stored result under ``org`` (everything when None) in line
    with the policies as they are bound today.

    Only the teachers a change can affect are read: with ``policy`` (a policy
    id or jurisdiction code: after that policy's file changed), those whose
    school is bound to it; with ``bound_here`` (after ``org``'s own binding
    or options changed), those under ``org`` whose school takes its policy
    from ``org`` — a unit below that binds its own policy is not touched."""
    method = method or default_method()
    if method not in METHODS:
        raise ValueError(f"未知的评估方式：{method}（可选 {'、'.join(METHODS)}）")
    if method == "sql" and connection.vendor != "postgresql":
        raise ValueError("SQL 评估方式需要 PostgreSQL 数据库；SQLite 上请用 batch")
    if policy is not None:
        registry = default_registry()
        if policy not in registry.policies and not registry.family(policy):
            raise ValueError(f"没有编号或辖区代码为 {policy} 的政策（可用：{'、'.join(sorted(registry.policies))}）")
    started = time.perf_counter()
    policies = Policies(today)
    everyone = _affected(org, policies, policy, bound_here)
    policies.prefetch({t.school_id: t.school for t in everyone}.values())
    groups: dict[tuple[str, dt.date, tuple[tuple[str, str], ...]], list[Teacher]] = defaultdict(list)
    chosen: dict[tuple[str, dt.date, tuple[tuple[str, str], ...]], tuple[Policy, dict[str, str]]] = {}
    stale: list[Teacher] = []
    for t in everyone:
        picked = policies.for_school(t.school)
        if picked is None:
            stale.append(t)  # no policy: refresh_result removes any stored result
            continue
        bound, as_of, options = picked
        key = (bound.id, as_of, tuple(sorted(options.items())))
        groups[key].append(t)
        chosen[key] = (bound, options)
    unchanged = 0
    routed = 0
    for key, members in groups.items():
        bound, options = chosen[key]
        if method == "sql":
            confirmed, by_batch = _confirmed_sql(bound, key[1], options, members)
            routed += by_batch
        else:
            confirmed = _confirmed(bound, key[1], options, members)
        unchanged += len(confirmed)
        stale += [t for t in members if t.pk not in confirmed]
    refreshed = refresh_results(stale, today) if stale else 0
    return Outcome(len(everyone), unchanged, refreshed, time.perf_counter() - started, method, routed)


def _affected(org: Org | None, policies: Policies, policy: str | None, bound_here: bool) -> list[Teacher]:
    """The teachers to re-evaluate, in id order, found through their schools:
    a province has a thousand times fewer schools than teachers, and the
    teachers are then read by school, through the index."""
    teachers = Teacher.objects.select_related("school").order_by("pk")
    if policy is None and not bound_here:
        if org is not None:
            teachers = teachers.filter(school__path__startswith=org.path)
        return list(teachers)
    # every unit, not only schools: a teacher's school is whatever unit she is filed under
    units = Org.objects.all() if org is None else Org.objects.filter(path__startswith=org.path)
    picked = list(units)
    if bound_here and org is not None:
        # a binding strictly below org shadows org's for the schools under it
        below = [o.path for o in Org.objects.filter(path__startswith=org.path).exclude(pk=org.pk).exclude(policy="")]
        picked = [s for s in picked if not any(s.path.startswith(p) for p in below)]
    if policy is not None:
        policies.prefetch(picked)
        picked = [s for s in picked if _bound_to(policies, s, policy)]
    ids = sorted(s.pk for s in picked)
    out: list[Teacher] = []
    for i in range(0, len(ids), _CHUNK):
        out += teachers.filter(school_id__in=ids[i:i + _CHUNK])
    out.sort(key=lambda t: t.pk)
    return out


def _bound_to(policies: Policies, school: Org, name: str) -> bool:
    binding = policies.binding(school)
    if binding is None:
        return False
    if binding.policy == name:
        return True
    chosen = policies.for_school(school)
    return chosen is not None and name in (chosen[0].id, chosen[0].jurisdiction.code)


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


# ------------------------------------------------------------------ SQL method

_STR_FIELDS = [f for f in FACT_FIELDS if f != "title" and RECORD_FIELDS[f][1] in ("str", "enum")]
_OTHER_FIELDS = [f for f in FACT_FIELDS if f != "title" and f not in _STR_FIELDS]
_MEMBERS = "reeval_members"  # not xf_: evaluate_sql drops its own TEMP tables
_STORED = "reeval_stored"


def _counting() -> str:
    # the statuses are the model's own constants, not input
    return ", ".join("'" + str(s).replace("'", "''") + "'" for s in COUNTING)


def _relations() -> tuple[str, str, str]:
    """The ledger as the three relations evaluate_sql reads: the members with
    a counting record, their counting records, their leave.  The members'
    own rows are copied first (``_copy_members``): joined to the teacher
    table, a few thousand members of a province made PostgreSQL scan all
    its teachers (0.6 s at a million), where each members' records are
    found through the index."""
    record = Record._meta.db_table
    facts = ", ".join([*(f"NULLIF(r.{f}, '') AS {f}" for f in _STR_FIELDS), *(f"r.{f}" for f in _OTHER_FIELDS)])
    teachers = (
        f"(SELECT t.id AS teacher_id, NULLIF(t.stage, '') AS stage, NULLIF(t.post, '') AS post, t.hired_year, "  # noqa: S608
        f"t.transfer_in_year, t.normal_graduate FROM {_MEMBERS} t "
        f"WHERE EXISTS (SELECT 1 FROM {record} r WHERE r.teacher_id = t.id AND r.status IN ({_counting()})))")
    records = (f"(SELECT r.teacher_id, r.uid AS record_id, r.preset_credits AS credits, {facts} "  # noqa: S608
               f"FROM {record} r JOIN {_MEMBERS} m ON m.id = r.teacher_id WHERE r.status IN ({_counting()}))")
    # leave entries as engine_teacher reads them: approved unless it says otherwise (Python truthiness)
    approved = ("CASE jsonb_typeof(e -> 'approved') WHEN 'boolean' THEN (e ->> 'approved')::boolean "
                "WHEN 'null' THEN FALSE WHEN 'string' THEN (e ->> 'approved') <> '' "
                "WHEN 'number' THEN (e ->> 'approved')::numeric <> 0 "
                "WHEN 'array' THEN jsonb_array_length(e -> 'approved') > 0 "
                "WHEN 'object' THEN (e -> 'approved') <> '{}'::jsonb ELSE TRUE END")
    leaves = (f"(SELECT t.id AS teacher_id, (e ->> 'year')::integer AS year, e ->> 'kind' AS kind, "  # noqa: S608
              f"{approved} AS approved FROM {_MEMBERS} t CROSS JOIN LATERAL "
              "jsonb_array_elements(CASE WHEN jsonb_typeof(t.leaves::jsonb) = 'array' THEN t.leaves::jsonb "
              "ELSE '[]'::jsonb END) AS e)")
    return teachers, records, leaves


def _mismatches(cursor: Any, policy: Policy, options: dict[str, str], categories: list[str]) -> set[int]:
    """The teachers of xf_out whose stored result differs from the figures
    (the comparison of ``_same``, inside the database)."""
    result = _STORED
    counted = ", ".join(f"o.c_{i}" for i in range(len(categories))) or "NULL::bigint"

    def obj(expr: str) -> str:
        return f"CASE WHEN jsonb_typeof({expr}) = 'object' THEN {expr} ELSE '{{}}'::jsonb END"

    same = f"""
        r.policy_id = %s AND r.data -> 'options' = %s::jsonb
        AND r.passed = o.passed AND r.status = o.status AND trunc(r.total * 1000) = o.total_milli
        AND NOT EXISTS (SELECT 1 FROM jsonb_each({obj("r.data -> 'categories'")}) AS e
            WHERE NOT coalesce(trunc((e.value ->> 'counted')::numeric * 1000)
                               = (ARRAY[{counted}])[array_position(%s::text[], e.key)], FALSE))
        AND (SELECT count(*) FROM jsonb_object_keys({obj("r.data -> 'years'")})) = coalesce(n.years, 0)
        AND NOT EXISTS (SELECT 1 FROM jsonb_each({obj("r.data -> 'years'")}) AS e
            LEFT JOIN xf_out_year y ON y.t = o.t AND y.year::text = e.key
            WHERE NOT coalesce(y.t IS NOT NULL AND (e.value -> 'passed') = coalesce(to_jsonb(y.passed), 'null'::jsonb)
                               AND trunc((e.value ->> 'total')::numeric * 1000) = y.total_milli, FALSE))"""  # noqa: S608
    query = (f"SELECT o.teacher_id FROM xf_out o LEFT JOIN {result} r ON r.teacher_id = o.teacher_id "  # noqa: S608
             "LEFT JOIN (SELECT t, count(*) AS years FROM xf_out_year GROUP BY t) n ON n.t = o.t "
             f"WHERE NOT coalesce(({same}), FALSE)")
    cursor.execute(query, [policy.id, json.dumps(options), categories])
    return {int(row[0]) for row in cursor.fetchall()}


def _copy_members(cursor: Any, ids: list[int]) -> None:
    """The members' teacher rows and stored results as TEMP tables, each read
    through its table's index (``= ANY``)."""
    teacher, result = Teacher._meta.db_table, TeacherResult._meta.db_table
    cursor.execute(f"DROP TABLE IF EXISTS {_MEMBERS}, {_STORED}")
    cursor.execute(f"CREATE TEMP TABLE {_MEMBERS} AS SELECT id, stage, post, hired_year, transfer_in_year, "  # noqa: S608
                   f"normal_graduate, leaves FROM {teacher} WHERE id = ANY(%s::bigint[])", [ids])
    cursor.execute(f"ALTER TABLE {_MEMBERS} ADD PRIMARY KEY (id)")
    cursor.execute(f"CREATE TEMP TABLE {_STORED} AS SELECT teacher_id, policy_id, passed, status, total, data "  # noqa: S608
                   f"FROM {result} WHERE teacher_id = ANY(%s::bigint[])", [ids])
    cursor.execute(f"ALTER TABLE {_STORED} ADD PRIMARY KEY (teacher_id)")
    cursor.execute(f"ANALYZE {_MEMBERS}")
    cursor.execute(f"ANALYZE {_STORED}")


def _confirmed_sql(policy: Policy, as_of: dt.date, options: dict[str, str],
                   members: list[Teacher]) -> tuple[set[int], int]:
    """The teachers whose stored result the SQL translation reproduces, and
    how many of them the Python batch evaluator had to compute instead."""
    resolved = evaluator(policy, options).options
    teachers, records, leaves = _relations()
    with connection.cursor() as cursor:
        _copy_members(cursor, [t.pk for t in members])
        try:
            result = evaluate_sql(cursor, policy, as_of, options, teachers=teachers, records=records, leaves=leaves)
        except NotTranslatable:
            cursor.execute(f"DROP TABLE {_MEMBERS}, {_STORED}")
            return _confirmed(policy, as_of, options, members), len(members)
        cursor.execute("SELECT teacher_id FROM xf_out")
        evaluated = {int(row[0]) for row in cursor.fetchall()}
        confirmed = evaluated - _mismatches(cursor, policy, resolved, result.categories)
        cursor.execute(f"DROP TABLE {_MEMBERS}, {_STORED}")
        release(cursor)
    routed = {int(pk) for pk in result.routed}
    if routed:
        confirmed |= _confirmed(policy, as_of, options, [t for t in members if t.pk in routed])
    return confirmed, len(routed)
