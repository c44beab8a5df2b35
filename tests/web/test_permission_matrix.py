"""Who sees what: every named user against every page and API endpoint, on
their own objects, a sibling's (same school / same district) and another
district's.  The expected status codes are the tables below; a refusal is
404 (existence does not leak) unless the object is in scope and only the
role is wrong (403, API actions).

Objects (see conftest.World):

    r:alice  alice's pending declaration          r:anna  anna's (alice's colleague)
    r:ella   ella's (东区第二中学)                   r:will  will's (西区)
    r:inst   alice's record imported by 市教师进修学院 (ivan's institution)
    batch:e1 an import into 东区实验小学              batch:inst  ivan's import
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from tests.web.conftest import World

from xuefen.web.models import ImportBatch, Record, Status


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    # Passwords are irrelevant here (force_login); Argon2 would make each world slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


USERS = ["alice", "anna", "ella", "will", "bob", "pat", "bert", "wes", "carol", "cody", "dora", "ivan", "audrey",
         "sam"]

# --- pages ------------------------------------------------------------------
# 302 on t:alice for alice: a teacher's own teacher page redirects to /me/.
PAGES = """
user    me  dash o:e1 o:e2 o:east o:west o:city t:alice t:anna t:ella t:will r:alice r:anna r:ella r:will r:inst rev audit imp
alice   200 404  404  404  404    404    404    302     404    404    404    200     404    404    404    200    404    404   404
anna    200 404  404  404  404    404    404    404     302    404    404    404     200    404    404    404    404    404   404
ella    200 404  404  404  404    404    404    404     404    302    404    404     404    200    404    404    404    404   404
will    200 404  404  404  404    404    404    404     404    404    302    404     404    404    200    404    404    404   404
bob     404 200  200  404  404    404    404    200     200    404    404    200     200    404    404    200    200    404   200
pat     404 200  200  404  404    404    404    200     200    404    404    200     200    404    404    200    404    404   404
bert    404 200  404  200  404    404    404    404     404    200    404    404     404    200    404    404    200    404   200
wes     404 200  404  404  404    404    404    404     404    404    200    404     404    404    200    404    200    404   200
carol   404 200  200  200  200    404    404    200     200    200    404    200     200    200    404    200    200    404   200
cody    404 200  404  404  404    200    404    404     404    404    200    404     404    404    200    404    200    404   200
dora    404 200  200  200  200    200    200    200     200    200    200    200     200    200    200    200    200    404   200
ivan    404 404  404  404  404    404    404    200     404    404    404    404     404    404    404    200    404    404   200
audrey  404 404  404  404  404    404    404    404     404    404    404    404     404    404    404    404    404    200   404
sam     404 404  404  404  404    404    404    404     404    404    404    404     404    404    404    404    404    200   404
"""

# --- API (GET) --------------------------------------------------------------
# a:r:X  /api/records/<X>/      a:t:X  /api/teachers/<X>/      res:X  /api/teachers/<X>/result/
# b:X    /api/imports/<X>/
API = """
user    a:r:alice a:r:anna a:r:ella a:r:will a:r:inst a:t:alice a:t:anna a:t:ella a:t:will res:alice res:ella res:will b:e1 b:inst
alice   200       404      404      404      200      200       404      404      404      200       404      404      404    404
anna    404       200      404      404      404      404       200      404      404      404       404      404      404    404
ella    404       404      200      404      404      404       404      200      404      404       200      404      404    404
will    404       404      404      200      404      404       404      404      200      404       404      200      404    404
bob     200       200      404      404      200      200       200      404      404      200       404      404      200    404
pat     200       200      404      404      200      200       200      404      404      200       404      404      404    404
bert    404       404      200      404      404      404       404      200      404      404       200      404      404    404
wes     404       404      404      200      404      404       404      404      200      404       404      200      404    404
carol   200       200      200      404      200      200       200      200      404      200       200      404      200    404
cody    404       404      404      200      404      404       404      404      200      404       404      200      404    404
dora    200       200      200      200      200      200       200      200      200      200       200      200      200    200
ivan    404       404      404      404      200      200       404      404      404      403       404      404      404    200
audrey  404       404      404      404      404      404       404      404      404      404       404      404      404    404
sam     404       404      404      404      404      404       404      404      404      404       404      404      404    404
"""

# --- API lists: what each user's list contains --------------------------------
LISTS = """
user    records                        teachers                 imports
alice   r:alice,r:inst                 alice                    -
anna    r:anna                         anna                     -
ella    r:ella                         ella                     -
will    r:will                         will                     -
bob     r:alice,r:anna,r:inst          alice,anna               e1
pat     r:alice,r:anna,r:inst          alice,anna               -
bert    r:ella                         ella                     -
wes     r:will                         will                     -
carol   r:alice,r:anna,r:ella,r:inst   alice,anna,ella          e1
cody    r:will                         will                     -
dora    r:alice,r:anna,r:ella,r:will,r:inst alice,anna,ella,will inst,e1
ivan    r:inst                         alice                    inst
audrey  -                              -                        -
sam     -                              -                        -
"""

# --- API actions on r:alice (pending), each in a fresh world --------------------
# 409 for carol/dora approving: in scope and a reviewer, but the record has not
# reached their step (district / city) yet.
ACTIONS = """
user    approve return revoke
alice   403     403    403
anna    404     404    404
ella    404     404    404
will    404     404    404
bob     200     200    403
pat     403     403    403
bert    404     404    404
wes     404     404    404
carol   409     200    200
cody    404     404    404
dora    409     200    200
ivan    404     404    404
audrey  404     404    404
sam     404     404    404
"""


def table(text: str) -> dict[str, dict[str, str]]:
    lines = [line.split() for line in text.strip().splitlines()]
    header = lines[0][1:]
    out = {}
    for row in lines[1:]:
        assert len(row) == len(header) + 1, row
        out[row[0]] = dict(zip(header, row[1:], strict=True))
    assert sorted(out) == sorted(USERS)
    return out


def objects(world: World) -> dict[str, Any]:
    inst_batch = ImportBatch.objects.create(org=world.orgs["inst"], uploaded_by=world.users["ivan"],
                                            file_name="培训名单.xlsx", sha256="0" * 64, state="done")
    e1_batch = ImportBatch.objects.create(org=world.orgs["east-1"], uploaded_by=world.users["bob"],
                                          file_name="校本研修.xlsx", sha256="1" * 64, state="done")
    records = {f"r:{name}": world.record(name) for name in ("alice", "anna", "ella", "will")}
    inst = world.record("alice", status=Status.SCHOOL_APPROVED, title="市级骨干培训", hours=Decimal(30))
    Record.objects.filter(pk=inst.pk).update(import_batch=inst_batch)
    records["r:inst"] = inst
    return {"records": records, "batches": {"inst": inst_batch, "e1": e1_batch}}


def page_urls(world: World, objs: dict[str, Any]) -> dict[str, str]:
    o, t, r = world.orgs, world.teachers, objs["records"]
    urls = {"me": "/me/", "dash": "/dashboard/", "rev": "/review/", "audit": "/audit/", "imp": "/imports/"}
    urls.update({f"o:{k}": f"/dashboard/org/{o[v].pk}/" for k, v in
                 (("e1", "east-1"), ("e2", "east-2"), ("east", "east"), ("west", "west"), ("city", "city"))})
    urls.update({f"t:{name}": f"/teachers/{t[name].pk}/" for name in t})
    urls.update({key: f"/records/{rec.pk}/" for key, rec in r.items()})
    return urls


def api_urls(world: World, objs: dict[str, Any]) -> dict[str, str]:
    urls = {f"a:{key}": f"/api/records/{rec.pk}/" for key, rec in objs["records"].items()}
    urls.update({f"a:t:{name}": f"/api/teachers/{t.pk}/" for name, t in world.teachers.items()})
    urls.update({f"res:{name}": f"/api/teachers/{t.pk}/result/" for name, t in world.teachers.items()})
    urls.update({f"b:{key}": f"/api/imports/{b.pk}/" for key, b in objs["batches"].items()})
    return urls


def check(client: Client, who: str, urls: dict[str, str], expected: dict[str, str]) -> list[str]:
    wrong = []
    for key, want in expected.items():
        got = client.get(urls[key]).status_code
        if str(got) != want:
            wrong.append(f"{who} GET {key} ({urls[key]}): expected {want}, got {got}")
    return wrong


@pytest.mark.parametrize("who", USERS)
def test_pages_and_api(world: World, who: str) -> None:
    objs = objects(world)
    client = Client()
    client.force_login(world.users[who])
    wrong = check(client, who, page_urls(world, objs), table(PAGES)[who])
    wrong += check(client, who, api_urls(world, objs), table(API)[who])

    names = {rec.pk: key for key, rec in objs["records"].items()}
    teachers = {t.pk: name for name, t in world.teachers.items()}
    batches = {b.pk: key for key, b in objs["batches"].items()}
    want = table(LISTS)[who]
    for endpoint, by_id in (("records", names), ("teachers", teachers), ("imports", batches)):
        response = client.get(f"/api/{endpoint}/")
        assert response.status_code == 200
        got = sorted(by_id[item["id"]] for item in response.json()["results"])
        expected = sorted(x for x in want[endpoint].split(",") if x != "-")
        if got != expected:
            wrong.append(f"{who} /api/{endpoint}/: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("who", USERS)
def test_api_actions(world: World, who: str) -> None:
    objs = objects(world)
    expected = table(ACTIONS)[who]
    client = Client()
    client.force_login(world.users[who])
    wrong = []
    for action, want in expected.items():
        record = Record.objects.get(pk=objs["records"]["r:alice"].pk)  # fresh state each time
        before = (record.status, record.version)
        url = f"/api/records/{record.pk}/{action}/"
        response = client.post(url, {"version": record.version, "comment": "理由"}, content_type="application/json")
        if str(response.status_code) != want:
            wrong.append(f"{who} POST {action}: expected {want}, got {response.status_code} {response.content[:200]!r}")
        record.refresh_from_db()
        if want != "200" and (record.status, record.version) != before:
            wrong.append(f"{who} POST {action}: refused but the record changed")
        if want == "200":
            # Undo for the next action: a fresh pending copy of the record.
            Record.objects.filter(pk=record.pk).update(status=Status.PENDING, version=record.version + 1)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("who", ["bert", "wes", "cody", "anna", "ivan", "audrey", "sam", "pat", "alice"])
def test_review_page_action_refused(world: World, who: str) -> None:
    """The page's POST /review/<id>/<action>/ refuses everyone but the reviewer
    in scope with 404, and nothing changes."""
    objs = objects(world)
    record = objs["records"]["r:alice"]
    client = Client()
    client.force_login(world.users[who])
    for action in ("school_approve", "return", "revoke"):
        response = client.post(f"/review/{record.pk}/{action}/", {"version": record.version, "comment": "理由"})
        assert response.status_code == 404, (who, action, response.status_code)
    record.refresh_from_db()
    assert record.status == Status.PENDING and record.version == 1


def test_ivan_sees_only_what_his_institution_imported(world: World) -> None:
    objs = objects(world)
    client = Client()
    client.force_login(world.users["ivan"])
    # Two imported records for the same teacher: the scoped teacher queryset
    # must not repeat her (it used to, and /teachers/<id>/ answered 500).
    second = world.record("alice", status=Status.SCHOOL_APPROVED, title="第二期")
    Record.objects.filter(pk=second.pk).update(import_batch=objs["batches"]["inst"])
    assert client.get(f"/teachers/{world.teachers['alice'].pk}/").status_code == 200
    assert client.get(f"/api/teachers/{world.teachers['alice'].pk}/").status_code == 200
    ids = [t["id"] for t in client.get("/api/teachers/").json()["results"]]
    assert ids == [world.teachers["alice"].pk]


def test_ivan_does_not_see_alices_other_records_on_her_page(world: World) -> None:
    objects(world)
    client = Client()
    client.force_login(world.users["ivan"])
    page = client.get(f"/teachers/{world.teachers['alice'].pk}/").content.decode()
    assert "市级骨干培训" in page
    assert "培训1" not in page  # alice's own pending declaration (r:alice)


# --- training (issue 15) ----------------------------------------------------------
# The training world (tests/web/training_world.py) beside the named people:
# P  an approved project of 北区教师培训中心 (irene), its class K (tina enrolled)
#    and session S;  R  an approved 校本研修 project of 北区第一小学 (sue), tina a member.
# nick: 北区 district office; eric: 北区 expert; sid: 南区 district office;
# toby: a 北区 teacher who is not in R; wendy: a 南区 teacher.
# 302 on /training/ for teachers: it sends them to /training/mine/.
TRAINING_USERS = [*USERS, "nick", "eric", "sue", "irene", "tina", "toby", "wendy", "sid"]
TRAINING_PAGES = """
user    home mine p:P  c:K  s:S  p:R  a:P  a:K  a:S  a:R  rep
alice   302  200  404  404  404  404  404  404  404  404  404
anna    302  200  404  404  404  404  404  404  404  404  404
ella    302  200  404  404  404  404  404  404  404  404  404
will    302  200  404  404  404  404  404  404  404  404  404
bob     200  404  404  404  404  404  404  404  404  404  404
pat     200  404  404  404  404  404  404  404  404  404  404
bert    200  404  404  404  404  404  404  404  404  404  404
wes     200  404  404  404  404  404  404  404  404  404  404
carol   200  404  404  404  404  404  404  404  404  404  200
cody    200  404  404  404  404  404  404  404  404  404  200
dora    200  404  200  200  404  200  200  200  200  200  200
ivan    200  404  404  404  404  404  404  404  404  404  404
audrey  404  404  404  404  404  404  404  404  404  404  404
sam     404  404  404  404  404  404  404  404  404  404  404
nick    200  404  200  200  404  200  200  200  200  200  200
eric    200  404  200  200  404  200  200  200  200  200  404
sue     200  404  404  404  404  200  404  404  404  200  404
irene   200  404  200  200  200  404  200  200  200  404  404
tina    302  200  200  200  404  200  200  200  200  200  404
toby    302  200  200  200  404  404  200  200  200  404  404
wendy   302  200  404  404  404  404  404  404  404  404  404
sid     200  404  404  404  404  404  404  404  404  404  200
"""
# POST actions: decide on P (already approved: 409 for its deciders), close K
# (tina has no result yet: 400 for the class teacher), accept R (验收, with a reason).
TRAINING_ACTIONS = """
user    decide close accept
alice   404    404   404
anna    404    404   404
ella    404    404   404
will    404    404   404
bob     404    404   404
pat     404    404   404
bert    404    404   404
wes     404    404   404
carol   404    404   404
cody    404    404   404
dora    409    403   400
ivan    404    404   404
audrey  404    404   404
sam     404    404   404
nick    409    403   400
eric    403    403   403
sue     404    404   403
irene   403    400   404
tina    403    403   403
toby    403    403   404
wendy   404    404   404
sid     404    404   404
"""


def training_table(text: str) -> dict[str, dict[str, str]]:
    lines = [line.split() for line in text.strip().splitlines()]
    header = lines[0][1:]
    out = {row[0]: dict(zip(header, row[1:], strict=True)) for row in lines[1:]}
    assert sorted(out) == sorted(TRAINING_USERS)
    return out


def training_objects(world: World) -> tuple[Any, dict[str, str]]:
    import datetime as dt

    from django.utils import timezone
    from tests.web.training_world import build

    from xuefen.web.models import ProjectKind
    from xuefen.web.services import research, training

    tw = build(world)
    klass = tw.running_class(("tina",))
    session = tw.session(klass)
    project = klass.course.project
    r = training.apply_project(tw.actor("sue"), tw.orgs["north-1"], {"title": "课例研究", "hours": "20"},
                               kind=ProjectKind.RESEARCH)
    training.score_project(tw.actor("eric"), r.pk, {k: "10" for k in training.criteria()}, "")
    training.decide_project(tw.actor("nick"), r.pk, True, "")
    research.set_members(tw.actor("sue"), r.pk, [tw.teachers["tina"].pk])
    # no activity yet: an accepting office is told it cannot accept (400)
    assert timezone.now() - session.starts_at < dt.timedelta(hours=1)
    urls = {"home": "/training/", "mine": "/training/mine/", "p:P": f"/training/projects/{project.pk}/",
            "c:K": f"/training/classes/{klass.pk}/", "s:S": f"/training/sessions/{session.pk}/",
            "p:R": f"/training/projects/{r.pk}/", "a:P": f"/api/training/projects/{project.pk}/",
            "a:K": f"/api/training/classes/{klass.pk}/", "a:S": f"/api/training/sessions/{session.pk}/",
            "a:R": f"/api/research/{r.pk}/", "rep": f"/training/report/{project.year}/",
            "decide": f"/api/training/projects/{project.pk}/decide/", "close": f"/api/training/classes/{klass.pk}/close/",
            "accept": f"/api/research/{r.pk}/accept/"}
    return tw, urls


@pytest.mark.parametrize("who", TRAINING_USERS)
def test_training_pages_api_and_actions(world: World, who: str) -> None:
    tw, urls = training_objects(world)
    user = world.users.get(who) or tw.users[who]
    client = Client()
    client.force_login(user)
    wrong = check(client, who, urls, training_table(TRAINING_PAGES)[who])
    bodies = {"decide": {"approve": True, "comment": "同意"}, "close": {},
              "accept": {"passed": False, "reason": "记录不全"}}
    for action, want in training_table(TRAINING_ACTIONS)[who].items():
        response = client.post(urls[action], bodies[action], content_type="application/json")
        if str(response.status_code) != want:
            wrong.append(f"{who} POST {action}: expected {want}, got {response.status_code} {response.content[:200]!r}")
    assert not wrong, "\n".join(wrong)
