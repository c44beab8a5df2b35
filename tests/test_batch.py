"""Differential tests: the batch evaluator equals the per-teacher engine on
every teacher, for every shipped policy, over random ledgers.

Ledgers are drawn from the interchange vocabulary, biased towards the values
each policy's own rules mention (so conversions, gates, caps and transfers
actually fire), with hours near the thresholds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xuefen import vocab
from xuefen.batch import evaluate_frame, kernels
from xuefen.engine.evaluate import Evaluator
from xuefen.model import RECORD_FIELDS, Leave, Record, Teacher
from xuefen.policy.loader import default_registry
from xuefen.policy.schema import LeaveYear, Ops, Policy, match_items

REGISTRY = default_registry()
POLICIES = sorted(REGISTRY.policies)


def mentioned(policy: Policy) -> dict[str, list[Any]]:
    """Values each record field takes in the policy's conditions."""
    seen: dict[str, set[Any]] = {}

    def walk(match: dict[str, Any] | None) -> None:
        for key, value in match_items(match):
            if key.startswith("teacher."):
                continue
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, Ops):
                    for x in [*(v.in_ or []), *(v.not_in or [])]:
                        seen.setdefault(key, set()).add(x)
                elif v is not None:
                    seen.setdefault(key, set()).add(v)

    for rule in policy.rules:
        for attr in ("when", "require"):
            walk(getattr(rule, attr, None))
        target = getattr(rule, "target", None)
        if target is not None and not isinstance(target, str):
            walk(target.match)
    return {k: sorted(v, key=str) for k, v in seen.items()}


def as_of_for(policy: Policy) -> dt.date:
    end = policy.effective.to
    year = (end.year - 1) if end else 2026
    return dt.date(year, 12, 31)


@st.composite
def populations(draw: st.DrawFn, policy: Policy) -> list[tuple[Teacher, list[Record]]]:
    hints = mentioned(policy)
    as_of = as_of_for(policy)
    cats = [c.id for c in policy.categories] + [a for c in policy.categories for a in c.aliases]
    themes = [t for c in policy.categories for t in c.themes]
    # a sub-type written as the category (朝阳 附件3 第八条), by one teacher in
    # eight: the batch routes those teachers to the engine, so that is drawn
    # per teacher, not per record (most teachers still exercise the batch and
    # SQL paths however many records a teacher has)
    words = [s for c in policy.categories for s in c.subtypes]
    # likewise a category that states a fact (永吉 校本研修 = the 校本 form) on a record without it
    stating = {name: c.facts for c in policy.categories if c.facts for name in (c.id, *c.aliases)}

    def pick(field: str) -> Any:
        pool = list(hints.get(field, []))
        if vocab.is_enum(field):
            pool += vocab.allowed(field)
        pool = [p for p in pool if not isinstance(p, bool)]
        return draw(st.one_of(st.none(), st.sampled_from(pool))) if pool else None

    out = []
    for t in range(draw(st.integers(1, 6))):
        # Joining during the cycle, leave and moved records send a teacher to
        # the per-teacher engine: keep them rare so the batch path does the work.
        # A year after as_of (hired, on leave) is one the cycle may still
        # require: whether a pass is already 已达标（提前完成） depends on it.
        hired = draw(st.one_of(st.none(), st.integers(as_of.year - 25, as_of.year - 8),
                               st.integers(as_of.year - 7, as_of.year + 1)))
        transfer = draw(st.integers(as_of.year - 6, as_of.year)) if draw(st.integers(0, 7)) == 0 else None
        leaves = tuple(Leave(draw(st.integers(as_of.year - 4, as_of.year + 1)),
                             draw(st.sampled_from(vocab.allowed("leave_kind"))), approved=draw(st.booleans()))
                       for _ in range(1 if draw(st.integers(0, 7)) == 0 else 0))
        teacher = Teacher(id=f"T{t}", stage=draw(st.one_of(st.none(), st.sampled_from(vocab.allowed("stage")))),
                          post=draw(st.one_of(st.none(), st.sampled_from(vocab.allowed("post")))),
                          hired_year=hired, transfer_in_year=transfer, leaves=leaves,
                          normal_graduate=draw(st.one_of(st.none(), st.booleans())))
        wordy = bool(words or stating) and draw(st.integers(0, 7)) == 0
        records = []
        for r in range(draw(st.integers(0, 12))):
            values: dict[str, Any] = {
                "year": draw(st.integers(as_of.year - 6, as_of.year)),
                "hours": draw(st.one_of(st.none(), st.decimals(0, 130, places=1))),
                "days": draw(st.one_of(st.none(), st.decimals(0, 25, places=1))),
                "credits": draw(st.one_of(st.none(), st.decimals(0, 12, places=1))),
                "absent_hours": draw(st.one_of(st.none(), st.decimals(0, 20, places=1))),
                "topics": draw(st.one_of(st.none(), st.integers(0, 6))),
                "words": draw(st.one_of(st.none(), st.integers(500, 1500))),
                "category": (draw(st.sampled_from(words)) if wordy and draw(st.integers(0, 2)) == 0
                             else draw(st.one_of(st.none(), st.sampled_from(cats))) if cats else None),
                "theme": (draw(st.one_of(st.none(), st.sampled_from(themes + hints.get("theme", []))))
                          if themes or hints.get("theme") else None),
            }
            for field in ("level", "form", "location", "result", "role", "achievement", "program"):
                values[field] = pick(field)
            if not wordy and any(values[f] is None for f in stating.get(values["category"], {})):
                values["category"] = None
            for field in ("approved", "certificate", "subject_related", "education_system"):
                values[field] = draw(st.one_of(st.none(), st.booleans()))
            if draw(st.integers(0, 39)) == 0:
                values["completed_year"] = draw(st.integers(as_of.year - 7, as_of.year))
            if draw(st.integers(0, 39)) == 0:
                values["makeup_for_year"] = draw(st.integers(as_of.year - 5, as_of.year))
            records.append(Record(id=f"R{r:02d}", **values))
        out.append((teacher, records))
    return out


def flat_frame(population: list[tuple[Teacher, list[Record]]]) -> pl.DataFrame:
    rows = []
    for teacher, records in population:
        base = {"teacher_id": teacher.id, "stage": teacher.stage, "post": teacher.post,
                "hired_year": teacher.hired_year, "transfer_in_year": teacher.transfer_in_year,
                "normal_graduate": teacher.normal_graduate,
                "leaves": ";".join(f"{lv.year}:{lv.kind}" + ("" if lv.approved else ":否") for lv in teacher.leaves) or None,
                "school": "S1"}
        if not records:
            rows.append({**base, "record_id": None})  # a teacher with no record
            continue
        for r in records:
            rows.append({**base, "record_id": r.id, **{k: getattr(r, k) for k in RECORD_FIELDS if k != "id"}})
    schema: dict[str, Any] = {"teacher_id": pl.Utf8, "stage": pl.Utf8, "post": pl.Utf8, "hired_year": pl.Int64,
                              "transfer_in_year": pl.Int64, "normal_graduate": pl.Boolean, "leaves": pl.Utf8,
                              "school": pl.Utf8, "record_id": pl.Utf8}
    for key, (_, kind) in RECORD_FIELDS.items():
        if key == "id":
            continue
        schema[key] = {"decimal": pl.Decimal(9, 3), "year": pl.Int64, "int": pl.Int64, "bool": pl.Boolean}.get(
            kind, pl.Utf8)
    return pl.DataFrame(rows, schema=schema)


def engine_rows(policy: Policy, population: list[tuple[Teacher, list[Record]]], as_of: dt.date) -> dict[str, Any]:
    ev = Evaluator(policy)
    out = {}
    for teacher, records in population:
        e = ev.evaluate(teacher, records, as_of)
        out[teacher.id] = {
            "passed": e.passed, "status": e.status, "total_milli": int(e.total * 1000),
            **{f"cat:{c}": int(e.cycle.counted[c] * 1000) for c in e.cycle.counted},
            "years": {y: (sc.passed, int(sc.total * 1000)) for y, sc in e.years.items()},
        }
    return out


BATCH_PATH: dict[str, int] = {}
COLUMNAR_PATH: dict[str, int] = {}
KERNELS_OFF: dict[str, int] = {}
# policies whose conditions the columnar fast path cannot evaluate per
# combination of facts (a ratio of two facts, credit bands): the general path
GENERAL_ONLY = {"chaoyang-2016", "chaoyang-private-2016", "suzhou", "weifang"}


def compare(policy: Policy, population: list[tuple[Teacher, list[Record]]], categorical: bool = False,
            canonical: bool = False, columnar: bool = True) -> None:
    as_of = as_of_for(policy)
    frame = flat_frame(population).filter(pl.col("record_id").is_not_null())
    if canonical:
        # clustered and in (year, record id) order: the evaluator's fast path
        frame = frame.sort(["teacher_id", "year", "record_id"], maintain_order=True)
    if categorical:
        # as the generator writes them: dictionary-encoded vocabulary columns
        frame = frame.with_columns(pl.col(c).cast(pl.Categorical) for c in
                                   ("stage", "post", "level", "form", "location", "result", "role", "achievement",
                                    "program", "category", "theme"))
    expected = engine_rows(policy, [(t, r) for t, r in population if r], as_of)
    # both paths on every example: the columnar fast path and the general one,
    # and each with its NumPy formulation instead of the compiled kernels
    variants = ((True, True), (False, True), (True, False)) if columnar else ((False, True), (False, False))
    for fast, compiled in variants:
        with contextlib.nullcontext() if compiled else kernels.disabled():
            result = evaluate_frame(policy, frame, as_of, columnar=fast)
        got = {row["teacher_id"]: row for row in result.teachers.to_dicts()}
        if not compiled:
            KERNELS_OFF[policy.id] = KERNELS_OFF.get(policy.id, 0) + 1
        elif not fast:
            BATCH_PATH[policy.id] = BATCH_PATH.get(policy.id, 0) + sum(not r["routed"] for r in got.values())
        elif fast:
            COLUMNAR_PATH[policy.id] = COLUMNAR_PATH.get(policy.id, 0) + result.columnar_chunks
        assert set(got) == set(expected)
        years: dict[str, dict[int, tuple[bool | None, int]]] = {}
        for row in result.years.to_dicts():
            years.setdefault(row["teacher_id"], {})[row["year"]] = (row["passed"], row["total_milli"])
        for tid, exp in expected.items():
            row = got[tid]
            for key in ("passed", "status", "total_milli", *(k for k in exp if k.startswith("cat:"))):
                assert row[key] == exp[key], (fast, compiled, tid, key, row, exp)
            assert years.get(tid, {}) == exp["years"], (fast, compiled, tid, years.get(tid), exp["years"])

@pytest.mark.parametrize("policy_id", POLICIES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_batch_equals_engine_on_random_ledgers(policy_id: str, data: st.DataObject) -> None:
    policy = REGISTRY.get(policy_id)
    compare(policy, data.draw(populations(policy)), categorical=data.draw(st.booleans()),
            canonical=data.draw(st.booleans()))


@pytest.mark.parametrize("policy_id", POLICIES)
def test_the_random_ledgers_exercised_the_batch_path(policy_id: str) -> None:
    """Runs after the differential test of the same policy: most compared
    teachers must have gone through the columnar path, not the fallback."""
    if policy_id not in BATCH_PATH:
        pytest.skip("the differential test did not run in this session")
    assert BATCH_PATH[policy_id] >= 40


def case_populations(policy_id: str) -> Iterator[tuple[Any, list[tuple[Teacher, list[Record]]]]]:
    """(case, its one teacher with her records) for every case of the
    policy's case file that a batch can take: default options, no expected
    error, records that parse."""
    from xuefen.engine.cases import cases_path, load_cases
    from xuefen.model import parse_record, parse_teacher
    from xuefen.policy.loader import default_policy_dir

    _, cases = load_cases(cases_path(default_policy_dir(), policy_id))
    for case in cases:
        if case.options or case.expect.get("error"):
            continue
        teacher, problems = parse_teacher(case.teacher, lambda k, m: m)  # type: ignore[arg-type,return-value]
        records = [parse_record(r, lambda k, m: m)[0] for r in case.records]  # type: ignore[arg-type,return-value]
        if teacher is None or problems or any(r is None for r in records) or not records:
            continue
        yield case, [(teacher, [r for r in records if r is not None])]


def test_batch_on_the_policy_cases() -> None:
    """Every teacher of every case file, batch against engine."""
    for pid in POLICIES:
        policy = REGISTRY.get(pid)
        for case, population in case_populations(pid):
            frame = flat_frame(population)
            result = evaluate_frame(policy, frame, case.as_of)
            e = Evaluator(policy).evaluate(population[0][0], population[0][1], case.as_of)
            row = result.teachers.to_dicts()[0]
            assert (row["passed"], row["status"], row["total_milli"]) == (e.passed, e.status, int(e.total * 1000)), \
                (pid, case.name)


def later_year_variants(policy: Policy, teacher: Teacher, as_of: dt.date) -> list[Teacher]:
    """The teacher as she is, hired the year after ``as_of`` and with each of
    the policy's leaves in that year: what a year still to come requires of
    her decides whether a pass before the cycle's end is 已达标（提前完成）."""
    nxt = as_of.year + 1
    kinds = sorted({k for r in policy.rules if isinstance(r, LeaveYear) for k in r.kinds})
    return [teacher, dataclasses.replace(teacher, id=f"{teacher.id}~hired", hired_year=nxt),
            *(dataclasses.replace(teacher, id=f"{teacher.id}~{k}", leaves=(*teacher.leaves, Leave(nxt, k)))
              for k in kinds)]


def cases_with_years_to_come(policy: Policy) -> Iterator[tuple[Any, list[tuple[Teacher, list[Record]]]]]:
    """The policy's cases evaluated before their cycle's last year, each
    with the teacher's later-year variants."""
    for case, population in case_populations(policy.id):
        teacher, records = population[0]
        if case.as_of.year < Evaluator(policy).cycle_for(case.as_of.year)[1]:
            yield case, [(t, records) for t in later_year_variants(policy, teacher, case.as_of)]


def test_batch_on_the_policy_cases_with_years_to_come() -> None:
    """The years after the evaluation date: the batch paths find the same
    requirement left (a hire year, a leave year) as the engine."""
    seen = 0
    for pid in POLICIES:
        policy = REGISTRY.get(pid)
        for case, people in cases_with_years_to_come(policy):
            expected = engine_rows(policy, people, case.as_of)
            for fast in (True, False):
                got = {r["teacher_id"]: r for r in evaluate_frame(policy, flat_frame(people), case.as_of,
                                                                  columnar=fast).teachers.to_dicts()}
                for tid, exp in expected.items():
                    assert (got[tid]["passed"], got[tid]["status"]) == (exp["passed"], exp["status"]), \
                        (pid, case.name, tid, fast)
            seen += 1
    assert seen > 10


def test_routing_is_reported_and_exact_figures_kept() -> None:
    """A penalty (潍坊 第二十二条) has no batch form: that teacher goes to the
    per-teacher engine; a new hire and a make-up record (山东 第二十一条) do not."""
    shandong = REGISTRY.get("shandong")
    population = [
        (Teacher(id="plain", stage="小学", hired_year=2000),
         [Record(id="a", year=2024, form="集中", level="区县级", hours=Decimal("24"), result="合格")]),
        (Teacher(id="newhire", stage="小学", hired_year=2025),
         [Record(id="a", year=2025, form="网络", level="省级", hours=Decimal("20.5"), result="合格")]),
        (Teacher(id="makeup", stage="小学", hired_year=2000, leaves=(Leave(2024, "产假"),)),
         [Record(id="a", year=2025, form="集中", level="市级", hours=Decimal("30"), result="合格", makeup_for_year=2024)]),
    ]
    result = evaluate_frame(shandong, flat_frame(population), dt.date(2025, 12, 31))
    rows = {r["teacher_id"]: r for r in result.teachers.to_dicts()}
    assert [rows[t]["routed"] for t in ("plain", "newhire", "makeup")] == [False, False, False]
    assert rows["newhire"]["total_milli"] == 20500
    compare(shandong, population)

    weifang = REGISTRY.get("weifang")
    absent = [(Teacher(id="absent", stage="初中", hired_year=2000),
               [Record(id="a", year=2012, form="集中", result="未参加", approved=True, hours=Decimal("40"))])]
    result = evaluate_frame(weifang, flat_frame(absent), dt.date(2013, 12, 31))
    assert result.routed == 1 and result.teachers.to_dicts()[0]["routed"] is True


@pytest.mark.parametrize("policy_id", POLICIES)
def test_the_random_ledgers_exercised_the_columnar_path(policy_id: str) -> None:
    """Runs after the differential test: the fast path was really compared,
    not silently replaced by the general one."""
    if policy_id not in BATCH_PATH:
        pytest.skip("the differential test did not run in this session")
    if policy_id in GENERAL_ONLY:
        assert COLUMNAR_PATH.get(policy_id, 0) == 0
    else:
        assert COLUMNAR_PATH.get(policy_id, 0) >= 5


@pytest.mark.parametrize("policy_id", POLICIES)
def test_the_random_ledgers_exercised_both_formulations(policy_id: str) -> None:
    """Runs after the differential test: the NumPy formulation of the
    compiled kernels (``XUEFEN_BATCH_KERNELS=0``) was compared too."""
    if policy_id not in BATCH_PATH:
        pytest.skip("the differential test did not run in this session")
    assert KERNELS_OFF.get(policy_id, 0) >= 40


def school_cap_population() -> list[tuple[Teacher, list[Record]]]:
    """山东 第十八条: school-based credits that pass the 120-credit cycle cap in
    their second or third year, for a teacher of the whole cycle and for one
    hired during it (her first year is not required but still registers)."""
    def school(rid: str, year: int, credits: str | None = None, hours: str | None = None) -> Record:
        return Record(id=rid, year=year, form="校本", result="合格", credits=Decimal(credits) if credits else None,
                      hours=Decimal(hours) if hours else None)

    def course(rid: str, year: int, hours: str) -> Record:
        return Record(id=rid, year=year, form="集中", level="市级", hours=Decimal(hours), result="合格")

    return [
        (Teacher(id="whole", stage="小学", hired_year=2010),
         [school("s1", 2024, "100"), course("t1", 2024, "20"), school("s2", 2025, "48"),
          school("s3", 2026, hours="30"), course("t3", 2026, "50")]),
        (Teacher(id="hired", stage="初中", hired_year=2025),
         [school("s1", 2024, "90"), school("s2", 2025, "30"), school("s3", 2025, "12.5", "40"),
          course("t2", 2025, "30"), school("s4", 2026, "60")]),
        (Teacher(id="under", stage="高中", hired_year=2000),
         [school("s1", 2024, "60"), school("s2", 2025, "59.9"), course("t2", 2026, "48")]),
    ]


def test_a_cumulative_cycle_cap_reduces_the_later_years() -> None:
    """The cap used up in an earlier year leaves a later year only what was
    registered: the batch paths give the engine's year figures."""
    shandong = REGISTRY.get("shandong")
    population = school_cap_population()
    compare(shandong, population)
    as_of = as_of_for(shandong)
    years = {t.id: {y: int(sc.total * 1000) for y, sc in Evaluator(shandong).evaluate(t, r, as_of).years.items()}
             for t, r in population}
    assert years["whole"] == {2024: 120_000, 2025: 20_000, 2026: 50_000}
    assert years["hired"] == {2024: 90_000, 2025: 60_000, 2026: 0}
    assert years["under"] == {2024: 60_000, 2025: 59_900, 2026: 48_000}


def crossing_population(year: int) -> list[tuple[Teacher, list[Record]]]:
    """肃州 caps 带教 at 3 and 中长期培训 at 42 a year: a record that is both
    crosses the two caps; the engine allocates them together (45, not 42)."""
    mentor = Record(id="m1", year=year, achievement="带教", role="指导教师")
    course = Record(id="z1", year=year, form="中长期培训", hours=Decimal(200))
    both = Record(id="a0", year=year, form="中长期培训", achievement="带教", hours=Decimal(200))
    return [(Teacher(id="crossed", stage="小学", hired_year=2000), [mentor, course, both]),
            (Teacher(id="apart", stage="小学", hired_year=2000), [mentor, course])]


def test_crossing_caps_go_to_the_engine() -> None:
    suzhou = REGISTRY.get("suzhou")
    as_of = as_of_for(suzhou)
    population = crossing_population(as_of.year)
    compare(suzhou, population)
    result = evaluate_frame(suzhou, flat_frame(population), as_of)
    rows = {r["teacher_id"]: r for r in result.teachers.to_dicts()}
    assert (rows["crossed"]["routed"], rows["apart"]["routed"]) == (True, False)
    assert rows["crossed"]["total_milli"] == rows["apart"]["total_milli"] == 45_000


def crossing_beijing(tmp_path: Any) -> Policy:
    """北京 with one more cap, on 集中 training of any category: it crosses the
    category and theme caps, on a policy the columnar and compiled paths take."""
    from xuefen.policy.loader import default_policy_dir, load_policy_file

    text = (default_policy_dir() / "beijing-2021.yaml").read_text(encoding="utf-8")
    extra = ("  - id: cap-test-concentrated\n    kind: cap\n    label: 测试：集中培训周期至多3学分\n    scope: cycle\n"
             "    target: {match: {form: 集中}}\n    max: 3\n    cite: {article: 第二条, note: 测试用}\n")
    head, tail = text.split("\nrules:\n", 1)
    path = tmp_path / "beijing-2021.yaml"
    path.write_text(f"{head}\nrules:\n{extra}{tail}", encoding="utf-8")
    return load_policy_file(path)


def test_crossing_caps_on_the_columnar_paths(tmp_path: Any) -> None:
    policy = crossing_beijing(tmp_path)
    as_of = as_of_for(policy)
    teacher = Teacher(id="crossed", stage="小学", hired_year=2000)
    records = [Record(id="p1", year=2023, category="公共必修", theme="现代信息技术", credits=Decimal(2), form="集中"),
               Record(id="p2", year=2023, category="公共必修", theme="学生发展", credits=Decimal(1)),
               Record(id="q1", year=2024, category="专业必修", hours=Decimal(40), form="集中")]
    plain = (Teacher(id="apart", stage="小学", hired_year=2000),
             [Record(id="q1", year=2024, category="专业必修", hours=Decimal(40), form="网络")])
    population = [(teacher, records), plain]
    compare(policy, population)
    compare(policy, population, canonical=True)
    for fast in (True, False):
        result = evaluate_frame(policy, flat_frame(population), as_of, columnar=fast)
        rows = {r["teacher_id"]: r for r in result.teachers.to_dicts()}
        assert (rows["crossed"]["routed"], rows["apart"]["routed"]) == (True, False), fast
