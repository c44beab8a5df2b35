"""A training world beside the named people of conftest.World (issue 15):

    示范市
    ├── 北区, policy chifeng (nick: district office; eric: expert)
    │   ├── 北区第一小学 (sue: school officer; teachers tina, tom, tara, tess, toby)
    │   └── 北区教师培训中心 (irene: institution staff)
    └── 南区, policy weifang (sid: district office)
        └── 南区第一小学 (wendy: teacher)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from tests.web.conftest import PASSWORD, World

from xuefen import idnumber
from xuefen.web.models import Org, OrgKind, Profile, Role, Teacher, TrainingClass, TrainingProject
from xuefen.web.services import training
from xuefen.web.services.ledger import Actor
from xuefen.web.services.teachers import add_teacher

NORTH_TEACHERS = ("tina", "tom", "tara", "tess", "toby")


@dataclass
class TrainingWorld:
    base: World
    orgs: dict[str, Org]
    users: dict[str, User]
    teachers: dict[str, Teacher]

    def actor(self, name: str) -> Actor:
        return Actor(self.users[name])

    def approved_project(self, **data: Any) -> TrainingProject:
        fields = {"title": "2026年区县级骨干教师集中培训", "year": "2026", "form": "集中", "level": "区县级",
                  "hours": "24", "capacity": "30"}
        fields.update(data)
        project = training.apply_project(self.actor("irene"), self.orgs["north-inst"], fields)
        training.score_project(self.actor("eric"), project.pk, {k: str(v) for k, v in training.criteria().items()},
                               "方案完整")
        return training.decide_project(self.actor("nick"), project.pk, True, "同意立项")

    def running_class(self, teachers: tuple[str, ...] = NORTH_TEACHERS, hours: str = "24") -> TrainingClass:
        project = self.approved_project(hours=hours)
        course = training.add_course(self.actor("irene"), project.pk, {"title": "课堂观察", "hours": hours})
        klass = training.open_class(self.actor("irene"), course.pk, "一班", 30)
        for name in teachers:
            training.enrol(self.actor(name), klass.pk, self.teachers[name])
        return klass

    def session(self, klass: TrainingClass, hours: str = "6", start: dt.datetime | None = None) -> Any:
        start = start or timezone.now() - dt.timedelta(minutes=10)
        return training.add_session(self.actor("irene"), klass.pk, "第一讲", start, start + dt.timedelta(hours=3),
                                    hours)


def build(base: World) -> TrainingWorld:
    city = base.orgs["city"]
    north = Org.objects.create(name="北区", kind=OrgKind.DISTRICT, parent=city, policy="chifeng")
    south = Org.objects.create(name="南区", kind=OrgKind.DISTRICT, parent=city, policy="weifang")
    orgs = {
        "north": north, "south": south,
        "north-1": Org.objects.create(name="北区第一小学", kind=OrgKind.SCHOOL, parent=north),
        "north-inst": Org.objects.create(name="北区教师培训中心", kind=OrgKind.INSTITUTION, parent=north),
        "south-1": Org.objects.create(name="南区第一小学", kind=OrgKind.SCHOOL, parent=south),
    }
    people = [("nick", Role.DISTRICT_OFFICE, "north"), ("eric", Role.EXPERT, "north"),
              ("sue", Role.SCHOOL_OFFICER, "north-1"), ("irene", Role.INSTITUTION_STAFF, "north-inst"),
              ("sid", Role.DISTRICT_OFFICE, "south"),
              *((n, Role.TEACHER, "north-1") for n in NORTH_TEACHERS), ("wendy", Role.TEACHER, "south-1")]
    users: dict[str, User] = {}
    for name, role, org in people:
        users[name] = User.objects.create_user(name, password=PASSWORD, first_name=name)
        Profile.objects.create(user=users[name], role=role, org=orgs[org])
    teachers: dict[str, Teacher] = {}
    for i, name in enumerate((*NORTH_TEACHERS, "wendy")):
        school = orgs["south-1" if name == "wendy" else "north-1"]
        teachers[name] = add_teacher(
            school, user=users[name], teacher_no=f"N{i + 1:04d}", name=name, stage="小学",
            id_number=idnumber.make("150402", "19880101", i + 1), post="专任教师", hired_year=2015)
    return TrainingWorld(base, orgs, users, teachers)
