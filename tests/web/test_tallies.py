"""Per-unit tallies (services.tallies): kept exact by every write the
platform makes, read by the dashboards with the same figures as counting
from scratch, and rebuilt from scratch to the same rows.

The reference everywhere is the aggregate the dashboard ran before the
tallies existed (:func:`counted`): one COUNT over a unit's subtree."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.db.models import Count, F, Q, QuerySet
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tests.web.conftest import World
from tests.web.test_imports import csv_bytes, row

from xuefen import idnumber
from xuefen.web import permissions as perm
from xuefen.web.models import ImportBatch, Org, OrgKind, Profile, Record, Role, Status, Teacher, UnitTally
from xuefen.web.services import imports, ledger, tallies
from xuefen.web.services.evaluation import refresh_result
from xuefen.web.services.teachers import add_teacher
from xuefen.web.views import officer

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def counted(teachers: QuerySet[Teacher]) -> dict[str, int]:
    """The dashboard's figures as it computed them before the tallies."""
    agg = teachers.aggregate(
        n=Count("id"),
        # ahead of time counts as passed (services/tallies.py _BUCKET)
        passed=Count("id", filter=Q(result__status__in=["达标", "已达标（提前完成）"])),
        in_progress=Count("id", filter=Q(result__status="进行中")),
        failed=Count("id", filter=Q(result__status="未达标")),
        year_passed=Count("id", filter=Q(result__year_passed=True)),
        year_checked=Count("id", filter=Q(result__year_passed__isnull=False)),
    )
    agg["unevaluated"] = agg["n"] - agg["passed"] - agg["in_progress"] - agg["failed"]
    return agg


def as_tally(figures: dict[str, int]) -> dict[str, int]:
    return {"teachers": figures["n"], **{f: figures[f] for f in tallies.FIELDS if f != "teachers"}}


def stored_rows() -> dict[int, dict[str, int]]:
    return {r["org_id"]: {f: r[f] for f in tallies.FIELDS} for r in UnitTally.objects.values("org_id", *tallies.FIELDS)}


def assert_tallies_exact() -> None:
    rows = stored_rows()
    for org in Org.objects.all():
        expected = as_tally(counted(Teacher.objects.filter(school__path__startswith=org.path)))
        assert rows.get(org.pk) == expected, org.name


# ------------------------------------------------------------------ (a) random sequences through the services


@pytest.fixture
def zone_world(world: World) -> World:
    """The named world plus a 学区 between 东区 and a school (zoe: its officer),
    so one school sits four levels deep.  The 学区 binds suzhou, whose
    one-year cycle lets a teacher pass (or fail) within a short sequence."""
    zone = Org.objects.create(name="东区第一学区", kind=OrgKind.ZONE, parent=world.orgs["east"], policy="suzhou")
    world.orgs["zone"] = zone
    world.orgs["zone-1"] = Org.objects.create(name="学区小学", kind=OrgKind.SCHOOL, parent=zone)
    for name, role in (("zoe", Role.SCHOOL_OFFICER), ("zack", Role.TEACHER)):
        world.users[name] = User.objects.create_user(name, password="a-long-test-password")
        Profile.objects.create(user=world.users[name], role=role, org=world.orgs["zone-1"])
    world.teachers["zack"] = add_teacher(world.orgs["zone-1"], user=world.users["zack"], teacher_no="T0005", name="zack",
                                         stage="小学", id_number=idnumber.make("620902", "19880101", 5),
                                         post="专任教师", hired_year=2010)
    return world


SCHOOLS = ["east-1", "east-2", "west-1", "zone-1"]
# importer -> the unit she imports for
IMPORTERS = [("ivan", "inst"), ("bob", "east-1"), ("zoe", "zone-1"), ("carol", "east"), ("cody", "west"),
             ("dora", "city")]
DAYS = [dt.date(2026, 11, 23), dt.date(2027, 12, 31), dt.date(2028, 12, 31)]

PICK = st.integers(0, 63)
HOURS = st.sampled_from([Decimal(4), Decimal(16), Decimal(30), Decimal(72), Decimal(150)])
# Mostly this year, where a verdict can change; sometimes another.
YEAR = st.sampled_from([2026, 2026, 2026, 2027, 2025])
OPERATIONS = st.one_of(
    st.tuples(st.just("declare"), PICK, HOURS, YEAR),
    st.tuples(st.just("enter"), PICK, HOURS, YEAR, st.sampled_from(["校本", "集中"])),
    st.tuples(st.just("approve"), PICK),
    st.tuples(st.just("return"), PICK),
    st.tuples(st.just("revoke"), PICK),
    st.tuples(st.just("correct"), PICK, HOURS),
    st.tuples(st.just("import"), st.sampled_from(IMPORTERS), st.lists(PICK, min_size=1, max_size=4), HOURS, YEAR),
    st.tuples(st.just("hire"), st.sampled_from(SCHOOLS), st.sampled_from([2005, 2026])),
    st.tuples(st.just("clock"), st.sampled_from(DAYS)),
)


def _officer_of(school: Org, role: str) -> User:
    p = Profile.objects.select_related("user").filter(
        role=role, org_id__in=tallies.ancestor_ids(school.path)).order_by("-org__path").first()
    assert p is not None
    return p.user


def _facts(hours: Decimal, year: int, form: str = "集中") -> dict[str, Any]:
    facts = {"year": str(year), "title": f"{year}年培训", "form": form, "level": "区县级", "hours": str(hours),
             "result": "合格"}
    if form == "校本":
        facts["topics"] = str(int(hours) // 4)  # suzhou counts 校本研训 by 专题
    return facts


class Runner:
    """Applies one generated operation through the real services; a refused
    operation (wrong state, out of scope) is part of the sequence too: it
    must leave the tallies untouched."""

    def __init__(self, world: World, note: Callable[[str], None] = lambda _: None) -> None:
        self.world = world
        self.note = note
        self.n = 0
        self.today = DAYS[0]

    def __call__(self, op: tuple[Any, ...]) -> None:
        handler: Callable[..., None] = getattr(self, f"op_{op[0]}")
        try:
            handler(*op[1:])
        except ledger.ServiceError as exc:
            self.note(f"refused: {op[0]} ({type(exc).__name__})")
        else:
            self.note(f"done: {op[0]}")

    def _teacher(self, i: int, among: QuerySet[Teacher] | None = None) -> Teacher | None:
        pool = list((among if among is not None else Teacher.objects.all()).select_related("school").order_by("pk"))
        return pool[i % len(pool)] if pool else None

    def _record(self, i: int) -> Record | None:
        pool = list(Record.objects.select_related("teacher__school").order_by("pk"))
        return pool[i % len(pool)] if pool else None

    def op_declare(self, i: int, hours: Decimal, year: int) -> None:
        t = self._teacher(i, Teacher.objects.filter(user__isnull=False))
        assert t is not None and t.user is not None
        ledger.declare_record(ledger.Actor(t.user), t, _facts(hours, year), [SimpleUploadedFile("证书.pdf", PDF)])

    def op_enter(self, i: int, hours: Decimal, year: int, form: str) -> None:
        t = self._teacher(i)
        assert t is not None
        ledger.enter_school_record(ledger.Actor(_officer_of(t.school, Role.SCHOOL_OFFICER)), t,
                                   _facts(hours, year, form))

    def op_approve(self, i: int) -> None:
        r = self._record(i)
        if r is None:
            return
        action = {Status.SCHOOL_APPROVED: "district_approve", Status.DISTRICT_APPROVED: "certify"}.get(
            Status(r.status), "school_approve")
        role = str(perm.TRANSITIONS[action]["role"])
        ledger.transition(ledger.Actor(_officer_of(r.teacher.school, role)), r.pk, action, r.version)

    def op_return(self, i: int) -> None:
        r = self._record(i)
        if r is not None:
            ledger.return_record(ledger.Actor(_officer_of(r.teacher.school, Role.SCHOOL_OFFICER)), r.pk, "请补充材料")

    def op_revoke(self, i: int) -> None:
        r = self._record(i)
        if r is not None:
            ledger.revoke_record(ledger.Actor(_officer_of(r.teacher.school, Role.DISTRICT_OFFICE)), r.pk, "证书系伪造")

    def op_correct(self, i: int, hours: Decimal) -> None:
        r = self._record(i)
        if r is not None:
            ledger.correct_record(ledger.Actor(_officer_of(r.teacher.school, Role.SCHOOL_OFFICER)), r.pk,
                                  {"hours": str(hours)}, "按结业证书更正学时")

    def op_import(self, importer: tuple[str, str], picks: list[int], hours: Decimal, year: int) -> None:
        who, unit = importer
        node = imports.scope_node(self.world.orgs[unit])
        assert node is not None
        scope = Teacher.objects.filter(school__path__startswith=node.path)
        chosen = {t.pk: t for t in (self._teacher(i, scope) for i in picks) if t is not None}
        if not chosen:
            return
        self.n += 1
        rows = [row(t.teacher_no, f"I{self.n:04d}", hours=str(hours), name=t.name) for t in chosen.values()]
        for r in rows:
            r[3] = str(year)
        actor = ledger.Actor(self.world.users[who])
        batch = imports.validate_roster(actor, self.world.orgs[unit], f"名册{self.n}.csv", csv_bytes(rows))
        assert batch.state == ImportBatch.State.VALID, batch.errors
        assert imports.commit_batch(actor, batch).state == ImportBatch.State.DONE

    def op_hire(self, school: str, hired_year: int) -> None:
        self.n += 1
        add_teacher(self.world.orgs[school], teacher_no=f"H{self.n:04d}", name=f"新教师{self.n}", stage="小学",
                    id_number=idnumber.make("220221", "19900101", self.n), post="专任教师", hired_year=hired_year)

    def op_clock(self, day: dt.date) -> None:
        self.today = day


# zack (the fifth teacher) passes this year under suzhou, loses a record,
# passes again, and fails when the year is over: every bucket is crossed.
ZACK_PASSES_AND_FAILS = [
    ("enter", 4, Decimal(72), 2026, "集中"), ("enter", 4, Decimal(72), 2026, "校本"), ("revoke", 1),
    ("enter", 4, Decimal(72), 2026, "校本"), ("clock", DAYS[1]), ("enter", 4, Decimal(4), 2027, "集中"),
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(OPERATIONS, min_size=3, max_size=12))
def test_every_write_keeps_every_tally_exact(zone_world: World, operations: list[tuple[Any, ...]]) -> None:
    runner = Runner(zone_world, event)
    # Each example starts from the same world: its writes are rolled back.
    with mock.patch.object(timezone, "localdate", lambda *a, **k: runner.today), transaction.atomic():
        assert_tallies_exact()
        for op in operations:
            runner(op)
            assert_tallies_exact()
        for status in Teacher.objects.values_list("result__status", flat=True):
            event(f"status: {status or '未评估'}")
        # (c) recounting from scratch finds nothing to correct
        assert tallies.rebuild().corrected == 0
        transaction.set_rollback(True)


def test_one_teacher_through_every_bucket(zone_world: World) -> None:
    """Random sequences rarely make a teacher pass; this one does, then
    loses it, and fails when the year is over."""
    runner = Runner(zone_world)
    seen = []
    with mock.patch.object(timezone, "localdate", lambda *a, **k: runner.today):
        for op in ZACK_PASSES_AND_FAILS:
            runner(op)
            assert_tallies_exact()
            seen.append(Teacher.objects.get(teacher_no="T0005").result.status)
    # suzhou's cycle is the year: passing by 2026-11-23 is passing ahead of time
    assert seen == ["进行中", "已达标（提前完成）", "进行中", "已达标（提前完成）", "已达标（提前完成）", "未达标"]
    zone = stored_rows()[zone_world.orgs["zone"].pk]
    assert (zone["failed"], zone["year_passed"], zone["year_checked"]) == (1, 0, 1)


def test_a_refused_write_changes_no_tally(world: World) -> None:
    r = world.record("alice", Status.SCHOOL_APPROVED, hours=Decimal(200))
    before = stored_rows()
    with pytest.raises(ledger.Conflict):
        ledger.transition(ledger.Actor(world.users["bob"]), r.pk, "school_approve")
    with pytest.raises(ledger.Denied):
        ledger.revoke_record(ledger.Actor(world.users["cody"]), r.pk, "不在辖区")
    assert stored_rows() == before
    ledger.revoke_record(ledger.Actor(world.users["carol"]), r.pk, "证书系伪造")
    assert_tallies_exact()


def test_a_new_unit_starts_at_zero_and_one_made_behind_the_model_is_counted(world: World) -> None:
    zone = Org.objects.create(name="新学区", kind=OrgKind.ZONE, parent=world.orgs["west"])
    assert stored_rows()[zone.pk] == tallies.zero()
    # bulk_create skips Org.save: no path, no tally row
    school = Org.objects.bulk_create([Org(name="新学校", kind=OrgKind.SCHOOL, parent=zone)])[0]
    Org.objects.filter(pk=school.pk).update(path=f"{zone.path}{school.pk}/")
    school.refresh_from_db()
    assert school.pk not in stored_rows()
    t = add_teacher(school, teacher_no="N0001", name="新教师", id_number=idnumber.make("370102", "19900101", 1))
    assert stored_rows()[school.pk]["teachers"] == 1
    assert_tallies_exact()
    refresh_result(t)
    assert stored_rows()[school.pk]["unevaluated"] == 0
    assert_tallies_exact()


def test_deferred_changes_are_applied_once_and_dropped_with_their_savepoint(world: World) -> None:
    alice = world.teachers["alice"]
    school = alice.school
    passed = tallies.Standing("达标", True)
    with tallies.deferred():
        tallies.change(school, tallies.UNEVALUATED, passed)
        with pytest.raises(RuntimeError), tallies.deferred():
            tallies.change(school, tallies.UNEVALUATED, passed)
            raise RuntimeError
        assert stored_rows()[school.pk]["passed"] == 0  # nothing applied before the end
    rows = stored_rows()
    for org_id in tallies.ancestor_ids(school.path):
        assert rows[org_id]["passed"] == 1 and rows[org_id]["unevaluated"] == rows[org_id]["teachers"] - 1
    assert rows[world.orgs["west"].pk]["passed"] == 0


# ------------------------------------------------------------------ (b) the dashboards


@pytest.fixture
def demo(db: Any) -> None:
    """The demo command itself, small: its teachers and results go through
    the same upkeep as the platform's writes."""
    call_command("demo", teachers=40, stdout=io.StringIO())


def _reference_unit_rows(node: Org) -> list[dict[str, Any]]:
    order: dict[str, int] = {OrgKind.DISTRICT: 0, OrgKind.ZONE: 1, OrgKind.SCHOOL: 2}
    rows = []
    for child in sorted(node.children.exclude(kind=OrgKind.INSTITUTION), key=lambda o: (order.get(o.kind, 3), o.name)):
        c = counted(Teacher.objects.filter(school__path__startswith=child.path))
        rows.append({"org": child, "teachers": c["n"], **c, "year_rate": officer._share(c["year_passed"], c["year_checked"]),
                     "pass_rate": officer._share(c["passed"], c["n"])})
    return rows


def _reference_counts(user: Any, node: Org) -> dict[str, int]:
    return counted(Teacher.objects.for_user(user).filter(school__path__startswith=node.path))


def _get(client: Client, node: Org) -> tuple[Any, str]:
    response = client.get(reverse("dashboard-org", args=[node.pk]))
    assert response.status_code == 200
    return response, re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())


def _page(client: Client, node: Org) -> str:
    return _get(client, node)[1]


OFFICERS = ["city", "east", "west", "officer", "principal", "officer2"]


@pytest.mark.parametrize("login", OFFICERS)
def test_dashboard_pages_are_what_counting_from_scratch_showed(demo: None, login: str) -> None:
    user = User.objects.get(username=login)
    client = Client()
    client.force_login(user)
    nodes = list(Org.objects.filter(perm.org_scope(user)))
    assert nodes
    for node in nodes:
        response, shown = _get(client, node)
        assert response.context["totals"] == _reference_counts(user, node)
        assert response.context["rows"] == (_reference_unit_rows(node) if node.kind != OrgKind.SCHOOL else [])
        with mock.patch.object(officer, "_counts", _reference_counts), \
                mock.patch.object(officer, "unit_rows", _reference_unit_rows):
            assert _page(client, node) == shown, node.name


def test_a_user_who_sees_part_of_a_unit_gets_her_part_counted(world: World) -> None:
    """The tally stands for a unit only when permissions say the user sees
    every teacher under it; otherwise her scoped teachers are counted."""
    ivan = world.users["ivan"]
    batch = imports.validate_roster(ledger.Actor(ivan), world.orgs["inst"], "名册.csv",
                                    csv_bytes([row("T0001", name="alice")]))
    imports.commit_batch(ledger.Actor(ivan), batch)
    city = world.orgs["city"]
    assert not perm.sees_every_teacher_under(ivan, city)
    assert perm.sees_every_teacher_under(world.users["carol"], world.orgs["east-1"])
    assert not perm.sees_every_teacher_under(world.users["carol"], city)
    assert officer._counts(ivan, city) == _reference_counts(ivan, city)
    assert officer._counts(ivan, city)["n"] == 1
    assert officer._counts(world.users["dora"], city)["n"] == 4


def test_the_demo_is_not_all_one_figure(demo: None) -> None:
    city = Org.objects.get(kind=OrgKind.CITY)
    t = stored_rows()[city.pk]
    # every demo teacher is evaluated, this year is checked for all of them,
    # and the units differ, so equal pages are not equal by accident
    assert t["teachers"] == 40 and t["unevaluated"] == 0 and t["year_checked"] == 40
    by_school = {tuple(v.values()) for k, v in stored_rows().items()
                 if Org.objects.get(pk=k).kind == OrgKind.SCHOOL}
    assert len(by_school) > 1
    assert_tallies_exact()


def test_dashboard_reads_the_tally(world: World) -> None:
    """The figures come from the stored row: a tally changed behind the
    services shows (and the rebuild puts it right)."""
    east = world.orgs["east"]
    client = Client()
    client.force_login(world.users["carol"])
    assert re.search(r'id="kpi-passed">0<', _page(client, east))
    UnitTally.objects.filter(org=east).update(passed=F("passed") + 7)
    assert re.search(r'id="kpi-passed">7<', _page(client, east))
    call_command("rebuild_tallies", stdout=io.StringIO())
    assert re.search(r'id="kpi-passed">0<', _page(client, east))


def test_export_rows_come_from_the_tallies(demo: None) -> None:
    client = Client()
    client.force_login(User.objects.get(username="city"))
    city = Org.objects.get(kind=OrgKind.CITY)
    response = client.get(reverse("dashboard-export", args=[city.pk]))
    assert response.status_code == 200
    assert officer.unit_rows(city) == _reference_unit_rows(city)


# ------------------------------------------------------------------ (c) rebuilding from scratch


def test_rebuild_equals_incremental_upkeep(demo: None) -> None:
    world_rows = stored_rows()
    out = io.StringIO()
    call_command("rebuild_tallies", stdout=out)
    assert "其中 0 个" in out.getvalue()
    assert stored_rows() == world_rows
    assert_tallies_exact()


def test_rebuild_repairs_drifted_and_missing_rows(demo: None) -> None:
    expected = stored_rows()
    city = Org.objects.get(kind=OrgKind.CITY)
    school = Org.objects.filter(kind=OrgKind.SCHOOL).first()
    assert school is not None
    UnitTally.objects.filter(org=city).update(failed=F("failed") + 3, teachers=F("teachers") - 1)
    UnitTally.objects.filter(org=school).delete()
    # a missing row is counted from scratch when read, not shown as zero
    assert tallies.stored([school])[school.pk] == expected[school.pk]
    rebuilt = tallies.rebuild()
    assert rebuilt.units == Org.objects.count() and rebuilt.corrected == 2
    assert stored_rows() == expected


def test_the_migration_counts_existing_units_as_the_rebuild_does(demo: None) -> None:
    expected = stored_rows()
    UnitTally.objects.all().delete()
    migration = importlib.import_module("xuefen.web.migrations.0004_unittally")
    migration.count_existing(apps, None)
    assert stored_rows() == expected


# ------------------------------------------------------------------ PostgreSQL: writers at the same time


@pytest.fixture
def on_postgres(transactional_db: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent upkeep needs PostgreSQL (set DATABASE_URL)")


def _together(jobs: list[Callable[[], Any]]) -> list[BaseException]:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            job()
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


@pytest.mark.postgres
def test_simultaneous_writers_keep_tallies_exact_without_deadlocks(on_postgres: None, world: World) -> None:
    """Approvals in three schools, school entries, an import over teachers
    the others touch too (each inserts her records, then refreshes her) and a
    rebuild, all at once: every change lands once, nobody deadlocks."""
    w = world
    pending = {name: w.record(name, hours=Decimal(150)) for name in ("alice", "ella", "will")}
    approved = w.record("anna", Status.SCHOOL_APPROVED, hours=Decimal(40))
    rows = [row(t.teacher_no, "C1", hours="150", name=t.name) for t in (w.teachers["alice"], w.teachers["anna"],
                                                                       w.teachers["ella"])]
    carol = ledger.Actor(w.users["carol"])
    batch = imports.validate_roster(carol, w.orgs["east"], "名册.csv", csv_bytes(rows))
    assert batch.state == ImportBatch.State.VALID, batch.errors

    def approve(name: str, who: str) -> Callable[[], Any]:
        return lambda: ledger.transition(ledger.Actor(w.users[who]), pending[name].pk, "school_approve")

    def enter(name: str) -> Callable[[], Any]:
        return lambda: ledger.enter_school_record(ledger.Actor(w.users["bob"]), w.teachers[name],
                                                  _facts(Decimal(60), 2026, "校本"))

    jobs: list[Callable[[], Any]] = [
        approve("alice", "bob"), approve("ella", "bert"), approve("will", "wes"),
        lambda: ledger.transition(carol, approved.pk, "district_approve"),
        enter("anna"), enter("alice"),
        lambda: imports.commit_batch(carol, batch),
        tallies.rebuild,
    ]
    assert _together(jobs) == []
    assert Record.objects.filter(import_batch=batch).count() == 3
    assert Record.objects.filter(status=Status.PENDING).count() == 0
    assert_tallies_exact()


@pytest.mark.postgres
def test_an_import_waiting_for_a_teacher_holds_no_tally(on_postgres: None, world: World) -> None:
    """An approval holds anna's row and will update the tallies next; an
    import over alice and anna refreshes alice, then waits for anna.  Were
    the import's tally changes applied teacher by teacher, it would hold the
    city's tally while waiting, and the approval would wait for the import:
    a deadlock.  Deferred to the import's end, the approval goes first."""
    w = world
    anna = w.teachers["anna"]
    rows = [row(w.teachers[n].teacher_no, "C1", hours="150", name=n) for n in ("alice", "anna")]
    carol = ledger.Actor(w.users["carol"])
    batch = imports.validate_roster(carol, w.orgs["east"], "名册.csv", csv_bytes(rows))
    assert batch.state == ImportBatch.State.VALID, batch.errors
    holding, release = threading.Event(), threading.Event()

    def approval() -> None:
        with transaction.atomic():
            list(Teacher.objects.select_for_update().filter(pk=anna.pk))
            holding.set()
            assert release.wait(timeout=20)
            Record(teacher=anna, uid="A1", year=2026, title="集中", form="集中", level="区县级", hours=Decimal(40),
                   result="合格", source="school", status=Status.SCHOOL_APPROVED).save()
            refresh_result(Teacher.objects.select_related("school").get(pk=anna.pk))

    def held_then_released() -> None:
        assert holding.wait(timeout=20)
        time.sleep(1.5)  # the import has refreshed alice and waits for anna
        release.set()

    def importing() -> None:
        assert holding.wait(timeout=20)
        imports.commit_batch(carol, batch)

    assert _together([approval, importing, held_then_released]) == []
    assert Record.objects.filter(teacher=anna).count() == 2
    assert_tallies_exact()
