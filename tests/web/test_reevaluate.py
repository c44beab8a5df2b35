"""Re-evaluating a jurisdiction (``services/reevaluate.py``): a current
platform is confirmed by the batch evaluator and nothing is rewritten; after
a binding's options change or a record changes behind the services, exactly
the affected teachers are re-evaluated, and every stored figure then equals
a fresh evaluation; the tallies stay exact."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.management import call_command
from tests.web.conftest import World

from xuefen.web.models import Record, Status, TeacherResult
from xuefen.web.services import tallies
from xuefen.web.services.evaluation import evaluate_teacher
from xuefen.web.services.reevaluate import reevaluate


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


def test_a_current_platform_is_confirmed_without_writing(world: World) -> None:
    _ledger(world)
    before = _stamps()
    out = reevaluate()
    assert out.teachers == 4
    # alice, anna and will have counting records: confirmed; ella has none and is evaluated one by one
    assert (out.unchanged, out.refreshed) == (3, 1)
    after = _stamps()
    for name in ("alice", "anna", "will"):
        pk = world.teachers[name].pk
        assert after[pk] == before[pk], name
    assert tallies.rebuild().corrected == 0


def test_changed_options_re_evaluate_exactly_that_jurisdiction(world: World) -> None:
    _ledger(world)
    east = world.orgs["east"]
    east.policy_options = {"partial_cycle": "full"}
    east.save()
    will_before = TeacherResult.objects.get(teacher=world.teachers["will"]).computed_at
    out = reevaluate()
    # every east teacher (other options) and ella (no counting record); will in the west is confirmed
    assert (out.unchanged, out.refreshed) == (1, 3)
    assert TeacherResult.objects.get(teacher=world.teachers["will"]).computed_at == will_before
    for name in ("alice", "anna", "ella"):
        assert TeacherResult.objects.get(teacher=world.teachers[name]).data["options"]["partial_cycle"] == "full"
    _matches_fresh(world, ("alice", "anna", "ella", "will"))
    assert tallies.rebuild().corrected == 0


def test_a_record_changed_behind_the_services_is_found(world: World) -> None:
    _ledger(world)
    alice = world.teachers["alice"]
    Record.objects.filter(teacher=alice, form="集中").update(hours=Decimal(64))
    stale = TeacherResult.objects.get(teacher=alice).total
    out = reevaluate(world.orgs["east"])
    assert out.teachers == 3  # alice, anna, ella
    assert (out.unchanged, out.refreshed) == (1, 2)  # anna confirmed; alice changed; ella has no record
    assert TeacherResult.objects.get(teacher=alice).total != stale
    _matches_fresh(world, ("alice", "anna", "ella", "will"))
    assert tallies.rebuild().corrected == 0


def test_the_command_reports_what_it_did(world: World, capsys: Any) -> None:
    _ledger(world)
    call_command("reevaluate", "--org", str(world.orgs["west"].pk))
    out = capsys.readouterr().out
    assert "共 1 名教师" in out and "1 名经批量评估确认无变化" in out
