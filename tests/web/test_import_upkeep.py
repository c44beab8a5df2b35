"""The import path at scale does what it did teacher by teacher: an
institution's pending rows re-evaluate no one who has a verdict; a district's
leave every result as a fresh ``refresh_result`` would; ``refresh_results``
over many teachers stores what ``refresh_result`` one by one stores, in a
number of queries that does not grow with the teachers; the evaluator cache
gives the figures of a fresh ``Evaluator`` whatever the options; the binding
lookup is ``Org.binding``; ``bulk.insert`` stores what ``bulk_create`` stores."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from tests.web.conftest import World
from tests.web.test_imports import act, csv_bytes, row
from tests.web.test_tallies import assert_tallies_exact, stored_rows

from xuefen import idnumber
from xuefen.engine.evaluate import Evaluator
from xuefen.engine.report import as_dict
from xuefen.policy.loader import default_registry, pick
from xuefen.web.models import ImportBatch, Org, OrgKind, Record, Source, Status, Teacher, TeacherResult
from xuefen.web.services import bulk, evaluation, imports
from xuefen.web.services.evaluation import (
    Policies,
    engine_record,
    engine_teacher,
    evaluator,
    refresh_result,
    refresh_results,
)
from xuefen.web.services.teachers import add_teacher

RESULT_FIELDS = ("policy_id", "cycle_start", "cycle_end", "passed", "status", "total", "year_passed", "year_total",
                 "data")


def results() -> dict[int, dict[str, Any]]:
    """Every stored result, by teacher (the time it was computed left out)."""
    return {r["teacher_id"]: r for r in TeacherResult.objects.values("teacher_id", "pk", *RESULT_FIELDS)}


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The teachers the engine evaluates whole (pricing records is not that)."""
    seen: list[str] = []
    whole = Evaluator.evaluate

    def counting(self: Evaluator, teacher: Any, records: Any, as_of: dt.date) -> Any:
        seen.append(teacher.id)
        return whole(self, teacher, records, as_of)

    monkeypatch.setattr(Evaluator, "evaluate", counting)
    return seen


def _import(world: World, who: str, unit: str, rows: list[list[Any]]) -> ImportBatch:
    batch = imports.validate_roster(act(world, who), world.orgs[unit], "名册.csv", csv_bytes(rows))
    assert batch.state == ImportBatch.State.VALID, batch.errors
    batch = imports.commit_batch(act(world, who), batch)
    assert batch.state == ImportBatch.State.DONE, batch.errors
    return batch


def _evaluated(world: World) -> None:
    """Every teacher with a counting record and so a stored verdict."""
    for name in world.teachers:
        world.record(name, status=Status.SCHOOL_APPROVED, hours=Decimal(30))


# ------------------------------------------------------------------ imports


def test_an_institution_import_re_evaluates_no_one_with_a_verdict(world: World, evaluations: list[str]) -> None:
    _evaluated(world)
    before, tallies_before = results(), stored_rows()
    computed = dict(TeacherResult.objects.values_list("teacher_id", "computed_at"))
    evaluations.clear()
    rows = [row(t.teacher_no, "I1", name=n, hours="150") for n, t in world.teachers.items()]
    _import(world, "ivan", "inst", rows)
    assert evaluations == []
    assert results() == before and stored_rows() == tallies_before
    assert dict(TeacherResult.objects.values_list("teacher_id", "computed_at")) == computed
    # the rows are stored pending, each priced as a declaration is
    for r in Record.objects.filter(uid="I1").select_related("teacher__school"):
        assert r.status == Status.PENDING
        fresh = Record(teacher=r.teacher, uid="x", year=r.year, title=r.title, form=r.form, level=r.level,
                       hours=r.hours, result=r.result)
        evaluation.price_records(r.teacher, [fresh])
        assert (r.credits, r.credit_category, r.explanation, r.policy_id) == \
            (fresh.credits, fresh.credit_category, fresh.explanation, fresh.policy_id)
        assert r.credits > 0
    assert_tallies_exact()


def test_an_institution_import_still_gives_a_teacher_without_a_verdict_her_first(
        world: World, evaluations: list[str]) -> None:
    """Re-evaluating every teacher stored a first result for one who had none;
    the import still does, and only for her."""
    world.record("alice", status=Status.SCHOOL_APPROVED)
    assert set(results()) == {world.teachers["alice"].pk}
    evaluations.clear()
    _import(world, "ivan", "inst", [row(t.teacher_no, "I1", name=n) for n, t in world.teachers.items()])
    assert sorted(evaluations) == sorted(t.teacher_no for n, t in world.teachers.items() if n != "alice")
    stored = results()
    assert set(stored) == {t.pk for t in world.teachers.values()}
    for t in world.teachers.values():
        refresh_result(Teacher.objects.select_related("school").get(pk=t.pk))
    assert results() == stored
    assert_tallies_exact()


def test_a_district_import_leaves_every_result_as_a_fresh_refresh(world: World, evaluations: list[str]) -> None:
    world.record("alice", status=Status.CERTIFIED, hours=Decimal(60), year=2025)  # a verdict to change
    world.record("anna")  # pending: does not count, before or after
    evaluations.clear()
    rows = [row(world.teachers["alice"].teacher_no, "D1", name="alice", hours="100"),
            row(world.teachers["alice"].teacher_no, "D2", name="alice", title="2026年网络研修", hours="40"),
            row(world.teachers["anna"].teacher_no, "D1", name="anna", hours="12"),
            row(world.teachers["ella"].teacher_no, "D1", name="ella", hours="150")]
    before = results()
    _import(world, "carol", "east", rows)
    east = [world.teachers[n] for n in ("alice", "anna", "ella")]
    assert sorted(evaluations) == sorted(t.teacher_no for t in east)
    after = results()
    assert after[world.teachers["alice"].pk]["pk"] == before[world.teachers["alice"].pk]["pk"]  # updated in place
    assert after[world.teachers["alice"].pk] != before[world.teachers["alice"].pk]
    assert world.teachers["will"].pk not in after  # outside the import: untouched
    assert Record.objects.filter(uid__in=["D1", "D2"], status=Status.DISTRICT_APPROVED).count() == 4
    assert_tallies_exact()
    for t in east:
        refresh_result(Teacher.objects.select_related("school").get(pk=t.pk))
    assert results() == after
    assert_tallies_exact()


# ------------------------------------------------------------------ refresh_results


def _many(world: World, n: int) -> list[Teacher]:
    """n more teachers of 东区实验小学, each with two counting records."""
    school = world.orgs["east-1"]
    made = []
    for i in range(n):
        t = add_teacher(school, teacher_no=f"M{i:04d}", name=f"教师{i}", stage="小学", post="专任教师", hired_year=2010,
                        id_number=idnumber.make("220221", "19900101", 100 + i))
        for k, hours in enumerate((Decimal(24 + i), Decimal(12))):
            Record.objects.create(teacher=t, uid=f"M{k}", year=2026, title=f"培训{k}", form="集中", level="区县级",
                                  hours=hours, result="合格", source=Source.SCHOOL, status=Status.SCHOOL_APPROVED)
        made.append(Teacher.objects.select_related("school").get(pk=t.pk))
    return made


def test_refresh_results_stores_what_refresh_result_stores_one_by_one(world: World) -> None:
    _evaluated(world)
    many = _many(world, 6)
    refresh_result(many[0])  # one with a result already, the rest without
    # will's district binds no policy any more: her stored result is removed
    Org.objects.filter(pk=world.orgs["west"].pk).update(policy="")
    will = world.teachers["will"]
    teachers = [*many, *(Teacher.objects.select_related("school").get(pk=t.pk) for t in world.teachers.values())]
    before = results()
    with transaction.atomic():
        one_by_one = {t.pk: refresh_result(t) for t in teachers}
        expected, expected_tallies = results(), stored_rows()
        transaction.set_rollback(True)
    assert one_by_one[will.pk] is None and will.pk not in expected
    for pk, r in expected.items():  # refresh_result returns what it stored
        result = one_by_one[pk]
        assert result is not None and result.pk == r["pk"] and result.status == r["status"]
    assert refresh_results(teachers) == len(teachers)
    stored = results()
    assert stored.keys() == expected.keys()
    for pk, result in stored.items():
        assert {f: result[f] for f in RESULT_FIELDS} == {f: expected[pk][f] for f in RESULT_FIELDS}
        if pk in before:
            assert result["pk"] == before[pk]["pk"]  # updated in place
    assert stored_rows() == expected_tallies
    assert_tallies_exact()


def test_refresh_results_queries_do_not_grow_with_the_teachers(world: World) -> None:
    many = _many(world, 24)

    def queries(teachers: list[Teacher]) -> int:
        with CaptureQueriesContext(connection) as ctx:
            refresh_results(teachers)
        return len(ctx.captured_queries)

    assert queries(many[:3]) == queries(many[3:])  # first results
    assert queries(many[:3]) == queries(many)  # results updated
    assert_tallies_exact()


# ------------------------------------------------------------------ evaluators and bindings


def test_the_evaluator_cache_gives_a_fresh_evaluators_figures_whatever_the_options(world: World) -> None:
    policy = default_registry().get("chifeng")
    teacher = engine_teacher(world.teachers["alice"])
    records = [engine_record(Record(uid=f"R{y}", year=y, title="集中培训", form="集中", level="区县级",
                                    hours=Decimal(40), result="合格")) for y in (2021, 2023, 2025, 2026)]
    as_of = dt.date(2026, 6, 30)
    anchors = [{"cycle_anchor": "2021"}, {"cycle_anchor": "2024"}, {}, {"cycle_anchor": "2024"}, {"cycle_anchor": "2021"}]
    seen = []
    for options in anchors:  # interleaved: a cached evaluator must not carry the last one's state
        cached = evaluator(policy, options)
        assert cached is evaluator(policy, dict(options))
        got = as_dict(cached.evaluate(teacher, records, as_of))
        assert got == as_dict(Evaluator(policy, options).evaluate(teacher, records, as_of))
        seen.append((got["cycle"]["start"], got["total"]))
    assert seen[0] == seen[2] == seen[4] != seen[1] == seen[3]
    assert evaluator(policy, {"cycle_anchor": "2021"}) is not evaluator(policy, {"cycle_anchor": "2024"})
    # one per thread: an evaluator keeps the teacher it is evaluating
    other: list[Evaluator] = []
    thread = threading.Thread(target=lambda: other.append(evaluator(policy, {"cycle_anchor": "2021"})))
    thread.start()
    thread.join()
    assert other and other[0] is not evaluator(policy, {"cycle_anchor": "2021"})


def test_schools_bound_with_different_options_are_each_evaluated_under_their_own(world: World) -> None:
    city = world.orgs["city"]
    made = []
    for anchor in ("2021", "2024"):
        district = Org.objects.create(name=f"赤峰{anchor}", kind=OrgKind.DISTRICT, parent=city, policy="chifeng",
                                      policy_options={"cycle_anchor": anchor})
        school = Org.objects.create(name=f"学校{anchor}", kind=OrgKind.SCHOOL, parent=district)
        t = add_teacher(school, teacher_no=f"C{anchor}", name=anchor, stage="小学", post="专任教师", hired_year=2010,
                        id_number=idnumber.make("150402", "19880101", int(anchor) % 1000))
        Record.objects.create(teacher=t, uid="R1", year=2022, title="集中培训", form="集中", level="区县级",
                              hours=Decimal(40), result="合格", source=Source.SCHOOL, status=Status.CERTIFIED)
        made.append(Teacher.objects.select_related("school").get(pk=t.pk))
    assert refresh_results(made) == 2
    starts = []
    for t, anchor in zip(made, ("2021", "2024"), strict=True):
        policy, as_of = pick(default_registry(), "chifeng", None, timezone.localdate())
        fresh = Evaluator(policy, {"cycle_anchor": anchor}).evaluate(
            engine_teacher(t), [engine_record(r) for r in t.records.all()], as_of)
        result = TeacherResult.objects.get(teacher=t)
        assert (result.status, result.total, result.cycle_start) == (fresh.status, fresh.total, fresh.cycle_start)
        starts.append(result.cycle_start)
    assert starts[0] != starts[1]
    assert_tallies_exact()


def test_the_binding_lookup_is_org_binding(world: World) -> None:
    loose = Org.objects.create(name="无政策学校", kind=OrgKind.SCHOOL, parent=world.orgs["city"])
    schools = [o for o in Org.objects.filter(kind=OrgKind.SCHOOL)]
    assert loose in schools
    policies = Policies()
    policies.prefetch(schools)
    with CaptureQueriesContext(connection) as ctx:
        for school in schools:
            assert policies.binding(school) == school.binding()
            chosen = policies.for_school(school)
            assert chosen == evaluation.policy_for(Teacher(school=school))
    assert len(ctx.captured_queries) == 2 * len(schools)  # all of them Org.binding's and policy_for's own


# ------------------------------------------------------------------ bulk.insert


def test_insert_stores_what_bulk_create_stores(world: World) -> None:
    alice, anna = world.teachers["alice"], world.teachers["anna"]

    def made(teacher: Teacher) -> list[Record]:
        return [Record(teacher=teacher, uid=f"B{i}", year=2020 + i % 7, title="" if i % 4 else f"培训{i}",
                       form="集中", hours=[Decimal("24"), Decimal("24.5"), Decimal("0.125"), None][i % 4],
                       approved=[True, False, None][i % 3], topics=i % 2 or None, source=Source.INSTITUTION,
                       status=Status.PENDING, credits=Decimal(i) / 8, explanation=f"第{i}条" * (i % 3))
                for i in range(24)]

    with transaction.atomic():
        Record.objects.bulk_create(made(alice))
        assert bulk.insert(made(anna)) == 24
    fields = [f.attname for f in Record._meta.concrete_fields if f.attname not in ("id", "teacher_id")]
    stored = {t: list(Record.objects.filter(teacher=t).order_by("uid").values(*fields)) for t in (alice, anna)}
    stamps = ("created_at", "updated_at")
    assert [{k: v for k, v in r.items() if k not in stamps} for r in stored[alice]] == \
        [{k: v for k, v in r.items() if k not in stamps} for r in stored[anna]]
    assert all(r["created_at"] is not None and r["updated_at"] is not None for r in stored[anna])
    # a conflict is Django's IntegrityError, and nothing of the batch stays
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk.insert([Record(teacher=alice, uid="C1", year=2026, source=Source.SCHOOL),
                     Record(teacher=alice, uid="B1", year=2026, source=Source.SCHOOL)])
    assert not Record.objects.filter(uid="C1").exists()
    with pytest.raises(ValueError):
        bulk.insert([Record.objects.filter(teacher=alice).first()])  # an object already stored


def test_update_writes_what_save_writes(world: World) -> None:
    rows = [world.record(name, status=Status.SCHOOL_APPROVED) for name in ("alice", "anna")]
    by_save, by_update = (Record.objects.get(pk=r.pk) for r in rows)
    stamp = by_update.updated_at
    for r in (by_save, by_update):
        r.hours, r.approved, r.title, r.status_reason = Decimal("12.5"), None, "", "按证书更正"
    by_save.save()
    assert bulk.update([by_update], ["hours", "approved", "title", "status_reason", "updated_at"]) == 1
    fields = ["hours", "approved", "title", "status_reason", "credits", "version"]
    assert Record.objects.filter(pk=by_save.pk).values(*fields).get() == \
        Record.objects.filter(pk=by_update.pk).values(*fields).get()
    assert Record.objects.get(pk=by_update.pk).updated_at > stamp  # auto_now, as by save()
    with pytest.raises(ValueError):
        bulk.update([Record(teacher=world.teachers["alice"], uid="new", year=2026)], ["hours"])  # not stored
    with pytest.raises(ValueError):
        bulk.update([by_update], ["id"])
