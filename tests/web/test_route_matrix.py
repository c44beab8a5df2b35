"""The permission matrix generated over EVERY route (issue 17 item 5): each
URL pattern the resolver knows — pages and API, including routes other
branches add later — × every role × objects in the user's own unit, a
sibling unit and another district.  Hand-written expectations per route live
in test_permission_matrix.py; this drill needs none, so a new route is
covered the moment it is merged:

* anonymous: every route refuses (login redirect, 401/403/404/405) except
  the public ones named below;
* nobody gets a 5xx on any route, object or role;
* a user never gets 2xx for an object outside her scope, whatever the route;
  to make that decidable without knowing each route's model, every object
  of a unit has the same primary key in every table (the unit's number:
  school 7001's teacher, record, evidence and import batch are all 7001);
* no page or API response shows the name of a teacher outside the user's
  scope (every teacher's name is unique);
* POSTs by users without scope change nothing out of their scope.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import get_resolver, reverse

from xuefen import idnumber
from xuefen.web.models import Evidence, ImportBatch, Org, OrgKind, Profile, Record, Role, Source, Status, Teacher
from xuefen.web.services.evaluation import price_records, refresh_result
from xuefen.web.services.teachers import add_teacher

# Routes anyone may open (the login page, the language switch, the refresh of
# an API token — whose credential is the refresh token — and the schema,
# public by decision of issue 19 item 12 until that helper decides otherwise).
PUBLIC = {"login", "set_language", "api-token-refresh", "api-schema"}

# unit number -> (name, kind, parent unit, policy)
UNITS = {
    6000: ("示范市", OrgKind.CITY, None, ""),
    6500: ("市教师进修学院", OrgKind.INSTITUTION, 6000, ""),
    7000: ("东区", OrgKind.DISTRICT, 6000, "yongji"),
    7001: ("东区实验小学", OrgKind.SCHOOL, 7000, ""),
    7002: ("东区第二中学", OrgKind.SCHOOL, 7000, ""),
    8000: ("西区", OrgKind.DISTRICT, 6000, "shandong"),
    8001: ("西区第一中学", OrgKind.SCHOOL, 8000, ""),
}
# teacher object number -> (login, school unit); 7101 is 7001's colleague
TEACHERS = {7001: ("alice", 7001), 7101: ("anna", 7001), 7002: ("ella", 7002), 8001: ("will", 8001)}
STAFF = [("dora", Role.CITY_CENTER, 6000), ("audrey", Role.AUDITOR, 6000), ("sam", Role.SYSADMIN, 6000),
         ("ivan", Role.INSTITUTION_STAFF, 6500), ("carol", Role.DISTRICT_OFFICE, 7000),
         ("cody", Role.DISTRICT_OFFICE, 8000), ("bob", Role.SCHOOL_OFFICER, 7001), ("pat", Role.PRINCIPAL, 7001),
         ("bert", Role.SCHOOL_OFFICER, 7002), ("wes", Role.SCHOOL_OFFICER, 8001)]
OBJECTS = [6000, 6500, 7000, 7001, 7101, 7002, 8000, 8001]

# Who may ever get 2xx for an object number (an upper bound: a school's
# officer may open her school's teacher, record, batch and the school itself).
SCOPE: dict[str, set[int]] = {
    "dora": set(OBJECTS), "carol": {7000, 7001, 7101, 7002}, "cody": {8000, 8001},
    "bob": {7001, 7101}, "pat": {7001, 7101}, "bert": {7002}, "wes": {8001},
    "alice": {7001}, "anna": {7101}, "ella": {7002}, "will": {8001},
    "ivan": {6500}, "audrey": set(), "sam": set(),
}


# The administration pages (issue 16) are the system administrator's over the
# whole tree: units and accounts, never a teacher's figures or records.
ADMIN_ROUTES = ("manage-",)


# A school's year page carries its 公示 (issue 14; 山东2009 (十三)): its own
# teachers see it, to check the list and object.
SCHOOL_YEAR_ROUTES = ("annual-school",)


def scope_of(login: str, route: str) -> set[int]:
    if login == "sam" and route.startswith(ADMIN_ROUTES):
        return set(OBJECTS)
    if route.startswith(SCHOOL_YEAR_ROUTES):
        return SCOPE[login] | {unit for who, unit in TEACHERS.values() if who == login}
    return SCOPE[login]


def teacher_name(n: int) -> str:
    return f"Zhang{n}Q"


def _world() -> dict[str, User]:
    orgs: dict[int, Org] = {}
    for n, (name, kind, parent, policy) in UNITS.items():
        orgs[n] = Org.objects.create(pk=n, name=name, kind=kind, parent=orgs.get(parent) if parent else None,
                                     policy=policy)
    users: dict[str, User] = {}
    for login, role, unit in STAFF:
        users[login] = User.objects.create_user(login, password=None)
        Profile.objects.create(user=users[login], role=role, org=orgs[unit])
    for n, (login, unit) in TEACHERS.items():
        users[login] = User.objects.create_user(login, password=None)
        Profile.objects.create(user=users[login], role=Role.TEACHER, org=orgs[unit])
        teacher = add_teacher(orgs[unit], pk=n, user=users[login], teacher_no=f"T{n}", name=teacher_name(n),
                              stage="小学", post="专任教师", hired_year=2010,
                              id_number=idnumber.make("220221", "19850101", n % 997))
        record = Record(pk=n, teacher=teacher, uid=f"R{n}", year=2026, title=f"培训{n}", form="集中", level="区县级",
                        hours=Decimal(24), result="合格", source=Source.DECLARATION, status=Status.PENDING)
        price_records(teacher, [record])
        record.save()
        refresh_result(teacher)
        content = b"%PDF-1.4 evidence"
        Evidence.objects.create(pk=n, record=record, file=ContentFile(content, name=f"e{n}.pdf"),
                                original_name=f"e{n}.pdf", content_type="application/pdf", size=len(content),
                                sha256=hashlib.sha256(content).hexdigest())
    for n in (7001, 7002, 8001):
        ImportBatch.objects.create(pk=n, org=orgs[n], file_name=f"b{n}.xlsx", sha256=f"{n:064d}",
                                   state=ImportBatch.State.VALID)
    return users


def routes() -> list[tuple[str, list[str]]]:
    """Every named route and its parameters, from the resolver (format
    suffixes aside: they reach the same view)."""
    out = []
    for name, possibilities in get_resolver().reverse_dict.lists():
        if not isinstance(name, str):
            continue
        for bits, _pattern, _defaults, _converters in possibilities:
            params = list(bits[0][1])
            if "format" not in params:
                out.append((name, params))
    return sorted(set((n, tuple(p)) for n, p in out))  # type: ignore[misc]


ACTIONS = ["school_approve", "district_approve", "certify", "return", "revoke"]


def urls_for(name: str, params: list[str]) -> list[tuple[str, int | None]]:
    """(url, object number) for every object, or the one url of a route without an object."""
    if not params:
        return [(reverse(name), None)]
    if not any(p in ("pk", "id") or p.endswith("_id") or p.endswith("pk") for p in params):
        # No object in the route (a year, an action): one url, scoped by the user alone.
        fixed = {p: 2025 if p == "year" else "x" for p in params}
        if "action" in params:
            return [(reverse(name, kwargs={**fixed, "action": a}), None) for a in ACTIONS]
        return [(reverse(name, kwargs=fixed), None)]
    out = []
    for n in OBJECTS:
        kwargs: dict[str, Any] = {}
        for p in params:
            if p == "year":
                kwargs[p] = 2025  # a year of the world's records (annual close pages)
            else:
                kwargs[p] = n if p in ("pk", "id") or p.endswith("_id") or p.endswith("pk") else "x"
        if "action" in params:
            for action in ACTIONS:
                kwargs["action"] = action
                out.append((reverse(name, kwargs=kwargs), n))
        else:
            out.append((reverse(name, kwargs=kwargs), n))
    return out


def _text(response: Any) -> str:
    kind = response.get("Content-Type", "")
    if not any(k in kind for k in ("text", "json")) or getattr(response, "streaming", False):
        return ""
    return response.content.decode("utf-8", errors="replace")


def _fingerprint() -> list[Any]:
    return [list(Record.objects.order_by("pk").values()), list(Teacher.objects.order_by("pk").values()),
            list(ImportBatch.objects.order_by("pk").values()), list(Evidence.objects.order_by("pk").values())]


@pytest.fixture
def matrix_world(db: Any, settings: Any, tmp_path: Any) -> dict[str, User]:
    settings.MEDIA_ROOT = tmp_path / "media"
    return _world()


def test_every_route_refuses_anonymous(matrix_world: dict[str, User]) -> None:
    client = Client()
    for name, params in routes():
        for url, _n in urls_for(name, list(params)):
            response = client.get(url)
            if name in PUBLIC:
                assert response.status_code < 500, url
                continue
            login_redirect = response.status_code == 302 and response["Location"].startswith("/login/")
            assert login_redirect or response.status_code in (401, 403, 404, 405), (url, response.status_code)


def test_routes_never_leak_out_of_scope(matrix_world: dict[str, User]) -> None:
    problems: list[str] = []
    for login in SCOPE:
        client = Client(raise_request_exception=False)
        client.force_login(matrix_world[login])
        hidden = [teacher_name(n) for n in TEACHERS if n not in SCOPE[login]]
        for name, params in routes():
            if name == "logout":
                continue  # would end the session this loop is using
            for url, n in urls_for(name, list(params)):
                response = client.get(url)
                code = response.status_code
                if code >= 500:
                    problems.append(f"{login} GET {url}: {code}")
                if n is not None and 200 <= code < 300 and n not in scope_of(login, name):
                    problems.append(f"{login} GET {url}: {code} for an object outside her scope")
                text = _text(response) if 200 <= code < 300 else ""
                leaked = [h for h in hidden if h in text]
                if leaked:
                    problems.append(f"{login} GET {url}: shows {leaked}")
    assert problems == []


def test_posts_change_nothing_out_of_scope(matrix_world: dict[str, User]) -> None:
    """Every route POSTed by users with no scope over the objects: nothing changes."""
    before = _fingerprint()
    for login in ("anna", "ivan", "audrey", "sam", "wes", "cody"):
        client = Client()
        client.force_login(matrix_world[login])
        for name, params in routes():
            if not params or name in PUBLIC:
                continue
            for url, n in urls_for(name, list(params)):
                if n is None or n in SCOPE[login]:
                    continue
                response = client.post(url, {"version": 1, "comment": "drill", "reason": "drill"})
                assert response.status_code < 500, (login, url, response.status_code)
    assert _fingerprint() == before
