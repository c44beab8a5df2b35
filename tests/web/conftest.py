"""Named people for the platform tests, in the spirit of alice, bob and
charlie: each test says who acts, and who must be refused.

    示范市 (dora: city center; audrey: auditor; sam: sysadmin)
    ├── 东区, policy yongji (carol: district office)
    │   ├── 东区实验小学 (bob: school officer; pat: principal; teachers alice, anna)
    │   └── 东区第二中学 (bert: school officer; teacher ella)
    ├── 西区, policy shandong (cody: district office)
    │   └── 西区第一中学 (wes: school officer; teacher will)
    └── 市教师进修学院 (ivan: institution staff)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from xuefen import idnumber
from xuefen.web.apps import allow_audit_maintenance
from xuefen.web.models import Org, OrgKind, Profile, Record, Role, Source, Status, Teacher
from xuefen.web.services.evaluation import price_records, refresh_result
from xuefen.web.services.teachers import add_teacher

PASSWORD = "a-long-test-password"

# pytest-django empties the database between transactional tests (TRUNCATE on
# PostgreSQL, DELETE on SQLite), which the audit log's triggers refuse; the
# suite's connections ask for maintenance.  The guard tests turn it off.
allow_audit_maintenance(True)


@dataclass
class World:
    orgs: dict[str, Org]
    users: dict[str, User]
    teachers: dict[str, Teacher]

    def record(self, teacher: str, status: str = Status.PENDING, **facts: Any) -> Record:
        t = self.teachers[teacher]
        n = t.records.count() + 1
        defaults: dict[str, Any] = {"year": 2026, "title": f"培训{n}", "form": "集中", "level": "区县级",
                                    "hours": Decimal(24), "result": "合格"}
        defaults.update(facts)
        r = Record(teacher=t, uid=f"X{n:03d}", source=Source.DECLARATION, status=status, **defaults)
        price_records(t, [r])
        r.save()
        refresh_result(t)
        return r


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    # Argon2 makes every named user cost a fraction of a second; the shipped
    # hasher is checked against the settings module in test_security.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db: Any) -> World:
    city = Org.objects.create(name="示范市", kind=OrgKind.CITY)
    east = Org.objects.create(name="东区", kind=OrgKind.DISTRICT, parent=city, policy="yongji")
    west = Org.objects.create(name="西区", kind=OrgKind.DISTRICT, parent=city, policy="shandong")
    orgs = {
        "city": city, "east": east, "west": west,
        "east-1": Org.objects.create(name="东区实验小学", kind=OrgKind.SCHOOL, parent=east),
        "east-2": Org.objects.create(name="东区第二中学", kind=OrgKind.SCHOOL, parent=east),
        "west-1": Org.objects.create(name="西区第一中学", kind=OrgKind.SCHOOL, parent=west),
        "inst": Org.objects.create(name="市教师进修学院", kind=OrgKind.INSTITUTION, parent=city),
    }
    people = [
        ("dora", Role.CITY_CENTER, "city"), ("audrey", Role.AUDITOR, "city"), ("sam", Role.SYSADMIN, "city"),
        ("carol", Role.DISTRICT_OFFICE, "east"), ("cody", Role.DISTRICT_OFFICE, "west"),
        ("bob", Role.SCHOOL_OFFICER, "east-1"), ("pat", Role.PRINCIPAL, "east-1"),
        ("bert", Role.SCHOOL_OFFICER, "east-2"), ("wes", Role.SCHOOL_OFFICER, "west-1"),
        ("ivan", Role.INSTITUTION_STAFF, "inst"),
        ("alice", Role.TEACHER, "east-1"), ("anna", Role.TEACHER, "east-1"), ("ella", Role.TEACHER, "east-2"),
        ("will", Role.TEACHER, "west-1"),
    ]
    users: dict[str, User] = {}
    for name, role, org in people:
        users[name] = User.objects.create_user(name, password=PASSWORD, first_name=name)
        Profile.objects.create(user=users[name], role=role, org=orgs[org])
    teachers: dict[str, Teacher] = {}
    for i, name in enumerate(("alice", "anna", "ella", "will")):
        school = users[name].profile.org
        assert school is not None
        teachers[name] = add_teacher(
            school, user=users[name], teacher_no=f"T{i + 1:04d}", name=name, stage="小学",
            id_number=idnumber.make("220221", "19850101", i + 1), post="专任教师", hired_year=2010,
        )
    return World(orgs, users, teachers)
