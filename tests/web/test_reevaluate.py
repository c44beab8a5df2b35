"""Re-evaluating a jurisdiction (``services/reevaluate.py``): a current
platform is confirmed and nothing is rewritten; after a binding's options
change or a record changes behind the services, exactly the affected teachers
are re-evaluated, and every stored figure then equals a fresh evaluation; the
tallies stay exact.  Each test runs with both methods: ``batch`` (the batch
evaluator over the records read out) and, on PostgreSQL, ``sql`` (the policy
translated to SQL, figures compared with the stored results in the
database)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from tests.web.conftest import World

from xuefen.batch.sql import NotTranslatable
from xuefen.web.models import Record, Status, Teacher, TeacherResult
from xuefen.web.services import reevaluate as reevaluate_module
from xuefen.web.services import tallies
from xuefen.web.services.evaluation import evaluate_teacher, refresh_result
from xuefen.web.services.reevaluate import reevaluate


@pytest.fixture(params=["batch", "sql"])
def method(request: Any) -> str:
    if request.param == "sql" and connection.vendor != "postgresql":
        pytest.skip("the sql method runs on PostgreSQL only")
    return str(request.param)


def _ledger(world: World) -> None:
    world.record("alice", status=Status.SCHOOL_APPROVED, hours=Decimal(40))
    world.record("alice", status=Status.CERTIFIED, form="网络", level="市级", hours=Decimal("30.5"))
    world.record("anna", status=Status.DISTRICT_APPROVED, form="校本", level="校级", hours=Decimal(60), year=2025)
    world.record("anna", status=Status.PENDING, hours=Decimal(90))  # does not count
    world.record("will", status=Status.SCHOOL_APPROVED, hours=Decimal(24))


def _stamps() -> dict[int, Any]:
    return {r.teacher_id: r.computed_at for r in TeacherResult.objects.all()}


def _matches_fresh(world: World, names: tuple[str, ...]) -> None:
    for name in names:
        t = world.teachers[name]
        ev = evaluate_teacher(t)
        assert ev is not None
        r = TeacherResult.objects.get(teacher=t)
        assert (r.passed, r.status, r.total) == (ev.passed, ev.status, ev.total), name
        assert r.data["options"] == ev.options


def test_a_current_platform_is_confirmed_without_writing(world: World, method: str) -> None:
    _ledger(world)
    before = _stamps()
    out = reevaluate(method=method)
    assert (out.method, out.routed) == (method, 0)  # yongji and shandong: all in SQL
    assert out.teachers == 4
    # alice, anna and will have counting records: confirmed; ella has none and is evaluated one by one
    assert (out.unchanged, out.refreshed) == (3, 1)
    after = _stamps()
    for name in ("alice", "anna", "will"):
        pk = world.teachers[name].pk
        assert after[pk] == before[pk], name
    assert tallies.rebuild().corrected == 0


def test_changed_options_re_evaluate_exactly_that_jurisdiction(world: World, method: str) -> None:
    _ledger(world)
    east = world.orgs["east"]
    east.policy_options = {"partial_cycle": "full"}
    east.save()
    will_before = TeacherResult.objects.get(teacher=world.teachers["will"]).computed_at
    out = reevaluate(method=method)
    # every east teacher (other options) and ella (no counting record); will in the west is confirmed
    assert (out.unchanged, out.refreshed) == (1, 3)
    assert TeacherResult.objects.get(teacher=world.teachers["will"]).computed_at == will_before
    for name in ("alice", "anna", "ella"):
        assert TeacherResult.objects.get(teacher=world.teachers[name]).data["options"]["partial_cycle"] == "full"
    _matches_fresh(world, ("alice", "anna", "ella", "will"))
    assert tallies.rebuild().corrected == 0


def test_a_record_changed_behind_the_services_is_found(world: World, method: str) -> None:
    _ledger(world)
    alice = world.teachers["alice"]
    Record.objects.filter(teacher=alice, form="集中").update(hours=Decimal(64))
    stale = TeacherResult.objects.get(teacher=alice).total
    out = reevaluate(world.orgs["east"], method=method)
    assert out.teachers == 3  # alice, anna, ella
    assert (out.unchanged, out.refreshed) == (1, 2)  # anna confirmed; alice changed; ella has no record
    assert TeacherResult.objects.get(teacher=alice).total != stale
    _matches_fresh(world, ("alice", "anna", "ella", "will"))
    assert tallies.rebuild().corrected == 0


def test_the_command_reports_what_it_did(world: World, capsys: Any, method: str) -> None:
    _ledger(world)
    call_command("reevaluate", "--org", str(world.orgs["west"].pk), "--method", method)
    out = capsys.readouterr().out
    how = "SQL 评估" if method == "sql" else "批量评估"
    assert "共 1 名教师" in out and f"1 名经{how}确认无变化" in out


def test_the_default_method_follows_the_database(world: World) -> None:
    _ledger(world)
    assert reevaluate().method == ("sql" if connection.vendor == "postgresql" else "batch")
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="需要 PostgreSQL"):
            call_command("reevaluate", "--method", "sql")


def _tamper(world: World, name: str, change: Any) -> Any:
    """Change a stored result behind the services; return its stamp."""
    r = TeacherResult.objects.get(teacher=world.teachers[name])
    change(r.data)
    TeacherResult.objects.filter(pk=r.pk).update(data=r.data)
    return r.computed_at


def test_a_stored_category_or_year_that_differs_is_found(world: World, method: str) -> None:
    _ledger(world)

    def category(data: dict[str, Any]) -> None:
        cat = next(iter(data["categories"]))
        data["categories"][cat]["counted"] = str(Decimal(data["categories"][cat]["counted"]) + Decimal("0.001"))

    def year(data: dict[str, Any]) -> None:
        y = max(data["years"])
        data["years"][y]["passed"] = not data["years"][y]["passed"]

    def missing_year(data: dict[str, Any]) -> None:
        data["years"].pop(min(data["years"]))

    _tamper(world, "alice", category)
    _tamper(world, "anna", year)
    _tamper(world, "will", missing_year)
    out = reevaluate(method=method)
    # each one is found and re-evaluated, with ella (no counting record)
    assert (out.unchanged, out.refreshed) == (0, 4)
    _matches_fresh(world, ("alice", "anna", "ella", "will"))
    assert reevaluate(method=method).unchanged == 3


def test_teachers_the_sql_leaves_aside_are_confirmed_by_the_batch_evaluator(world: World, method: str) -> None:
    _ledger(world)
    west = world.orgs["west"]
    west.policy = "shandong-2009"
    west.save()
    # a completion (第三篇（二）): the batch evaluator routes her to the engine,
    # and the SQL translation leaves her to the batch evaluator
    world.record("will", status=Status.SCHOOL_APPROVED, year=2022, program="师范类学历教育", subject_related=True,
                 certificate=True, form="集中", level="省级", hours=Decimal(200))
    before = _stamps()
    out = reevaluate(west, method=method)
    assert (out.unchanged, out.refreshed) == (1, 0)
    assert out.routed == (1 if method == "sql" else 0)
    assert _stamps() == before


def test_a_policy_without_sql_form_goes_to_the_batch_evaluator(world: World, method: str, monkeypatch: Any) -> None:
    _ledger(world)
    # every shipped policy translates; a rule that did not would raise NotTranslatable
    real = reevaluate_module.evaluate_sql

    def refuse_yongji(cursor: Any, policy: Any, *args: Any, **kwargs: Any) -> Any:
        if policy.id == "yongji":
            raise NotTranslatable("政策 yongji：尚无 SQL 译法（测试）")
        return real(cursor, policy, *args, **kwargs)

    monkeypatch.setattr(reevaluate_module, "evaluate_sql", refuse_yongji)
    before = _stamps()
    out = reevaluate(method=method)
    assert (out.unchanged, out.refreshed) == (3, 1)
    # every east teacher was handed to the batch evaluator
    assert out.routed == (3 if method == "sql" else 0)
    after = _stamps()
    assert all(after[world.teachers[n].pk] == before[world.teachers[n].pk] for n in ("alice", "anna", "will"))
    Record.objects.filter(teacher=world.teachers["alice"], form="集中").update(hours=Decimal(64))
    out = reevaluate(method=method)
    assert (out.unchanged, out.refreshed) == (2, 2)  # the batch evaluator finds alice's change too
    _matches_fresh(world, ("alice", "anna", "ella", "will"))


def test_leave_is_read_as_the_engine_reads_it(world: World, method: str) -> None:
    _ledger(world)
    alice, will = world.teachers["alice"], world.teachers["will"]
    world.record("will", status=Status.SCHOOL_APPROVED, year=2026, makeup_for_year=2025, hours=Decimal(30))
    alice_before = TeacherResult.objects.get(teacher=alice).data
    will_before = TeacherResult.objects.get(teacher=will).data
    # 永吉: maternity leave changes the year's minimums; 山东: a make-up counts in
    # a year of approved sick leave, not in one of leave the school did not approve
    Teacher.objects.filter(pk=alice.pk).update(leaves=[{"year": 2026, "kind": "产假"}])
    Teacher.objects.filter(pk=will.pk).update(leaves=[{"year": 2025, "kind": "病假", "approved": True},
                                                      {"year": 2024, "kind": "产假", "approved": False}])
    for t in (alice, will):
        t.refresh_from_db()
        refresh_result(t)
    # the leave matters to both, or this test would prove nothing
    assert TeacherResult.objects.get(teacher=alice).data["years"] != alice_before["years"]
    assert TeacherResult.objects.get(teacher=will).data["years"] != will_before["years"]
    before = _stamps()
    out = reevaluate(method=method)
    assert (out.unchanged, out.refreshed, out.routed) == (3, 1, 0)
    after = _stamps()
    assert (after[alice.pk], after[will.pk]) == (before[alice.pk], before[will.pk])


def test_a_policy_change_reads_only_the_teachers_bound_to_it(world: World, method: str) -> None:
    _ledger(world)
    alice = world.teachers["alice"]
    Record.objects.filter(teacher=alice, form="集中").update(hours=Decimal(64))
    stale = TeacherResult.objects.get(teacher=alice).total
    # after shandong's file changed: will alone; alice's stale figure in the yongji district is not read
    out = reevaluate(method=method, policy="shandong")
    assert (out.teachers, out.unchanged, out.refreshed) == (1, 1, 0)
    assert TeacherResult.objects.get(teacher=alice).total == stale
    # by id as well as by jurisdiction code; ella has no counting record and is evaluated one by one
    out = reevaluate(method=method, policy="yongji")
    assert (out.teachers, out.unchanged, out.refreshed) == (3, 1, 2)
    assert TeacherResult.objects.get(teacher=alice).total != stale
    _matches_fresh(world, ("alice", "anna", "ella", "will"))


def test_an_unknown_policy_is_refused_by_name(world: World) -> None:
    with pytest.raises(ValueError, match="没有编号或辖区代码为 火星 的政策"):
        reevaluate(policy="火星")
    with pytest.raises(CommandError, match="火星"):
        call_command("reevaluate", "--policy", "火星")


def test_a_binding_change_skips_units_below_that_bind_their_own(world: World, method: str) -> None:
    _ledger(world)
    city, east2 = world.orgs["city"], world.orgs["east-2"]
    # a school that binds its own policy is shadowed from the city's binding
    east2.policy = "yongji"
    east2.save()
    city.policy = "shandong"
    city.save()
    out = reevaluate(city, method=method, bound_here=True)
    # the city binds no teacher: east and west each bind their own, east-2 too
    assert out.teachers == 0
    out = reevaluate(world.orgs["east"], method=method, bound_here=True)
    assert out.teachers == 2  # alice and anna of east-1; ella's school binds its own
    out = reevaluate(world.orgs["east"], method=method)
    assert out.teachers == 3  # without bound_here: everyone under the unit


def test_the_command_reevaluates_one_policy(world: World, capsys: Any, method: str) -> None:
    _ledger(world)
    call_command("reevaluate", "--policy", "shandong", "--method", method)
    assert "共 1 名教师" in capsys.readouterr().out
