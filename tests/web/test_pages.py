"""The pages people use, through Django's test client: each page renders for
its role and refuses the others; the credits a page shows are exactly what
``xuefen evaluate`` says for the same teacher; exports mask what they must."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from tests.web.conftest import PASSWORD, World

from xuefen import cli
from xuefen.web import wording
from xuefen.web.models import Record, Status, Teacher, TeacherResult
from xuefen.web.services.evaluation import FACT_FIELDS, policy_for

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def login(world: World, name: str, lang: str = "zh-hans") -> Client:
    c = Client(HTTP_ACCEPT_LANGUAGE=lang)
    assert c.login(username=name, password=PASSWORD)
    return c


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    """Argon2 is deliberately slow; fourteen named users per test need not be."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def ledger_world(world: World) -> World:
    """alice with records over three years in every state; will under the other policy."""
    for year in (2024, 2025):
        world.record("alice", Status.CERTIFIED, year=year, title=f"{year}集中", hours=Decimal(30))
        world.record("alice", Status.CERTIFIED, year=year, title=f"{year}网络", form="网络", level="国家级",
                     program="国培计划", hours=Decimal(40))
        world.record("alice", Status.CERTIFIED, year=year, title=f"{year}校本", form="校本", level="校级",
                     hours=Decimal(70), result="")
    world.record("alice", Status.SCHOOL_APPROVED, title="2026集中", hours=Decimal(12))
    world.record("alice", Status.DISTRICT_APPROVED, title="2026网络", form="网络", level="国家级",
                 program="国培计划", hours=Decimal(26))
    world.record("alice", Status.PENDING, title="待审的申报", hours=Decimal(50))
    world.record("alice", Status.RETURNED, title="被退回的申报", hours=Decimal(8), status_reason="证书不清晰")
    world.record("will", Status.CERTIFIED, year=2025, title="市级学科培训", form="集中", level="市级",
                 hours=Decimal(30))
    return world


# ------------------------------------------------------------- rendering by role


def test_teacher_home_renders_her_figures_plan_and_declarations(ledger_world: World) -> None:
    html = login(ledger_world, "alice").get(reverse("teacher-home")).content.decode()
    assert "alice" in html and "我还需要" in html and "要求与进度" in html
    assert "被退回的申报" in html and "证书不清晰" in html
    assert reverse("resubmit", args=[Record.objects.get(title="被退回的申报").pk]) in html
    assert "待审的申报" in html  # her own pending declaration is listed …
    assert 'id="cycle-status"' in html
    # … and every record carries the engine's explanation.
    r = Record.objects.get(title="2024网络")
    # (without its head "2024年 2024网络", which the row shows beside it: issue 16 item 5)
    shown = wording.explanation(r.explanation, r.year, r.title, r.uid)
    assert r.explanation and shown.split("；")[0][:20] in html and r.explanation.split("；")[0][:20] not in html


def test_teacher_home_is_only_for_teachers(ledger_world: World) -> None:
    assert login(ledger_world, "bob").get(reverse("teacher-home")).status_code == 404
    assert Client().get(reverse("teacher-home")).status_code == 302


def test_teacher_page_lists_the_sub_types_of_a_category_as_theme_rows(ledger_world: World) -> None:
    """山东 第十八条: 校本研修 is 校本培训 and 自主研习; a record written 校本培训
    shows under its category as its own line, beside the category's figures."""
    ledger_world.record("will", Status.CERTIFIED, year=2025, title="校本培训", category="校本培训", form="",
                        level="", hours=Decimal(10))
    t = ledger_world.teachers["will"]
    html = login(ledger_world, "cody").get(reverse("teacher-detail", args=[t.pk])).content.decode()
    row = re.search(r'<tr class="theme" data-category="校本研修" data-theme="校本培训">(.*?)</tr>', html, re.S)
    assert row, "no theme row for 校本培训"
    # no school-set credits: 第十八条's default reading, 1 credit an hour
    assert re.search(r'<td class="cat-counted">\s*10\b', row.group(1))
    assert 'data-theme="自主研习"' not in html  # nothing in it and no rule on it


@pytest.mark.parametrize("name", ["bob", "pat", "carol", "dora"])
def test_dashboard_renders_for_each_officer(ledger_world: World, name: str) -> None:
    response = login(ledger_world, name).get(reverse("dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="kpi-in-progress"' in html and "达标情况" in html


def test_drill_down_city_to_teacher(ledger_world: World) -> None:
    c = login(ledger_world, "dora")
    w = ledger_world.orgs
    city = c.get(reverse("dashboard")).content.decode()
    assert reverse("dashboard-org", args=[w["east"].pk]) in city and 'id="chart-data"' in city
    east = c.get(reverse("dashboard-org", args=[w["east"].pk])).content.decode()
    assert reverse("dashboard-org", args=[w["east-1"].pk]) in east
    school = c.get(reverse("dashboard-org", args=[w["east-1"].pk])).content.decode()
    alice = ledger_world.teachers["alice"]
    assert reverse("teacher-detail", args=[alice.pk]) in school
    assert alice.id_number in school  # the city center sees full ID numbers
    detail = c.get(reverse("teacher-detail", args=[alice.pk]))
    assert detail.status_code == 200 and 'id="cycle-total"' in detail.content.decode()


def test_officers_stay_in_their_subtree(ledger_world: World) -> None:
    w = ledger_world
    cody = login(w, "cody")
    assert cody.get(reverse("dashboard-org", args=[w.orgs["east"].pk])).status_code == 404
    assert cody.get(reverse("teacher-detail", args=[w.teachers["alice"].pk])).status_code == 404
    assert cody.get(reverse("dashboard-export", args=[w.orgs["east-1"].pk])).status_code == 404
    bob = login(w, "bob")
    assert bob.get(reverse("dashboard-org", args=[w.orgs["city"].pk])).status_code == 404
    html = bob.get(reverse("dashboard")).content.decode()
    assert w.teachers["alice"].masked_id in html and w.teachers["alice"].id_number not in html
    assert login(w, "alice").get(reverse("dashboard")).status_code == 404
    assert login(w, "audrey").get(reverse("dashboard")).status_code == 404


def test_dashboard_counts_in_progress_honestly(ledger_world: World) -> None:
    """Mid-cycle nobody has passed the cycle yet: they are 进行中, not failures."""
    html = login(ledger_world, "bob").get(reverse("dashboard")).content.decode()
    in_progress = re.search(r'id="kpi-in-progress">(\d+)<', html)
    assert in_progress is not None and int(in_progress.group(1)) >= 1
    assert re.search(r'id="kpi-failed">0<', html)


@pytest.mark.parametrize(("name", "status"), [("bob", "pending"), ("carol", "school_approved"),
                                              ("dora", "district_approved")])
def test_review_queue_shows_each_officer_their_step(ledger_world: World, name: str, status: str) -> None:
    c = login(ledger_world, name)
    html = c.get(reverse("review-queue")).content.decode()
    titles = {Status.PENDING: "待审的申报", Status.SCHOOL_APPROVED: "2026集中", Status.DISTRICT_APPROVED: "2026网络"}
    assert titles[status] in html
    for other, title in titles.items():
        if other != status:
            assert title not in html
    # filters: year, school, category, status
    assert titles[status] not in c.get(reverse("review-queue"), {"year": "2024"}).content.decode()
    school = ledger_world.orgs["east-2"].pk
    assert titles[status] not in c.get(reverse("review-queue"), {"school": school}).content.decode()
    assert "2024校本" in c.get(reverse("review-queue"), {"status": "certified", "category": "校本研修"}).content.decode()
    assert "2024网络" not in c.get(reverse("review-queue"), {"status": "certified", "category": "校本研修"}).content.decode()


def test_review_queue_refuses_principal_and_teacher(ledger_world: World) -> None:
    assert login(ledger_world, "pat").get(reverse("review-queue")).status_code == 404
    assert login(ledger_world, "alice").get(reverse("review-queue")).status_code == 404


def test_approve_from_the_queue(ledger_world: World) -> None:
    r = Record.objects.get(title="待审的申报")
    c = login(ledger_world, "bob")
    response = c.post(reverse("review-action", args=[r.pk, "school_approve"]),
                      {"version": r.version, "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("review-queue")
    r.refresh_from_db()
    assert r.status == Status.SCHOOL_APPROVED


@pytest.mark.parametrize("name", ["pat", "bob"])
def test_publicity_list_for_the_school(ledger_world: World, name: str) -> None:
    html = login(ledger_world, name).get(reverse("publicity")).content.decode()
    assert "教师继续教育学分公示" in html and "alice" in html and "ella" not in html
    assert ledger_world.teachers["alice"].masked_id in html


def test_record_detail_and_resubmit_a_returned_declaration(ledger_world: World) -> None:
    r = Record.objects.get(title="被退回的申报")
    alice = login(ledger_world, "alice")
    detail = alice.get(reverse("record-detail", args=[r.pk])).content.decode()
    assert "修改后重新提交" in detail and "证书不清晰" in detail
    form = alice.get(reverse("resubmit", args=[r.pk])).content.decode()
    assert 'value="被退回的申报"' in form
    response = alice.post(reverse("resubmit", args=[r.pk]), {
        "year": "2026", "title": "被退回的申报（已补证书）", "form": "集中", "level": "区县级", "hours": "8",
        "result": "合格", "evidence": SimpleUploadedFile("证书.pdf", PDF, content_type="application/pdf"),
    })
    assert response.status_code == 302
    r.refresh_from_db()
    assert r.status == Status.PENDING and r.title == "被退回的申报（已补证书）" and r.evidence.count() == 1
    # Someone else's record, or one not returned, cannot be resubmitted.
    assert login(ledger_world, "anna").get(reverse("resubmit", args=[r.pk])).status_code == 404
    assert alice.get(reverse("resubmit", args=[r.pk])).status_code == 302


def test_declare_page_and_declaration(ledger_world: World) -> None:
    alice = login(ledger_world, "alice")
    assert alice.get(reverse("declare")).status_code == 200
    bad = alice.post(reverse("declare"), {"year": "2026", "title": "无证明"})
    assert bad.status_code == 400
    ok = alice.post(reverse("declare"), {"year": "2026", "title": "新申报", "form": "集中", "level": "区县级",
                                         "hours": "6", "result": "合格",
                                         "evidence": SimpleUploadedFile("a.pdf", PDF, content_type="application/pdf")})
    assert ok.status_code == 302
    assert Record.objects.filter(title="新申报", status=Status.PENDING).exists()


# ------------------------------------------------------------- same figures as the CLI


def _interchange(teacher: Teacher, records: list[Record]) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        return str(v) if isinstance(v, Decimal) else v

    t = {"id": teacher.teacher_no, "name": teacher.name, "stage": teacher.stage or None, "post": teacher.post or None,
         "hired_year": teacher.hired_year}
    out = []
    for r in records:
        row: dict[str, Any] = {"id": r.uid}
        for name in FACT_FIELDS:
            value = getattr(r, name)
            if value not in (None, ""):
                row[name] = plain(value)
        if r.preset_credits is not None:
            row["credits"] = plain(r.preset_credits)
        out.append(row)
    return {"teacher": {k: v for k, v in t.items() if v is not None}, "records": out}


def _page_figures(html: str) -> dict[str, Any]:
    def one(pattern: str) -> str:
        m = re.search(pattern, html, re.S)
        assert m, pattern
        return m.group(1).strip()

    cats = dict(re.findall(r'<tr data-category="([^"]+)">.*?<td class="cat-counted"><b>([^<]+)</b>', html, re.S))
    return {"total": one(r'id="cycle-total">([^<]+)<'), "year": one(r'id="this-year-total">([^<]+)<'),
            "categories": cats}


@pytest.mark.parametrize(("teacher", "viewer"), [("alice", "alice"), ("alice", "carol"), ("will", "cody")])
def test_page_credits_equal_xuefen_evaluate(ledger_world: World, teacher: str, viewer: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    t = ledger_world.teachers[teacher]
    url = reverse("teacher-home") if viewer == teacher else reverse("teacher-detail", args=[t.pk])
    shown = _page_figures(login(ledger_world, viewer).get(url).content.decode())

    chosen = policy_for(t)
    assert chosen is not None
    policy, as_of, _options = chosen
    counting = list(t.records.filter(status__in=(Status.SCHOOL_APPROVED, Status.DISTRICT_APPROVED,
                                                 Status.CERTIFIED)).order_by("year", "uid"))
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(_interchange(t, counting), ensure_ascii=False), encoding="utf-8")
    capsys.readouterr()
    cli.main(["evaluate", "--policy", policy.id, str(path), "--as-of", as_of.isoformat(), "--format", "json"])
    data = json.loads(capsys.readouterr().out)

    assert Decimal(shown["total"]) == Decimal(str(data["total"]))
    assert Decimal(shown["year"]) == Decimal(str(data["years"][str(as_of.year)]["total"]))
    assert set(shown["categories"]) == set(data["categories"])
    for name, figures in data["categories"].items():
        assert Decimal(shown["categories"][name]) == Decimal(str(figures["counted"])), name


# ------------------------------------------------------------- exports


def _sheet(content: bytes, title: str) -> list[list[Any]]:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(content))
    return [list(row) for row in wb[title].iter_rows(values_only=True)]


def test_teacher_account_export(ledger_world: World) -> None:
    response = login(ledger_world, "alice").get(reverse("teacher-export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    info = dict((r[0], r[1]) for r in _sheet(response.content, "个人信息")[1:])
    assert info["身份证号"] == ledger_world.teachers["alice"].masked_id
    records = _sheet(response.content, "学分记录")
    assert any(r[2] == "2024网络" for r in records)


def test_unit_export_masks_ids_and_neutralises_formulas(ledger_world: World) -> None:
    w = ledger_world
    Teacher.objects.filter(pk=w.teachers["anna"].pk).update(name="=HYPERLINK(\"x\")")
    school = w.orgs["east-1"]
    masked = login(w, "bob").get(reverse("dashboard-export", args=[school.pk]))
    assert masked.status_code == 200
    rows = _sheet(masked.content, "教师")
    assert rows[0][:3] == ["教师编号", "姓名", "身份证号"]
    by_no = {r[0]: r for r in rows[1:]}
    assert by_no["T0001"][2] == w.teachers["alice"].masked_id
    assert str(by_no["T0002"][1]).startswith("'=")  # a formula typed as a name stays text
    full = _sheet(login(w, "carol").get(reverse("dashboard-export", args=[school.pk])).content, "教师")
    assert {r[0]: r for r in full[1:]}["T0001"][2] == w.teachers["alice"].id_number
    units = _sheet(login(w, "dora").get(reverse("dashboard-export", args=[w.orgs["city"].pk])).content, "单位")
    assert [r[0] for r in units[1:]] == ["东区", "西区"]


# ------------------------------------------------------------- English


def test_pages_in_english(ledger_world: World) -> None:
    html = login(ledger_world, "alice", lang="en").get(reverse("teacher-home")).content.decode()
    assert "My credits" in html and "What I still need" in html
    dash = login(ledger_world, "bob", lang="en").get(reverse("dashboard")).content.decode()
    assert "In progress" in dash and "Export XLSX" in dash



def test_teacher_home_and_dashboard_stay_cheap(ledger_world: World, django_assert_max_num_queries: Any) -> None:
    """One engine evaluation and a handful of queries, however many records."""
    alice = login(ledger_world, "alice")
    with django_assert_max_num_queries(20):
        assert alice.get(reverse("teacher-home")).status_code == 200
    dora = login(ledger_world, "dora")
    with django_assert_max_num_queries(30):
        assert dora.get(reverse("dashboard")).status_code == 200


def test_at_risk_shortfalls_are_the_stored_figures(world: World) -> None:
    """The district dashboard reads each at-risk teacher's shortfall from the
    stored evaluation in the database (not by decoding every evaluation):
    the figures are the stored ones, on SQLite and PostgreSQL."""
    from django.utils import timezone

    from xuefen.web.models import TeacherResult
    from xuefen.web.views.officer import at_risk

    world.record("alice", status=Status.SCHOOL_APPROVED, hours=Decimal(8))
    year = timezone.localdate().year
    results, total = at_risk(world.orgs["east"], year)
    assert total > 0 and results
    for r in results:
        stored = TeacherResult.objects.get(pk=r.pk).data
        expected = ((stored.get("years") or {}).get(str(year)) or {}).get("shortfall")
        assert r.year_shortfall == (Decimal(str(expected)) if expected not in (None, "") else 0)
    assert any(r.year_shortfall > 0 for r in results)


def test_a_teacher_complete_ahead_of_time_is_listed_with_those_who_passed(ledger_world: World) -> None:
    """已达标（提前完成） is a pass: the school's 达标 filter lists her, 进行中 does
    not, and her own filter finds her (services/tallies.py counts her the same)."""
    w = ledger_world
    alice, anna = w.teachers["alice"], w.teachers["anna"]
    TeacherResult.objects.filter(teacher=alice).update(status="已达标（提前完成）", passed=True)
    TeacherResult.objects.filter(teacher=anna).update(status="进行中", passed=False)
    c = login(w, "dora")
    url = reverse("dashboard-org", args=[w.orgs["east-1"].pk])
    link = reverse("teacher-detail", args=[alice.pk])
    for status, listed in (("达标", True), ("已达标（提前完成）", True), ("进行中", False)):
        html = c.get(url, {"status": status}).content.decode()
        listing = html.split('id="teachers"', 1)[1].split("</section>", 1)[0]  # not the at-risk list
        assert (link in listing) == listed, status
    assert "Passed (completed early)" in login(w, "dora", lang="en").get(url).content.decode()


def test_a_theme_that_only_repeats_its_category_gets_no_row(ledger_world: World) -> None:
    """永吉: 校本研修 is also the name of its own theme; a row repeating the
    category's figures would say nothing."""
    ledger_world.record("alice", Status.CERTIFIED, year=2026, form="校本", level="校级", hours=Decimal(10))
    t = ledger_world.teachers["alice"]
    html = login(ledger_world, "carol").get(reverse("teacher-detail", args=[t.pk])).content.decode()
    assert 'data-category="校本研修"' not in html or 'data-theme="校本研修"' not in html
