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
# 409 for carol/dora approving or returning: in scope and a reviewer, but the
# record has not reached their step (district / city) yet; only the level
# holding a record may return it (issue 19 item 7).
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
carol   409     409    200
cody    404     404    404
dora    409     409    200
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


# --- office pages (issue 16) -----------------------------------------------------
# spot   /spot-checks/                 spotd  /spot-checks/<东区's check>/
# sc     /school-credits/              pw     /account/password/
# mo     /manage/                      mor    /manage/orgs/<东区>/
# mu     /manage/users/                muu    /manage/users/<bob>/
# corr   /records/<r:alice>/correct/   job    /review/jobs/<bob's batch job>/
OFFICE = """
user    spot spotd sc  pw  mo  mor mu  muu corr job
alice   404  404   404 200 404 404 404 404 404  404
anna    404  404   404 200 404 404 404 404 404  404
ella    404  404   404 200 404 404 404 404 404  404
will    404  404   404 200 404 404 404 404 404  404
bob     404  404   200 200 404 404 404 404 200  200
pat     404  404   404 200 404 404 404 404 404  404
bert    404  404   200 200 404 404 404 404 404  404
wes     404  404   200 200 404 404 404 404 404  404
carol   200  200   404 200 404 404 404 404 404  404
cody    200  404   404 200 404 404 404 404 404  404
dora    404  404   404 200 404 404 404 404 404  404
ivan    404  404   404 200 404 404 404 404 404  404
audrey  404  404   404 200 404 404 404 404 404  404
sam     404  404   404 200 200 200 200 200 404  404
"""

# POSTs: who may act (2xx/3xx and the change made: ok), who is answered but
# refused (no change: no) and who is refused with 404 (no change).
# bulk: approve r:alice from the queue's batch form; reset: an administrator's
# password reset of bob; org: 东区's settings; draw: a 抽检 of one record in the
# user's own unit (东区 has r:inst approved, 西区 nothing to draw); enter: 校本研修
# hours for alice; corr: 更正 of r:alice (pending, held by her school).
OFFICE_POSTS = """
user    bulk reset org draw enter corr
alice   404  404   404 404  404   404
anna    404  404   404 404  404   404
ella    404  404   404 404  404   404
will    404  404   404 404  404   404
bob     ok   404   404 404  ok    ok
pat     404  404   404 404  404   404
bert    no   404   404 404  no    404
wes     no   404   404 404  no    404
carol   no   404   404 ok   404   404
cody    no   404   404 no   404   404
dora    no   404   404 404  404   404
ivan    404  404   404 404  404   404
audrey  404  404   404 404  404   404
sam     404  ok    ok  404  404   404
"""


def office_objects(world: World, objs: dict[str, Any]) -> dict[str, str]:
    from xuefen.web.models import BulkReview
    from xuefen.web.services import spotcheck
    from xuefen.web.services.base import Actor

    world.record("anna", status=Status.SCHOOL_APPROVED)
    check = spotcheck.draw(Actor(world.users["carol"]), world.orgs["east"], 1, 7)
    job = BulkReview.objects.create(actor=world.users["bob"], action="approve", total=0, state="done")
    r = objs["records"]["r:alice"]
    return {"spot": "/spot-checks/", "spotd": f"/spot-checks/{check.pk}/", "sc": "/school-credits/",
            "pw": "/account/password/", "mo": "/manage/", "mor": f"/manage/orgs/{world.orgs['east'].pk}/",
            "mu": "/manage/users/", "muu": f"/manage/users/{world.users['bob'].pk}/",
            "corr": f"/records/{r.pk}/correct/", "job": f"/review/jobs/{job.pk}/"}


@pytest.mark.parametrize("who", USERS)
def test_office_pages(world: World, who: str) -> None:
    objs = objects(world)
    client = Client()
    client.force_login(world.users[who])
    wrong = check(client, who, office_objects(world, objs), table(OFFICE)[who])
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("who", USERS)
def test_office_posts(world: World, who: str) -> None:
    from xuefen.web.models import AuditEntry, Org

    objs = objects(world)
    expected = table(OFFICE_POSTS)[who]
    client = Client()
    client.force_login(world.users[who])
    record = objs["records"]["r:alice"]
    east = world.orgs["east"]
    wrong = []

    response = client.post("/review/bulk/", {"ids": [str(record.pk)], "action": "approve", "query": ""})
    changed = Record.objects.get(pk=record.pk).status != Status.PENDING
    if (expected["bulk"] == "404") != (response.status_code == 404) or changed != (expected["bulk"] == "ok"):
        wrong.append(f"{who} bulk: {response.status_code}, changed={changed}")

    response = client.post(f"/manage/users/{world.users['bob'].pk}/reset-password/")
    reset = AuditEntry.objects.filter(action="password_reset").exists()
    if (expected["reset"] == "404") != (response.status_code == 404) or reset != (expected["reset"] == "ok"):
        wrong.append(f"{who} reset: {response.status_code}, reset={reset}")

    response = client.post(f"/manage/orgs/{east.pk}/", {"policy": "yongji", "option-partial_cycle": "full"})
    moved = Org.objects.get(pk=east.pk).policy_options != {}
    if (expected["org"] == "404") != (response.status_code == 404) or moved != (expected["org"] == "ok"):
        wrong.append(f"{who} org: {response.status_code}, changed={moved}")

    from xuefen.web.models import SpotCheck

    response = client.post("/spot-checks/", {"size": "1", "seed": "1"})
    drawn = SpotCheck.objects.exists()
    if (expected["draw"] == "404") != (response.status_code == 404) or drawn != (expected["draw"] == "ok"):
        wrong.append(f"{who} draw: {response.status_code}, drawn={drawn}")

    alice = world.teachers["alice"]
    response = client.post("/school-credits/", {"year": "2026", "title": "校本研修：听评课", "form": "校本",
                                                f"hours-{alice.pk}": "8"})
    entered = Record.objects.filter(title="校本研修：听评课").exists()
    if (expected["enter"] == "404") != (response.status_code == 404) or entered != (expected["enter"] == "ok"):
        wrong.append(f"{who} enter: {response.status_code}, entered={entered}")

    Record.objects.filter(pk=record.pk).update(status=Status.PENDING)  # the batch approval above may have moved it
    fresh = Record.objects.get(pk=record.pk)
    response = client.post(f"/records/{record.pk}/correct/", {"year": "2026", "title": fresh.title, "form": "集中",
                                                              "level": "区县级", "hours": "20", "result": "合格",
                                                              "comment": "按证书更正", "version": fresh.version})
    corrected = Record.objects.get(pk=record.pk).hours == 20
    if (expected["corr"] == "404") != (response.status_code == 404) or corrected != (expected["corr"] == "ok"):
        wrong.append(f"{who} corr: {response.status_code}, corrected={corrected}")
    assert not wrong, "\n".join(wrong)


# POST /api/records/bulk/ approving r:alice (pending), and GET /api/review-jobs/<bob's job>/.
# 403: the role takes no part in review; 404: the record lies outside scope;
# 409: a reviewer in scope whose level does not hold the record.
API_OFFICE = """
user    bulk job
alice   403  404
anna    403  404
ella    403  404
will    403  404
bob     200  200
pat     403  404
bert    404  404
wes     404  404
carol   409  404
cody    404  404
dora    409  404
ivan    403  404
audrey  403  404
sam     403  404
"""


@pytest.mark.parametrize("who", USERS)
def test_office_api(world: World, who: str) -> None:
    from xuefen.web.models import BulkReview

    objs = objects(world)
    want = table(API_OFFICE)[who]
    client = Client()
    client.force_login(world.users[who])
    record = objs["records"]["r:alice"]
    job = BulkReview.objects.create(actor=world.users["bob"], action="approve", total=0, state="done")
    response = client.post("/api/records/bulk/", {"ids": [record.pk], "action": "approve"},
                           content_type="application/json")
    changed = Record.objects.get(pk=record.pk).status != Status.PENDING
    got = client.get(f"/api/review-jobs/{job.pk}/").status_code
    assert (str(response.status_code), str(got), changed) == (want["bulk"], want["job"], want["bulk"] == "200"), \
        response.content[:200]


# ============================================================================
# Annual close, certificates, verification (issue 14)
# ============================================================================
# ann    /annual/ (a teacher, officer, principal of a school is sent to her school's year: 302)
# as:e1  /annual/school/<东区实验小学>/2025/        set:east /annual/district/<东区>/settings/
# mc     /me/certificates/                        tc:alice /teachers/<alice>/certificates/
# cp     /certificates/<alice's 2025>.pdf         sp:e1 /annual/school/<e1>/2025/certificates.pdf
# bk     /teachers/<alice>/booklet.pdf            v /verify/<alice's token>/ (public)
ANNUAL_PAGES = """
user    ann as:e1 set:east mc  tc:alice cp  sp:e1 bk  v
alice   302 200   404      200 200      200 404   200 200
anna    302 200   404      200 404      404 404   404 200
ella    302 404   404      200 404      404 404   404 200
will    302 404   404      200 404      404 404   404 200
bob     302 200   404      404 200      200 200   200 200
pat     302 200   404      404 200      200 200   200 200
bert    302 404   404      404 404      404 404   404 200
wes     302 404   404      404 404      404 404   404 200
carol   200 200   200      404 200      200 200   200 200
cody    200 404   404      404 404      404 404   404 200
dora    200 200   404      404 200      200 200   200 200
ivan    404 404   404      404 404      404 404   404 200
audrey  404 404   404      404 404      404 404   404 200
sam     404 404   404      404 404      404 404   404 200
"""

# a:cl /api/annual-closes/<e1 2025>/   a:c /api/certificates/<alice's>/   a:cp …/pdf/
ANNUAL_API = """
user    a:cl a:c a:cp
alice   200  200 200
anna    200  404 404
ella    404  404 404
will    404  404 404
bob     200  200 200
pat     200  200 200
bert    404  404 404
wes     404  404 404
carol   200  200 200
cody    404  404 404
dora    200  200 200
ivan    404  404 404
audrey  404  404 404
sam     404  404 404
"""

# POST, each on its own object: sign a closed 2024, confirm a submitted 2023,
# reissue alice's 2025 certificate.  403: in scope, wrong role; 404: out of scope.
ANNUAL_ACTIONS = """
user    sign confirm reissue
alice   403  403     403
anna    403  403     404
ella    404  404     404
will    404  404     404
bob     403  403     403
pat     200  403     403
bert    404  404     404
wes     404  404     404
carol   403  200     201
cody    404  404     404
dora    403  403     403
ivan    404  404     404
audrey  404  404     404
sam     404  404     404
"""


def annual_objects(world: World) -> dict[str, Any]:
    import datetime as dt

    from tests.web.test_annual import confirmed

    from xuefen.web.services import annual, ledger

    close = confirmed(world)
    bob, pat = ledger.Actor(world.users["bob"]), ledger.Actor(world.users["pat"])
    school = world.orgs["east-1"].pk
    closed = annual.close_year(bob, school, 2024, today=dt.date(2025, 1, 6))
    submitted = annual.close_year(bob, school, 2023, today=dt.date(2024, 1, 8))
    submitted = annual.sign_off(pat, submitted.pk, today=dt.date(2024, 1, 8))
    submitted = annual.submit(bob, submitted.pk, today=dt.date(2024, 2, 1))
    from xuefen.web.models import Certificate
    from xuefen.web.services.certificates import url_token

    cert = Certificate.objects.get(teacher=world.teachers["alice"], period_end=2025)
    return {"close": close, "closed": closed, "submitted": submitted, "cert": cert, "token": url_token(cert)}


@pytest.mark.parametrize("who", USERS)
def test_annual_pages_api_and_actions(world: World, who: str) -> None:
    objs = annual_objects(world)
    o, t, cert = world.orgs, world.teachers, objs["cert"]
    pages = {"ann": "/annual/", "as:e1": f"/annual/school/{o['east-1'].pk}/2025/",
             "set:east": f"/annual/district/{o['east'].pk}/settings/", "mc": "/me/certificates/",
             "tc:alice": f"/teachers/{t['alice'].pk}/certificates/", "cp": f"/certificates/{cert.pk}.pdf",
             "sp:e1": f"/annual/school/{o['east-1'].pk}/2025/certificates.pdf",
             "bk": f"/teachers/{t['alice'].pk}/booklet.pdf", "v": f"/verify/{objs['token']}/"}
    api = {"a:cl": f"/api/annual-closes/{objs['close'].pk}/", "a:c": f"/api/certificates/{cert.pk}/",
           "a:cp": f"/api/certificates/{cert.pk}/pdf/"}
    client = Client()
    client.force_login(world.users[who])
    wrong = check(client, who, pages, table(ANNUAL_PAGES)[who])
    wrong += check(client, who, api, table(ANNUAL_API)[who])
    posts = {"sign": f"/api/annual-closes/{objs['closed'].pk}/sign/",
             "confirm": f"/api/annual-closes/{objs['submitted'].pk}/confirm/",
             "reissue": f"/api/certificates/{cert.pk}/reissue/"}
    for action, want in table(ANNUAL_ACTIONS)[who].items():
        response = client.post(posts[action], {"reason": "遗失，校长已开具证明"}, content_type="application/json")
        if str(response.status_code) != want:
            wrong.append(f"{who} POST {action}: expected {want}, got {response.status_code} {response.content[:200]!r}")
    assert not wrong, "\n".join(wrong)


def test_annual_pages_anonymous(world: World) -> None:
    objs = annual_objects(world)
    client = Client()
    assert client.get(f"/verify/{objs['token']}/").status_code == 200
    for url in ("/annual/", f"/certificates/{objs['cert'].pk}.pdf", "/api/annual-closes/", "/api/certificates/"):
        assert client.get(url).status_code in (302, 401, 403), url


# Uploading a teacher master-data file (/imports/, kind=teachers) for 东区实验小学:
# 302 to the batch page for the offices over the school; 404 for everyone else —
# ivan too, whose institution reports training but keeps no teacher files.
TEACHER_IMPORT = {"bob": 302, "carol": 302, "dora": 302}


@pytest.mark.parametrize("who", USERS)
def test_teacher_master_data_upload(world: World, who: str) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = Client()
    client.force_login(world.users[who])
    upload = SimpleUploadedFile("教师.csv", "教师编号,岗位\nT0002,专任教师\n".encode())
    response = client.post("/imports/", {"org": world.orgs["east-1"].pk, "kind": "teachers", "file": upload})
    assert response.status_code == TEACHER_IMPORT.get(who, 404), (who, response.status_code)
    assert ImportBatch.objects.filter(kind="teachers").exists() == (who in TEACHER_IMPORT)


# The office API's writes.  corr: POST /api/records/<r:alice>/correct/ (403 in
# scope without the role, 409 a reviewer whose level does not hold it);
# draw: POST /api/spot-checks/ (西区 has nothing to draw: 400); enter: POST
# /api/school-credits/ for alice (404: not their school's teacher).
API_OFFICE_WRITES = """
user    corr draw enter
alice   403  403  403
anna    404  403  403
ella    404  403  403
will    404  403  403
bob     200  403  201
pat     403  403  403
bert    404  403  404
wes     404  403  404
carol   409  201  403
cody    404  400  403
dora    409  403  403
ivan    404  403  403
audrey  404  403  403
sam     404  403  403
"""


@pytest.mark.parametrize("who", USERS)
def test_office_api_writes(world: World, who: str) -> None:
    objs = objects(world)
    want = table(API_OFFICE_WRITES)[who]
    client = Client()
    client.force_login(world.users[who])
    record = objs["records"]["r:alice"]
    got = {
        "corr": client.post(f"/api/records/{record.pk}/correct/", {"changes": {"hours": "20"}, "comment": "按证书更正"},
                            content_type="application/json").status_code,
        "draw": client.post("/api/spot-checks/", {"size": 1, "seed": 3}, content_type="application/json").status_code,
        "enter": client.post("/api/school-credits/", {"facts": {"year": "2026", "title": "校本研修", "form": "校本"},
                                                      "hours": {str(world.teachers["alice"].pk): "8"}},
                             content_type="application/json").status_code,
    }
    assert {k: str(v) for k, v in got.items()} == want
    changed = Record.objects.get(pk=record.pk).hours == 20
    assert changed == (want["corr"] == "200")

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
