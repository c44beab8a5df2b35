"""Training projects, classes, attendance, results and 校本研修 (issue 15):
the services, the limits before saving, credits through the ledger with no
double counting, "what to take" from the engine's plan."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from tests.web.conftest import World
from tests.web.training_world import TrainingWorld, build

from xuefen.web.models import (
    Attendance,
    AuditEntry,
    Enrolment,
    Org,
    OrgKind,
    Profile,
    ProjectKind,
    ProjectState,
    Record,
    Source,
    Status,
    TrainingClass,
)
from xuefen.web.services import research, training
from xuefen.web.services.ledger import Conflict, Denied, ServiceError


@pytest.fixture
def tw(world: World) -> TrainingWorld:
    return build(world)


def test_project_lifecycle_and_who_may_act(tw: TrainingWorld) -> None:
    data = {"title": "新教师培训", "year": "2026", "form": "集中", "level": "区县级", "hours": "24", "capacity": "40"}
    with pytest.raises(Denied):
        training.apply_project(tw.actor("sue"), tw.orgs["north-inst"], data)  # not her unit
    project = training.apply_project(tw.actor("irene"), tw.orgs["north-inst"], data)
    assert project.approver_org == tw.orgs["north"] and project.state == ProjectState.SUBMITTED
    with pytest.raises(Conflict):  # 立项 needs an expert's 论证 first (朝阳 附件4 第七条)
        training.decide_project(tw.actor("nick"), project.pk, True, "")
    with pytest.raises(Denied):
        training.score_project(tw.actor("nick"), project.pk, {}, "")
    with pytest.raises(ServiceError, match="最多 30 分"):
        training.score_project(tw.actor("eric"), project.pk, {"需求与目标": "31", "内容与课程": "1", "师资": "1",
                                                               "管理与考核": "1"}, "")
    score = training.score_project(tw.actor("eric"), project.pk, {"需求与目标": "25", "内容与课程": "20.5",
                                                                   "师资": "15", "管理与考核": "10"}, "可行")
    assert score.total == Decimal("70.5")
    with pytest.raises(Denied):
        training.decide_project(tw.actor("sid"), project.pk, True, "")  # another district
    with pytest.raises(ServiceError, match="理由"):
        training.decide_project(tw.actor("nick"), project.pk, False, " ")
    project = training.decide_project(tw.actor("nick"), project.pk, True, "同意")
    assert project.state == ProjectState.APPROVED
    actions = set(AuditEntry.objects.filter(object_type="TrainingProject", object_id=str(project.pk))
                  .values_list("action", flat=True))
    assert actions == {"project_apply", "project_score", "project_approve"}


def test_bad_project_facts_are_refused_in_chinese(tw: TrainingWorld) -> None:
    with pytest.raises(ServiceError, match="形式"):
        training.apply_project(tw.actor("irene"), tw.orgs["north-inst"],
                               {"title": "x", "hours": "24", "form": "飞行"})
    with pytest.raises(ServiceError, match="学时"):
        training.apply_project(tw.actor("irene"), tw.orgs["north-inst"], {"title": "x", "hours": "abc"})


def test_enrolment_capacity_and_waiting_list(tw: TrainingWorld) -> None:
    project = tw.approved_project()
    course = training.add_course(tw.actor("irene"), project.pk, {"title": "课", "hours": "24"})
    klass = training.open_class(tw.actor("irene"), course.pk, "小班", 2)
    states = [training.enrol(tw.actor(n), klass.pk, tw.teachers[n]).state for n in ("tina", "tom", "tara")]
    assert states == [Enrolment.State.ENROLLED, Enrolment.State.ENROLLED, Enrolment.State.WAITING]
    with pytest.raises(Denied):
        training.enrol(tw.actor("tina"), klass.pk, tw.teachers["tom"])  # only herself
    with pytest.raises(Denied):  # 南区 teacher: the class is for 北区
        training.enrol(tw.actor("wendy"), klass.pk, tw.teachers["wendy"])
    with pytest.raises(Conflict):
        training.enrol(tw.actor("tina"), klass.pk, tw.teachers["tina"])


def test_signin_by_token_within_the_window_only(tw: TrainingWorld) -> None:
    klass = tw.running_class(("tina", "tom"))
    session = tw.session(klass)
    token = training.signin_token(session)
    training.sign_in(tw.actor("tina"), token, tw.teachers["tina"])
    training.sign_in(tw.actor("tina"), token, tw.teachers["tina"])  # twice: one attendance
    assert Attendance.objects.filter(session=session).count() == 1
    with pytest.raises(ServiceError, match="签到码无效"):
        training.sign_in(tw.actor("tom"), token[:-2] + "xx", tw.teachers["tom"])
    with pytest.raises(ServiceError, match="不在签到时间内"):
        training.sign_in(tw.actor("tom"), token, tw.teachers["tom"], now=session.ends_at + dt.timedelta(hours=2))
    with pytest.raises(Denied):  # not in the class
        training.sign_in(tw.actor("tara"), token, tw.teachers["tara"])


def test_excellent_share_over_the_limit_is_refused_before_saving(tw: TrainingWorld) -> None:
    """赤峰 第十九条: 优秀 ≤ 25%; five participants → at most one."""
    klass = tw.running_class()
    ids = {e.teacher.name: e.pk for e in klass.enrolments.select_related("teacher")}
    results = {ids["tina"]: "优秀", ids["tom"]: "优秀", ids["tara"]: "合格", ids["tess"]: "合格", ids["toby"]: "合格"}
    with pytest.raises(ServiceError, match=r"优秀 2 人，超过本班 5 人的 25%（最多 1 人；赤峰市办法 第十九条）"):
        training.enter_results(tw.actor("irene"), klass.pk, results)
    assert not Enrolment.objects.filter(klass=klass).exclude(result="").exists()
    results[ids["tom"]] = "合格"
    training.enter_results(tw.actor("irene"), klass.pk, results)
    assert Enrolment.objects.get(pk=ids["tina"]).result == "优秀"


def test_absence_over_the_policy_share_is_refused(tw: TrainingWorld) -> None:
    """潍坊 第十七条: absent more than a quarter → 取消考核资格 (policy gate-absence)."""
    # 南区 (weifang): an institution of 南区 runs a class for wendy; eric reviews there.
    inst = Org.objects.create(name="南区培训中心", kind=OrgKind.INSTITUTION, parent=tw.orgs["south"])
    Profile.objects.filter(user=tw.users["irene"]).update(org=inst)
    tw.users["irene"].refresh_from_db()
    p = training.apply_project(tw.actor("irene"), inst, {"title": "潍坊培训", "form": "集中", "level": "区县级",
                                                          "hours": "12", "capacity": "5"})
    Profile.objects.filter(user=tw.users["eric"]).update(org=tw.orgs["south"])
    tw.users["eric"].refresh_from_db()
    training.score_project(tw.actor("eric"), p.pk, {k: "1" for k in training.criteria()}, "")
    training.decide_project(tw.actor("sid"), p.pk, True, "")
    course = training.add_course(tw.actor("irene"), p.pk, {"title": "课", "hours": "12"})
    klass = training.open_class(tw.actor("irene"), course.pk, "一班", 5)
    e = training.enrol(tw.actor("wendy"), klass.pk, tw.teachers["wendy"])
    s1 = tw.session(klass, hours="8")
    tw.session(klass, hours="4")
    Attendance.objects.create(session=s1, teacher=tw.teachers["wendy"], via=Attendance.Via.LIST)
    # absent 4 of 12 hours: a third, more than a quarter
    with pytest.raises(ServiceError, match=r"wendy缺课 4 学时，超过总课时 12 的 1/4.*潍坊市规定 第十七条"):
        training.enter_results(tw.actor("irene"), klass.pk, {e.pk: "合格"})
    training.enter_results(tw.actor("irene"), klass.pk, {e.pk: "不合格"})
    assert Enrolment.objects.get(pk=e.pk).result == "不合格"


def test_close_class_writes_records_through_the_ledger(tw: TrainingWorld) -> None:
    klass = tw.running_class(("tina", "tom"))
    session = tw.session(klass, hours="6")
    training.sign_in(tw.actor("tina"), training.signin_token(session), tw.teachers["tina"])
    ids = {e.teacher.name: e.pk for e in klass.enrolments.select_related("teacher")}
    with pytest.raises(ServiceError, match="尚未登记考核结果"):
        training.close_class(tw.actor("irene"), klass.pk)
    training.enter_results(tw.actor("irene"), klass.pk, {ids["tina"]: "合格", ids["tom"]: "合格"})
    with pytest.raises(Denied):
        training.close_class(tw.actor("sue"), klass.pk)
    records = training.close_class(tw.actor("irene"), klass.pk)
    assert len(records) == 2
    tina = Record.objects.get(teacher=tw.teachers["tina"])
    assert (tina.uid, tina.source, tina.status, tina.approved) == (f"TC{klass.pk}", Source.TRAINING,
                                                                   Status.CERTIFIED, True)
    assert tina.hours == Decimal(24) and tina.absent_hours is None
    assert tina.credits == Decimal(24)  # 赤峰 第十条: 集中 区县级 1 学分/学时 (engine)
    tom = Record.objects.get(teacher=tw.teachers["tom"])
    assert tom.absent_hours == Decimal(6)
    assert tw.teachers["tina"].result.total == Decimal(24)  # re-evaluated
    assert AuditEntry.objects.filter(action="training_credit").count() == 2
    with pytest.raises(Conflict):
        training.close_class(tw.actor("irene"), klass.pk)


def test_no_double_counting_with_an_imported_roster(tw: TrainingWorld) -> None:
    """A roster imported before closing is linked, not counted again; one
    imported after closing with the class's 记录编号 is refused."""
    from xuefen.web.services import imports
    from xuefen.web.services.ledger import Actor

    klass = tw.running_class(("tina", "tom"))
    tw.session(klass)
    project = klass.course.project
    csv_text = ("教师编号,姓名,记录编号,登记年度,培训项目名称,形式,级别,学时,考核结果\n"
                f"N0001,tina,R1,2026,{project.title},集中,区县级,24,合格\n")
    batch = imports.validate_roster(Actor(tw.users["irene"]), tw.orgs["north-inst"], "名单.csv", csv_text.encode())
    assert batch.state == "valid", batch.errors
    imports.commit_batch(Actor(tw.users["irene"]), batch)
    ids = {e.teacher.name: e.pk for e in klass.enrolments.select_related("teacher")}
    training.enter_results(tw.actor("irene"), klass.pk, {ids["tina"]: "合格", ids["tom"]: "合格"})
    records = training.close_class(tw.actor("irene"), klass.pk)
    assert [r.teacher.name for r in records] == ["tom"]
    assert Record.objects.filter(teacher=tw.teachers["tina"]).count() == 1
    assert Enrolment.objects.get(pk=ids["tina"]).record.uid == "R1"
    again = ("教师编号,姓名,记录编号,登记年度,培训项目名称,形式,级别,学时,考核结果\n"
             f"N0002,tom,TC{klass.pk},2026,{project.title},集中,区县级,24,合格\n")
    later = imports.validate_roster(Actor(tw.users["irene"]), tw.orgs["north-inst"], "名单2.csv", again.encode())
    assert later.state == "invalid" and "同一记录不能重复导入" in str(later.errors)
    # the same training under another 记录编号 is refused too
    other = ("教师编号,姓名,记录编号,登记年度,培训项目名称,形式,级别,学时,考核结果\n"
             f"N0002,tom,R9,2026,{project.title},集中,区县级,24,合格\n")
    third = imports.validate_roster(Actor(tw.users["irene"]), tw.orgs["north-inst"], "名单3.csv", other.encode())
    assert third.state == "invalid" and "已由平台结班登记（记录编号 TC" in str(third.errors)


def test_what_to_take_orders_by_the_gap_closed(tw: TrainingWorld) -> None:
    small = tw.running_class((), hours="6")
    big = tw.running_class((), hours="30")
    offers = training.what_to_take(tw.teachers["tina"])
    assert [o["class"].pk for o in offers[:2]] == [big.pk, small.pk]
    assert offers[0]["closes"] > offers[1]["closes"] > 0
    training.enrol(tw.actor("tina"), big.pk, tw.teachers["tina"])
    assert big.pk not in [o["class"].pk for o in training.what_to_take(tw.teachers["tina"])]
    assert training.what_to_take(tw.teachers["wendy"]) == []  # 南区: no class for her


def _research(tw: TrainingWorld) -> Any:
    p = training.apply_project(tw.actor("sue"), tw.orgs["north-1"], {"title": "课例研究", "hours": "20",
                                                                      "capacity": "3", "plan": "每月一次课例研讨"},
                               kind=ProjectKind.RESEARCH)
    training.score_project(tw.actor("eric"), p.pk, {k: "10" for k in training.criteria()}, "")
    training.decide_project(tw.actor("nick"), p.pk, True, "")
    klass = research.set_members(tw.actor("sue"), p.pk, [tw.teachers["tina"].pk, tw.teachers["tom"].pk])
    start = timezone.now() - dt.timedelta(minutes=5)
    s1 = training.add_session(tw.actor("sue"), klass.pk, "课例研讨一", start, start + dt.timedelta(hours=2), "4")
    training.add_session(tw.actor("sue"), klass.pk, "课例研讨二", start, start + dt.timedelta(hours=2), "6")
    training.sign_in(tw.actor("tina"), training.signin_token(s1), tw.teachers["tina"])
    training.tick_attendance(tw.actor("sue"), s1.pk, [e.pk for e in klass.enrolments.all()])
    return p, klass


def test_research_passed_gives_credits_by_attended_hours(tw: TrainingWorld) -> None:
    p, klass = _research(tw)
    with pytest.raises(Denied):
        research.accept(tw.actor("sue"), p.pk, True, "")
    records = research.accept(tw.actor("nick"), p.pk, True, "")
    by = {r.teacher.name: r for r in records}
    assert by["tina"].hours == Decimal(4) and by["tina"].form == "校本"
    assert by["tina"].credits == Decimal(2)  # 赤峰 第十一条: 校本研修 0.5 学分/学时
    p.refresh_from_db()
    assert p.state == ProjectState.PASSED
    assert TrainingClass.objects.get(pk=klass.pk).state == TrainingClass.State.CLOSED


def test_research_failed_withholds_with_the_reason(tw: TrainingWorld) -> None:
    p, _klass = _research(tw)
    with pytest.raises(ServiceError, match="原因"):
        research.accept(tw.actor("nick"), p.pk, False, "")
    assert research.accept(tw.actor("nick"), p.pk, False, "研修记录不完整，组织不力") == []
    assert not Record.objects.filter(teacher__in=[tw.teachers["tina"], tw.teachers["tom"]]).exists()
    e = Enrolment.objects.get(klass__course__project=p, teacher=tw.teachers["tina"])
    assert e.withheld_reason == "研修记录不完整，组织不力"
    assert tw.users["tina"].notifications.filter(message__contains="不予认定学分").exists()
    client = Client()
    client.force_login(tw.users["tina"])
    page = client.get("/training/mine/").content.decode()
    assert "研修记录不完整，组织不力" in page


def test_survey_and_project_report(tw: TrainingWorld) -> None:
    klass = tw.running_class(("tina", "tom"))
    session = tw.session(klass, hours="6")
    training.sign_in(tw.actor("tina"), training.signin_token(session), tw.teachers["tina"])
    ids = {e.teacher.name: e.pk for e in klass.enrolments.select_related("teacher")}
    with pytest.raises(ServiceError, match="1–5"):
        training.submit_survey(tw.actor("tina"), ids["tina"], {"内容实用": "6"}, "")
    with pytest.raises(Denied):
        training.submit_survey(tw.actor("tom"), ids["tina"], dict.fromkeys(training.SURVEY_ITEMS, "5"), "")
    training.submit_survey(tw.actor("tina"), ids["tina"], dict.fromkeys(training.SURVEY_ITEMS, "5"), "很实用")
    training.submit_survey(tw.actor("tom"), ids["tom"], dict.fromkeys(training.SURVEY_ITEMS, "4"), "")
    with pytest.raises(Conflict):
        training.submit_survey(tw.actor("tom"), ids["tom"], dict.fromkeys(training.SURVEY_ITEMS, "4"), "")
    training.enter_results(tw.actor("irene"), klass.pk, {ids["tina"]: "合格", ids["tom"]: "不合格"})
    training.close_class(tw.actor("irene"), klass.pk)
    report = training.project_report(klass.course.project)
    assert report["participants"] == 2 and report["results"] == {"优秀": 0, "合格": 1, "不合格": 1}
    assert report["attendance"] == Decimal("50.0")  # one of two signed in to the one session
    assert report["credits"] == Decimal(24)  # tina's 24; tom's 不合格 record earns nothing (赤峰 第十九条)
    assert report["averages"]["总体满意"] == Decimal("4.50") and report["comments"] == ["很实用"]
    client = Client()
    client.force_login(tw.users["nick"])
    page = client.get(f"/training/report/{klass.course.project.year}/").content.decode()
    assert klass.course.project.title in page and "4.50" in page
    api = client.get(f"/api/training/projects/{klass.course.project.pk}/report/").json()
    assert api["credits"] == "24" and api["attendance"] == "50"
    client.force_login(tw.users["tina"])
    assert client.get(f"/api/training/projects/{klass.course.project.pk}/report/").status_code == 403


def test_withdraw_promotes_the_first_on_the_waiting_list(tw: TrainingWorld) -> None:
    project = tw.approved_project()
    course = training.add_course(tw.actor("irene"), project.pk, {"title": "课", "hours": "24"})
    klass = training.open_class(tw.actor("irene"), course.pk, "小班", 1)
    tina = training.enrol(tw.actor("tina"), klass.pk, tw.teachers["tina"])
    tom = training.enrol(tw.actor("tom"), klass.pk, tw.teachers["tom"])
    tara = training.enrol(tw.actor("tara"), klass.pk, tw.teachers["tara"])
    assert (tom.state, tara.state) == (Enrolment.State.WAITING, Enrolment.State.WAITING)
    with pytest.raises(Denied):
        training.withdraw(tw.actor("tom"), tina.pk)
    training.withdraw(tw.actor("tina"), tina.pk)
    states = dict(Enrolment.objects.filter(klass=klass).values_list("teacher__name", "state"))
    assert states == {"tina": "withdrawn", "tom": "enrolled", "tara": "waiting"}
    assert tw.users["tom"].notifications.filter(message__contains="候补转为正式学员").exists()
    with pytest.raises(Conflict):
        training.withdraw(tw.actor("tina"), tina.pk)


def test_research_projects_take_no_courses_and_close_only_by_acceptance(tw: TrainingWorld) -> None:
    p, klass = _research(tw)
    with pytest.raises(ServiceError, match="不设课程"):
        training.add_course(tw.actor("sue"), p.pk, {"title": "x", "hours": "1"})
    with pytest.raises(ServiceError, match="验收"):
        training.close_class(tw.actor("sue"), klass.pk)


def test_chaoyang_elective_courses_are_built_of_four_hour_units(tw: TrainingWorld) -> None:
    """朝阳 附件5 第十五条: 选修课程以 4 学时为基本单元."""
    tw.orgs["north"].policy = "chaoyang-2016"
    tw.orgs["north"].save()
    project = tw.approved_project(category="选修", hours="20")
    with pytest.raises(ServiceError, match=r"4 学时为基本单元，课程学时 6 不是 4 的整数倍（朝阳 附件5 第十五条）"):
        training.add_course(tw.actor("irene"), project.pk, {"title": "讲座", "hours": "6"})
    assert training.add_course(tw.actor("irene"), project.pk, {"title": "讲座", "hours": "8"}).hours == 8
    other = tw.approved_project(category="专业必修", hours="6")
    assert training.add_course(tw.actor("irene"), other.pk, {"title": "讲座", "hours": "6"}).hours == 6
