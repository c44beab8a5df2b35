"""Load the demo jurisdiction: a city with two districts bound to two seed
policies, schools, a 学区, a training institution, a few hundred teachers
with records across the years, declarations waiting at every stage, and one
login per role.  The only place in xuefen with known passwords."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from xuefen import idnumber
from xuefen.web.models import Org, OrgKind, Profile, Record, Role, Source, Status, Teacher
from xuefen.web.services import tallies
from xuefen.web.services.evaluation import price_records, refresh_result
from xuefen.web.services.teachers import add_teacher

DEMO_PASSWORD = "xuefen-demo-2026"

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅琳雪婷倩颖慧晶"
STAGES = ["小学", "小学", "初中", "初中", "高中", "幼儿园"]

# (login, role, org key, full name)
ACCOUNTS = [
    ("city", Role.CITY_CENTER, "city", "市教师发展中心 周主任"),
    ("east", Role.DISTRICT_OFFICE, "east", "东区继教办 吴老师"),
    ("west", Role.DISTRICT_OFFICE, "west", "西区继教办 郑老师"),
    ("officer", Role.SCHOOL_OFFICER, "east-1", "东区实验小学 学分专员 孙老师"),
    ("principal", Role.PRINCIPAL, "east-1", "东区实验小学 校长 钱校长"),
    ("officer2", Role.SCHOOL_OFFICER, "west-1", "西区第一中学 学分专员 冯老师"),
    ("institute", Role.INSTITUTION_STAFF, "inst", "市教师进修学院 培训部"),
    ("admin", Role.SYSADMIN, "city", "系统管理员"),
    ("auditor", Role.AUDITOR, "city", "审计员"),
    ("trainer", Role.INSTITUTION_STAFF, "east-inst", "东区教师进修学校 培训部 韩老师"),
    ("expert", Role.EXPERT, "east", "东区评审专家 林教授"),
]


class Command(BaseCommand):
    help = "载入演示数据（已有数据时跳过）"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--teachers", type=int, default=300)
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args: Any, **options: Any) -> None:
        if Org.objects.exists():
            self.stdout.write("演示数据已存在，跳过。")
        else:
            self._build(options["teachers"], options["seed"])
        self.stdout.write(f"\n演示账号（密码均为 {DEMO_PASSWORD}）：")
        User = get_user_model()
        for login, role, _org, _name in [("teacher", Role.TEACHER, "", ""), *ACCOUNTS]:
            if User.objects.filter(username=login).exists():
                self.stdout.write(f"  {login:<10} {Role(role).label}")

    @tallies.deferred()
    def _build(self, n_teachers: int, seed: int) -> None:
        rnd = random.Random(seed)
        today = timezone.localdate()
        city = Org.objects.create(name="示范市", kind=OrgKind.CITY)
        east = Org.objects.create(name="东区", kind=OrgKind.DISTRICT, parent=city, policy="yongji")
        west = Org.objects.create(name="西区", kind=OrgKind.DISTRICT, parent=city, policy="shandong")
        zone = Org.objects.create(name="东区第一学区", kind=OrgKind.ZONE, parent=east)
        orgs: dict[str, Org] = {"city": city, "east": east, "west": west}
        schools = [
            ("east-1", "东区实验小学", zone), ("east-2", "东区第二中学", zone), ("east-3", "东区幼儿园", east),
            ("west-1", "西区第一中学", west), ("west-2", "西区育才小学", west),
        ]
        for key, name, parent in schools:
            orgs[key] = Org.objects.create(name=name, kind=OrgKind.SCHOOL, parent=parent)
        orgs["inst"] = Org.objects.create(name="市教师进修学院", kind=OrgKind.INSTITUTION, parent=city)
        orgs["east-inst"] = Org.objects.create(name="东区教师进修学校", kind=OrgKind.INSTITUTION, parent=east)
        User = get_user_model()
        for login, role, key, name in ACCOUNTS:
            user = User.objects.create_user(login, password=DEMO_PASSWORD, first_name=name)
            Profile.objects.create(user=user, role=role, org=orgs[key])
            if role == Role.SYSADMIN:
                user.is_staff = True
                user.save()
        school_orgs = [orgs[k] for k, _, _ in schools]
        for i in range(n_teachers):
            school = school_orgs[i % len(school_orgs)]
            name = rnd.choice(SURNAMES) + rnd.choice(GIVEN) + (rnd.choice(GIVEN) if rnd.random() < 0.6 else "")
            stage = {"东区幼儿园": "幼儿园"}.get(school.name, rnd.choice(STAGES[:5]))
            hired = rnd.choice([1998, 2005, 2010, 2015, 2019, 2022, today.year - 1])
            teacher = add_teacher(
                school, teacher_no=f"T{i + 1:05d}", name=name, stage=stage,
                id_number=idnumber.make("220221" if school.path.startswith(east.path) else "370102",
                                        f"{rnd.randint(1965, 1999)}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}", i % 1000),
                post="专任教师" if rnd.random() > 0.1 else "非专任教师", hired_year=hired,
                normal_graduate=rnd.random() < 0.7,
                leaves=[{"year": today.year - 1, "kind": "产假"}] if rnd.random() < 0.03 else [],
            )
            if i == 0:
                user = User.objects.create_user("teacher", password=DEMO_PASSWORD, first_name=name)
                Profile.objects.create(user=user, role=Role.TEACHER, org=school)
                teacher.user = user
                teacher.save()
            self._records(rnd, teacher, school.path.startswith(east.path), today.year)
        for teacher in Teacher.objects.all():
            refresh_result(teacher)
        self._close_last_year(orgs, today.year - 1)
        self._training(orgs, today.year)

    def _close_last_year(self, orgs: dict[str, Org], year: int) -> None:
        """东区实验小学 closes its last full year through every step of
        services.annual, dated as a school would do it early the next January
        (the 公示 then takes its working days), so certificates exist."""
        import datetime as dt

        from xuefen.web.services import annual

        User = get_user_model()
        school = orgs["east-1"]
        actor = {login: annual.Actor(User.objects.get(username=login)) for login in ("officer", "principal", "east")}
        start = dt.date(year + 1, 1, 5)
        close = annual.close_year(actor["officer"], school.pk, year, today=start)
        close = annual.sign_off(actor["principal"], close.pk, today=start)
        assert close.publicity_end is not None
        close = annual.submit(actor["officer"], close.pk, today=close.publicity_end + dt.timedelta(days=1))
        annual.confirm(actor["east"], close.pk)

    def _training(self, orgs: dict[str, Org], year: int) -> None:
        """Issue 15, through the services (so the audit log tells the story):
        a project through every stage to a closed class with its credits, a
        running class the demo teacher can sign in to today, one project
        waiting for 论证, one returned, and a 校本研修 project accepted."""
        import datetime as dt

        from xuefen.web.models import ProjectKind
        from xuefen.web.services import research, training
        from xuefen.web.services.ledger import Actor

        User = get_user_model()
        who = {u.username: Actor(u) for u in User.objects.filter(username__in=["trainer", "expert", "east", "officer"])}
        east_teachers = list(Teacher.objects.filter(school=orgs["east-1"]).order_by("teacher_no")[:12])

        def scored(title: str, hours: str, kind: str = ProjectKind.TRAINING, applicant: str = "trainer",
                   org: str = "east-inst") -> Any:
            p = training.apply_project(who[applicant], orgs[org], {
                "title": title, "year": str(year), "form": "集中" if kind == ProjectKind.TRAINING else "校本",
                "level": "区县级" if kind == ProjectKind.TRAINING else "校级", "hours": hours, "capacity": "40",
                "target": "东区中小学教师", "plan": "需求调研、集中研修、课例实践、考核评价。"}, kind=kind)
            training.score_project(who["expert"], p.pk, {k: str(m - m // 5) for k, m in training.criteria().items()},
                                   "方案完整，目标明确")
            return p

        # every stage: 申报 → 论证 → 立项 → course, class, sessions, results → 结班 (credits)
        done = scored(f"{year}年东区骨干教师教学能力提升培训", "24")
        training.decide_project(who["east"], done.pk, True, "同意立项")
        course = training.add_course(who["trainer"], done.pk, {"title": "课堂观察与诊断", "hours": "24",
                                                               "lecturers": "区教研员团队"})
        klass = training.open_class(who["trainer"], course.pk, "第一期", 30)
        start = timezone.now() - dt.timedelta(days=30)
        session = training.add_session(who["trainer"], klass.pk, "集中研修", start, start + dt.timedelta(hours=6), "24")
        for t in east_teachers[1:9]:
            training.assign(who["officer"], klass.pk, t)
        enrolments = list(klass.enrolments.all())
        training.tick_attendance(who["trainer"], session.pk, [e.pk for e in enrolments])
        training.enter_results(who["trainer"], klass.pk, {e.pk: ("优秀" if i < 2 else "合格")
                                                          for i, e in enumerate(enrolments)})
        training.close_class(who["trainer"], klass.pk)
        # a running class, open today: the demo teacher (T00001) may enrol and sign in
        running = scored(f"{year}年东区信息技术应用能力提升培训", "12")
        training.decide_project(who["east"], running.pk, True, "同意立项")
        course = training.add_course(who["trainer"], running.pk, {"title": "智慧课堂工具", "hours": "12"})
        klass = training.open_class(who["trainer"], course.pk, "第一期", 30)
        now = timezone.now()
        training.add_session(who["trainer"], klass.pk, "第一次集中研修", now - dt.timedelta(hours=1),
                             now + dt.timedelta(hours=8), "6")
        for t in east_teachers[9:12]:
            training.assign(who["officer"], klass.pk, t)
        # waiting for 论证, and one returned
        training.apply_project(who["trainer"], orgs["east-inst"], {"title": f"{year + 1}年东区班主任专题培训",
                                                                   "year": str(year + 1), "form": "集中",
                                                                   "level": "区县级", "hours": "30"})
        returned = scored(f"{year}年东区暑期读书活动", "8")
        training.decide_project(who["east"], returned.pk, False, "培训内容与目标不匹配，请修改实施方案后重新申报")
        # 校本研修: plan → 论证 → 立项 → members, activity → 验收 passed
        school = scored(f"{year}年东区实验小学校本研修：课例研究", "20", ProjectKind.RESEARCH, "officer", "east-1")
        training.decide_project(who["east"], school.pk, True, "同意立项")
        klass = research.set_members(who["officer"], school.pk, [t.pk for t in east_teachers[:4]])
        session = training.add_session(who["officer"], klass.pk, "课例研讨", start, start + dt.timedelta(hours=3), "10")
        training.tick_attendance(who["officer"], session.pk, [e.pk for e in klass.enrolments.all()])
        research.accept(who["east"], school.pk, True, "")

    def _records(self, rnd: random.Random, teacher: Teacher, east: bool, this_year: int) -> None:
        first = 2023 if east else 2024
        diligence = rnd.choice([60, 90, 100, 100, 110, 130])  # percent of the yearly norm
        recs: list[Record] = []
        n = 0

        def add(year: int, **facts: Any) -> None:
            nonlocal n
            n += 1
            status = Status.CERTIFIED if year < this_year else rnd.choice(
                [Status.CERTIFIED, Status.CERTIFIED, Status.DISTRICT_APPROVED, Status.SCHOOL_APPROVED, Status.PENDING])
            source = Source.SCHOOL if facts.get("form") == "校本" else rnd.choice([Source.INSTITUTION, Source.DECLARATION])
            recs.append(Record(teacher=teacher, uid=f"R{year}{n:03d}", year=year, source=source, status=status, **facts))

        for year in range(max(first, (teacher.hired_year or first)), this_year + 1):
            if east:
                add(year, title=f"{year}年永吉县骨干教师集中培训", form="集中", level="区县级",
                    hours=_h(24, diligence), result=rnd.choice(["合格", "合格", "优秀"]))
                add(year, title=f"{year}年国培计划网络研修", form="网络", level="国家级", program="国培计划",
                    hours=_h(24, diligence), result="合格")
                add(year, title=f"{year}年校本研修：课例研究", form="校本", level="校级", hours=_h(48, diligence))
            else:
                add(year, title=f"{year}年市级学科培训", form="集中", level="市级", hours=_h(30, diligence),
                    result="合格")
                add(year, title=f"{year}年远程研修", form="网络", level="省级", hours=_h(20, diligence), result="合格")
                add(year, title=f"{year}年校本培训", form="校本", level="校级", hours=_h(20, diligence), result="合格")
        price_records(teacher, recs)
        Record.objects.bulk_create(recs)


def _h(hours: int, percent: int) -> Decimal:
    return Decimal(hours * percent // 100)
