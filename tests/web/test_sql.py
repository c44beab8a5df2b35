"""Differential tests of the SQL translation (``xuefen.batch.sql``) on
PostgreSQL: over random ledgers, for every policy it translates, the figures
computed inside the database equal the per-teacher engine's for every teacher
(verdict, status, cycle total, every category, every year), and the teachers
it leaves for the Python evaluators are exactly those the batch evaluator
routes.  On SQLite these tests skip: the translation is PostgreSQL's."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.test_batch import (
    REGISTRY,
    as_of_for,
    case_populations,
    cases_with_years_to_come,
    engine_rows,
    flat_frame,
    populations,
)

from xuefen.batch import evaluate_frame
from xuefen.batch.sql import evaluate_sql, fetch, untranslatable
from xuefen.engine.evaluate import Evaluator
from xuefen.model import RECORD_FIELDS, Record, Teacher
from xuefen.policy.schema import Policy

POLICIES = sorted(REGISTRY.policies)
TRANSLATED = [p for p in POLICIES if untranslatable(REGISTRY.policies[p], None, as_of_for(REGISTRY.policies[p])) is None]

_FIELDS = [k for k in RECORD_FIELDS if k not in ("id", "title")]
_TYPES = {"decimal": "numeric(9, 3)", "year": "integer", "int": "bigint", "bool": "boolean"}
SQL_PATH: dict[str, int] = {}


def _postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQL 译法只在 PostgreSQL 上运行（DATABASE_URL 未指向 PostgreSQL）")


def load(cursor: Any, population: list[tuple[Teacher, list[Record]]]) -> None:
    """The population as three TEMP tables in the shape evaluate_sql reads."""
    for name in ("in_teacher", "in_record", "in_leave"):
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
    cursor.execute("CREATE TEMP TABLE in_teacher (teacher_id text, stage text, post text, hired_year integer, "
                   "transfer_in_year integer, normal_graduate boolean)")
    cols = ", ".join(f"{k} {_TYPES.get(RECORD_FIELDS[k][1], 'text')}" for k in _FIELDS)
    cursor.execute(f"CREATE TEMP TABLE in_record (teacher_id text, record_id text, {cols})")
    cursor.execute("CREATE TEMP TABLE in_leave (teacher_id text, year integer, kind text, approved boolean)")
    teachers = [(t.id, t.stage, t.post, t.hired_year, t.transfer_in_year, t.normal_graduate)
                for t, records in population if records]
    if teachers:
        cursor.executemany("INSERT INTO in_teacher VALUES (%s, %s, %s, %s, %s, %s)", teachers)
    rows = [(t.id, r.id, *(getattr(r, k) for k in _FIELDS)) for t, records in population for r in records]
    if rows:
        marks = ", ".join(["%s"] * (len(_FIELDS) + 2))
        cursor.executemany(f"INSERT INTO in_record VALUES ({marks})", rows)
    leaves = [(t.id, lv.year, lv.kind, lv.approved) for t, records in population if records for lv in t.leaves]
    if leaves:
        cursor.executemany("INSERT INTO in_leave VALUES (%s, %s, %s, %s)", leaves)


def expected_rows(policy: Policy, population: list[tuple[Teacher, list[Record]]], as_of: dt.date,
                  options: dict[str, str]) -> dict[str, Any]:
    if not options:
        return engine_rows(policy, population, as_of)
    ev = Evaluator(policy, options)
    out = {}
    for teacher, records in population:
        e = ev.evaluate(teacher, records, as_of)
        out[teacher.id] = {
            "passed": e.passed, "status": e.status, "total_milli": int(e.total * 1000),
            **{f"cat:{c}": int(e.cycle.counted[c] * 1000) for c in e.cycle.counted},
            "years": {y: (sc.passed, int(sc.total * 1000)) for y, sc in e.years.items()},
        }
    return out


def compare(policy_id: str, population: list[tuple[Teacher, list[Record]]], options: dict[str, str]) -> None:
    policy = REGISTRY.policies[policy_id]
    as_of = as_of_for(policy)
    if untranslatable(policy, options, as_of) is not None:
        return
    with connection.cursor() as cursor:
        load(cursor, population)
        result = evaluate_sql(cursor, policy, as_of, options, teachers="in_teacher", records="in_record",
                              leaves="in_leave")
        teachers, years = fetch(cursor, result)
    expected = expected_rows(policy, [(t, r) for t, r in population if r], as_of, options)
    got = {row["teacher_id"]: row for row in teachers.to_dicts()}
    routed = set(result.routed)
    assert set(got) | routed == set(expected)
    assert not set(got) & routed
    assert result.evaluated == len(got)
    # the teachers left for the Python evaluators are those the batch evaluator routes
    frame = flat_frame(population).filter(flat_frame(population)["record_id"].is_not_null())
    if frame.height:
        batch = evaluate_frame(policy, frame, as_of, options)
        assert routed == {r["teacher_id"] for r in batch.teachers.to_dicts() if r["routed"]}
    got_years: dict[str, dict[int, tuple[bool | None, int]]] = {}
    for row in years.to_dicts():
        got_years.setdefault(row["teacher_id"], {})[row["year"]] = (row["passed"], row["total_milli"])
    for tid, row in got.items():
        exp = expected[tid]
        for key in ("passed", "status", "total_milli", *(k for k in exp if k.startswith("cat:"))):
            assert row[key] == exp[key], (tid, key, row, exp)
        assert got_years.get(tid, {}) == exp["years"], (tid, got_years.get(tid), exp["years"])
    SQL_PATH[policy_id] = SQL_PATH.get(policy_id, 0) + len(got)


@pytest.mark.django_db
@pytest.mark.postgres
@pytest.mark.parametrize("policy_id", TRANSLATED)
@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_sql_equals_engine_on_random_ledgers(policy_id: str, data: st.DataObject) -> None:
    _postgres()
    policy = REGISTRY.policies[policy_id]
    # the platform evaluates with each binding's options: any of the policy's choices
    options = {o.id: data.draw(st.sampled_from(sorted(o.choices))) for o in policy.options
               if data.draw(st.booleans())}
    compare(policy_id, data.draw(populations(policy)), options)


@pytest.mark.django_db
@pytest.mark.parametrize("policy_id", TRANSLATED)
def test_the_random_ledgers_exercised_the_sql_path(policy_id: str) -> None:
    _postgres()
    if policy_id not in SQL_PATH:
        pytest.skip("the differential test did not run in this session")
    assert SQL_PATH[policy_id] > 20, SQL_PATH


def test_every_policy_is_translated() -> None:
    # a policy that stops translating must be noticed: it would fall back to the batch evaluator
    assert TRANSLATED == POLICIES


# autocommit: each case's TEMP tables are dropped and made again, and inside one
# transaction their locks would add up past max_locks_per_transaction
@pytest.mark.django_db(transaction=True)
def test_policy_cases_through_sql() -> None:
    """Every teacher of every case file of a translated policy (teachers
    built to hit each article), SQL against the engine."""
    _postgres()
    seen = 0
    for policy_id in TRANSLATED:
        policy = REGISTRY.get(policy_id)
        for case, population in case_populations(policy_id):
            teacher = population[0][0]
            with connection.cursor() as cursor:
                load(cursor, population)
                result = evaluate_sql(cursor, policy, case.as_of, teachers="in_teacher", records="in_record",
                                      leaves="in_leave")
                teachers, _ = fetch(cursor, result)
            if result.routed:
                continue
            exp = engine_rows(policy, population, case.as_of)[teacher.id]
            row = teachers.to_dicts()[0]
            for key in ("passed", "status", "total_milli", *(k for k in exp if k.startswith("cat:"))):
                assert row[key] == exp[key], (policy_id, case.name, key, row, exp)
            seen += 1
    assert seen > 10


@pytest.mark.django_db
@pytest.mark.postgres
@pytest.mark.parametrize("reading", ["registered", "cycle_only"])
def test_a_cumulative_cycle_cap_in_sql(reading: str) -> None:
    """山东 第十八条 both ways: the SQL year figures are the engine's."""
    _postgres()
    from tests.test_batch import school_cap_population

    before = SQL_PATH.get("shandong", 0)
    compare("shandong", school_cap_population(), {"school_cap_years": reading})
    assert SQL_PATH["shandong"] - before == 3


@pytest.mark.django_db
@pytest.mark.postgres
def test_crossing_caps_are_routed_in_sql() -> None:
    """A teacher whose caps cross is left to the engine, as in the batch."""
    _postgres()
    from tests.test_batch import crossing_population

    population = crossing_population(as_of_for(REGISTRY.policies["suzhou"]).year)
    compare("suzhou", population, {})
    with connection.cursor() as cursor:
        load(cursor, population)
        result = evaluate_sql(cursor, REGISTRY.policies["suzhou"], as_of_for(REGISTRY.policies["suzhou"]), None,
                              teachers="in_teacher", records="in_record", leaves="in_leave")
    assert result.routed == ["crossed"]


@pytest.mark.django_db
@pytest.mark.postgres
def test_any_of_and_theme_sums_in_sql(tmp_path: Any) -> None:
    """The format's OR conditions and sums over themes translate: SQL = engine."""
    _postgres()
    from tests.test_format import write

    policy = write(tmp_path)
    as_of = as_of_for(policy)
    y = as_of.year
    population = [
        (Teacher(id="a", stage="小学"), [Record(id="m1", year=y, form="网络", hours=Decimal(7), theme="师德"),
                                       Record(id="m2", year=y, form="网络", hours=Decimal(9), theme="安全",
                                              approved=True),
                                       Record(id="m3", year=y, form="网络", hours=Decimal(4), theme="师德",
                                              result="合格"),
                                       Record(id="x", year=y, form="校本", level="省级", hours=Decimal(3),
                                              result="合格")]),
        (Teacher(id="b", stage="初中"), [Record(id="m1", year=y, form="网络", hours=Decimal(4), theme="心理",
                                              result="合格"),
                                       Record(id="c", year=y, form="集中", hours=Decimal(30), result="不合格")]),
    ]
    with connection.cursor() as cursor:
        load(cursor, population)
        result = evaluate_sql(cursor, policy, as_of, None, teachers="in_teacher", records="in_record",
                              leaves="in_leave")
        teachers, years = fetch(cursor, result)
    expected = expected_rows(policy, population, as_of, {})
    got = {row["teacher_id"]: row for row in teachers.to_dicts()}
    assert set(got) == {"a", "b"} and not result.routed
    for tid, row in got.items():
        for key in ("passed", "status", "total_milli", *(k for k in expected[tid] if k.startswith("cat:"))):
            assert row[key] == expected[tid][key], (tid, key)
    assert got["a"]["cat:网络"] == 13_000  # 师德+安全 9 + 4 within 10, then 3 outside the sum
    got_years: dict[str, dict[int, tuple[bool | None, int]]] = {}
    for row in years.to_dicts():
        got_years.setdefault(row["teacher_id"], {})[row["year"]] = (row["passed"], row["total_milli"])
    assert got_years == {tid: exp["years"] for tid, exp in expected.items()}

@pytest.mark.django_db(transaction=True)
def test_policy_cases_through_sql_with_years_to_come() -> None:
    """The cases evaluated before their cycle's last year, each teacher also
    hired the year after and on each leave then: SQL finds the same year
    left (or none) as the engine."""
    _postgres()
    seen = 0
    for policy_id in TRANSLATED:
        policy = REGISTRY.get(policy_id)
        for case, people in cases_with_years_to_come(policy):
            with connection.cursor() as cursor:
                load(cursor, people)
                result = evaluate_sql(cursor, policy, case.as_of, teachers="in_teacher", records="in_record",
                                      leaves="in_leave")
                teachers, _ = fetch(cursor, result)
            expected = engine_rows(policy, people, case.as_of)
            for row in teachers.to_dicts():
                exp = expected[row["teacher_id"]]
                assert (row["passed"], row["status"]) == (exp["passed"], exp["status"]), (policy_id, case.name, row)
                seen += 1
    assert seen > 10
