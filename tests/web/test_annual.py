"""Annual close (年度登记), 公示 objections, the year lock, certificates and
their public check — services, pages, the CLI and the QR code in the PDF.

Seeds: 永吉 "报请校（园）长审核、公示", "县级年审", "继续教育证书 … 补办";
肃州 第十一条; 山东2009 (十四); 山东 第二十三条 (revocation)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from tests.web.conftest import World

from xuefen import idnumber
from xuefen.web import pdfs
from xuefen.web.models import AnnualClose, AuditEntry, Certificate, Org, Record, Status
from xuefen.web.services import annual, certificates, ledger

YEAR = 2025
MONDAY = dt.date(2026, 1, 5)


def passing_year(world: World, who: str, year: int = YEAR) -> list[Record]:
    """What a 永吉 teacher needs in a year (集中, 网络, 校本), approved."""
    return [
        world.record(who, status=Status.CERTIFIED, year=year, title="集中培训", form="集中", level="区县级",
                     hours=Decimal(24)),
        world.record(who, status=Status.CERTIFIED, year=year, title="国培网络研修", form="网络", level="国家级",
                     program="国培计划", hours=Decimal(24)),
        world.record(who, status=Status.CERTIFIED, year=year, title="校本研修", form="校本", level="校级",
                     hours=Decimal(48)),
    ]


def actor(world: World, name: str) -> ledger.Actor:
    return ledger.Actor(world.users[name])


def confirmed(world: World) -> AnnualClose:
    """东区实验小学 2025 through every step; alice passes, anna does not."""
    passing_year(world, "alice")
    world.record("anna", status=Status.CERTIFIED, year=YEAR, title="一次培训", hours=Decimal(10))
    school = world.orgs["east-1"]
    close = annual.close_year(actor(world, "bob"), school.pk, YEAR, today=MONDAY)
    close = annual.sign_off(actor(world, "pat"), close.pk, close.version, today=MONDAY)
    assert close.publicity_end is not None
    close = annual.submit(actor(world, "bob"), close.pk, close.version, today=close.publicity_end + dt.timedelta(days=1))
    return annual.confirm(actor(world, "carol"), close.pk, close.version)


def test_working_days() -> None:
    # 2026-01-05 is a Monday: five working days end on Friday; from a Saturday, on the next Friday
    assert annual.add_working_days(MONDAY, 5) == dt.date(2026, 1, 9)
    assert annual.add_working_days(dt.date(2026, 1, 3), 5) == dt.date(2026, 1, 9)
    assert annual.add_working_days(dt.date(2026, 1, 8), 5) == dt.date(2026, 1, 14)


def test_full_flow_with_objection_and_certificates(world: World) -> None:
    passing_year(world, "alice")
    school = world.orgs["east-1"]
    close = annual.close_year(actor(world, "bob"), school.pk, YEAR, today=MONDAY)
    assert close.state == AnnualClose.State.CLOSED and close.locked
    assert close.snapshot[str(world.teachers["alice"].pk)]["passed"] is True
    assert close.snapshot[str(world.teachers["anna"].pk)]["passed"] is False
    with pytest.raises(ledger.Denied):
        annual.sign_off(actor(world, "bob"), close.pk, today=MONDAY)
    close = annual.sign_off(actor(world, "pat"), close.pk, close.version, today=MONDAY)
    assert (close.publicity_start, close.publicity_end) == (MONDAY, dt.date(2026, 1, 9))
    with pytest.raises(ledger.Denied):
        annual.file_objection(actor(world, "ella"), close.pk, "不是本校", today=MONDAY)
    with pytest.raises(ledger.ServiceError):
        annual.file_objection(actor(world, "anna"), close.pk, "  ", today=MONDAY)
    objection = annual.file_objection(actor(world, "anna"), close.pk, "我的网络研修未计入", today=MONDAY)
    with pytest.raises(ledger.Conflict, match="公示期"):  # not before the 公示 ends
        annual.submit(actor(world, "bob"), close.pk, close.version, today=dt.date(2026, 1, 9))
    with pytest.raises(ledger.Conflict, match="未答复"):
        annual.submit(actor(world, "bob"), close.pk, close.version, today=dt.date(2026, 1, 12))
    with pytest.raises(ledger.Conflict, match="公示期已于"):
        annual.file_objection(actor(world, "alice"), close.pk, "晚了", today=dt.date(2026, 1, 12))
    annual.answer_objection(actor(world, "bob"), objection.pk, "网络研修记录未经审核，不计入")
    close = annual.submit(actor(world, "bob"), close.pk, close.version, today=dt.date(2026, 1, 12))
    with pytest.raises(ledger.Denied):
        annual.confirm(actor(world, "cody"), close.pk, close.version)
    close = annual.confirm(actor(world, "carol"), close.pk, close.version)
    assert close.state == AnnualClose.State.CONFIRMED
    certs = list(Certificate.objects.all())
    assert [(c.teacher.name, c.kind, c.period_end) for c in certs] == [("alice", "annual", YEAR)]
    assert certs[0].issuer == "东区教育行政部门"
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    for step in ("year_close", "year_sign", "objection_file", "objection_answer", "year_submit", "year_confirm",
                 "certificate_issue"):
        assert step in actions


def test_closed_year_is_locked_until_reopened(world: World) -> None:
    close = confirmed(world)
    record = world.record("alice", status=Status.PENDING, year=2026)  # another year: open
    returned = world.record("alice", status=Status.SCHOOL_APPROVED, year=YEAR, title="晚到的记录")
    with pytest.raises(ledger.Conflict, match="年度已登记"):
        ledger.return_record(actor(world, "carol"), returned.pk, "材料不全")  # the district holds it (issue 19 item 7)
    with pytest.raises(ledger.Conflict, match="年度已登记"):
        ledger.enter_school_record(actor(world, "bob"), world.teachers["alice"],
                                   {"year": YEAR, "title": "补录", "form": "校本", "hours": "10"})
    ledger.transition(actor(world, "bob"), record.pk, "school_approve")  # 2026 is open
    with pytest.raises(ledger.ServiceError, match="理由"):
        annual.reopen(actor(world, "carol"), close.pk, " ")
    with pytest.raises(ledger.Denied):
        annual.reopen(actor(world, "bob"), close.pk, "更正")
    annual.reopen(actor(world, "carol"), close.pk, "补录遗漏记录")
    assert not Certificate.objects.filter(voided_at__isnull=True).exists()  # the reopened year's are void
    ledger.return_record(actor(world, "carol"), returned.pk, "材料不全")  # the district holds it (issue 19 item 7)
    entry = AuditEntry.objects.get(action="year_reopen")
    assert entry.comment == "补录遗漏记录" and entry.actor_name == "carol"


def test_close_refused_with_pending_declarations_and_future_year(world: World) -> None:
    world.record("alice", status=Status.PENDING, year=YEAR)
    school = world.orgs["east-1"]
    with pytest.raises(ledger.ServiceError, match="1 条待学校审核"):
        annual.close_year(actor(world, "bob"), school.pk, YEAR, today=MONDAY)
    with pytest.raises(ledger.ServiceError, match="尚未开始"):
        annual.close_year(actor(world, "bob"), school.pk, 2027, today=MONDAY)
    with pytest.raises(ledger.Denied):
        annual.close_year(actor(world, "bert"), school.pk, YEAR, today=MONDAY)


def test_return_then_close_again(world: World) -> None:
    close = annual.close_year(actor(world, "bob"), world.orgs["east-1"].pk, YEAR, today=MONDAY)
    close = annual.sign_off(actor(world, "pat"), close.pk, today=MONDAY)
    close = annual.submit(actor(world, "bob"), close.pk, today=dt.date(2026, 2, 1))
    with pytest.raises(ledger.Conflict, match="已被他人处理"):
        annual.return_close(actor(world, "carol"), close.pk, "名单有误", expected_version=1)
    close = annual.return_close(actor(world, "carol"), close.pk, "名单有误", close.version)
    assert close.state == AnnualClose.State.RETURNED and not close.locked
    close = annual.close_year(actor(world, "bob"), world.orgs["east-1"].pk, YEAR, today=dt.date(2026, 2, 2))
    assert close.state == AnnualClose.State.CLOSED


def test_district_settings_and_late_schools(world: World) -> None:
    east = world.orgs["east"]
    with pytest.raises(ledger.Denied):
        annual.set_district_settings(actor(world, "cody"), east.pk, publicity_days=7, close_due="")
    with pytest.raises(ledger.ServiceError, match="MM-DD"):
        annual.set_district_settings(actor(world, "carol"), east.pk, publicity_days=7, close_due="13-01")
    annual.set_district_settings(actor(world, "carol"), east.pk, publicity_days=7, close_due="02-15")
    assert annual.publicity_days(world.orgs["east-1"]) == 7
    assert annual.publicity_days(world.orgs["west-1"]) == annual.DEFAULT_PUBLICITY_DAYS
    rows = {r["school"].name: r for r in annual.school_rows(Org.objects.get(pk=east.pk), YEAR,
                                                            today=dt.date(2026, 2, 16))}
    assert rows["东区实验小学"]["late"] and rows["东区第二中学"]["late"]
    assert not annual.school_rows(Org.objects.get(pk=east.pk), YEAR, today=dt.date(2026, 2, 15))[0]["late"]
    assert AuditEntry.objects.filter(action="district_settings").count() == 1


def test_revoked_record_turns_certificate_revoked_and_reissue(world: World) -> None:
    confirmed(world)
    cert = Certificate.objects.get()
    assert certificates.is_valid(cert)
    token = certificates.url_token(cert)
    client = Client()
    page = client.get(f"/verify/{token}/")
    assert page.status_code == 200 and "有效" in page.content.decode() and "a****" in page.content.decode()
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert client.get(f"/verify/{forged}/").status_code == 404
    assert client.get(f"/verify/{cert.token}/").status_code == 404  # unsigned
    with pytest.raises(ledger.Denied):
        certificates.reissue(actor(world, "bob"), cert.pk, "遗失")
    new = certificates.reissue(actor(world, "carol"), cert.pk, "遗失，校长已开具证明")
    assert new.number != cert.number and new.number.endswith("-02")
    assert "已撤销" in client.get(f"/verify/{token}/").content.decode()
    new_token = certificates.url_token(new)
    assert "有效" in client.get(f"/verify/{new_token}/").content.decode()
    # 山东 第二十三条: a counted record revoked later — the certificate shows 已撤销
    ledger.revoke_record(actor(world, "carol"), new.record_ids[0], "材料造假")
    assert "已撤销" in client.get(f"/verify/{new_token}/").content.decode()


def _qr_urls(pdf: bytes) -> list[str]:
    pdfium = pytest.importorskip("pypdfium2")
    zxingcpp = pytest.importorskip("zxingcpp")
    doc = pdfium.PdfDocument(pdf)
    out = []
    for page in doc:
        image = page.render(scale=2).to_pil()
        out += [b.text for b in zxingcpp.read_barcodes(image)]
    return out


def test_qr_code_in_the_pdf_leads_to_the_verification_page(world: World) -> None:
    confirmed(world)
    client = Client()
    client.force_login(world.users["alice"])
    cert = Certificate.objects.get()
    response = client.get(f"/certificates/{cert.pk}.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    [url] = _qr_urls(response.content)
    assert url.startswith("http://testserver/verify/")
    page = Client().get(url.removeprefix("http://testserver"))
    assert page.status_code == 200 and "有效" in page.content.decode()


def test_school_merged_pdf_statement_and_booklet(world: World) -> None:
    passing_year(world, "anna")
    confirmed(world)
    client = Client()
    client.force_login(world.users["bob"])
    merged = client.get(f"/annual/school/{world.orgs['east-1'].pk}/{YEAR}/certificates.pdf")
    assert merged.status_code == 200
    assert len(_qr_urls(merged.content)) == 2  # alice and anna, one page each
    client.force_login(world.users["alice"])
    statement = client.post(f"/teachers/{world.teachers['alice'].pk}/statement.pdf")
    assert statement.status_code == 200
    [url] = _qr_urls(statement.content)
    assert "有效" in Client().get(url.removeprefix("http://testserver")).content.decode()
    assert Certificate.objects.filter(kind="statement").count() == 1
    booklet = client.get(f"/teachers/{world.teachers['alice'].pk}/booklet.pdf")
    assert booklet.status_code == 200 and booklet.content.startswith(b"%PDF")
    assert AuditEntry.objects.filter(action="booklet_print").count() == 1


def test_no_certificates_where_the_policy_provides_none(world: World) -> None:
    """西区 is bound to shandong (2019), which names no certificate: its year
    closes and is confirmed, and nothing is issued."""
    from django.contrib.auth.models import User

    from xuefen.web.models import Profile, Role

    principal = User.objects.create_user("wanda")
    Profile.objects.create(user=principal, role=Role.PRINCIPAL, org=world.orgs["west-1"])
    world.record("will", status=Status.CERTIFIED, year=YEAR, hours=Decimal(200))
    close = annual.close_year(actor(world, "wes"), world.orgs["west-1"].pk, YEAR, today=MONDAY)
    close = annual.sign_off(ledger.Actor(principal), close.pk, today=MONDAY)
    close = annual.submit(actor(world, "wes"), close.pk, today=dt.date(2026, 2, 1))
    annual.confirm(actor(world, "cody"), close.pk)
    assert not Certificate.objects.exists()
    assert "不颁发" in certificates.explain_missing(world.teachers["will"], Certificate.Kind.ANNUAL, YEAR)
    assert certificates.provides("yongji", Certificate.Kind.ANNUAL)
    assert certificates.provides("beijing-2021", Certificate.Kind.CYCLE)
    assert not certificates.provides("beijing-2021", Certificate.Kind.ANNUAL)


def test_cli_certificate(world: World, tmp_path: Path, settings: Any) -> None:
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    out = tmp_path / "c.pdf"
    with pytest.raises(CommandError, match="尚未经区县确认"):
        call_command("certificate", "--teacher", "T0001", "--year", str(YEAR), "-o", str(out))
    confirmed(world)
    with pytest.raises(CommandError, match="未达标"):
        call_command("certificate", "--teacher", "T0002", "--year", str(YEAR), "-o", str(out))
    with pytest.raises(CommandError, match="不颁发周期培训结业证书"):
        call_command("certificate", "--teacher", "T0001", "--cycle", "-o", str(out))
    call_command("certificate", "--teacher", "T0001", "--year", str(YEAR), "-o", str(out))
    [url] = _qr_urls(out.read_bytes())
    assert url.startswith("http://127.0.0.1:8000/verify/")
    assert Client().get(url.removeprefix("http://127.0.0.1:8000")).status_code == 200


def test_pages_render(world: World) -> None:
    close = confirmed(world)
    client = Client()
    client.force_login(world.users["carol"])
    index = client.get("/annual/?year=2025")
    assert index.status_code == 200 and "东区实验小学" in index.content.decode()
    page = client.get(f"/annual/school/{close.school_id}/{YEAR}/")
    assert "已确认" in page.content.decode()
    settings_page = client.get(f"/annual/district/{world.orgs['east'].pk}/settings/")
    assert settings_page.status_code == 200
    bad = client.post(f"/annual/district/{world.orgs['east'].pk}/settings/", {"publicity_days": "x", "close_due": ""})
    assert bad.status_code == 400 and "整数" in bad.content.decode()
    client.force_login(world.users["alice"])
    mine = client.get("/me/certificates/")
    assert mine.status_code == 200 and "ND2025-T0001-01" in mine.content.decode()


def test_pdf_font_is_chinese_capable() -> None:
    assert pdfs.font() in ("XuefenCJK", "STSong-Light")


def test_import_into_a_closed_year_is_refused_row_by_row(world: World) -> None:
    from xuefen.web.services import imports

    confirmed(world)
    text = ("教师编号,姓名,记录编号,登记年度,培训项目名称,形式,级别,学时,考核结果\n"
            "T0001,alice,C-01,2025,市级研修,集中,市级,24,合格\n"
            "T0001,alice,C-02,2026,市级研修,集中,市级,24,合格\n")
    batch = imports.validate_roster(actor(world, "bob"), world.orgs["east-1"], "roster.csv", text.encode())
    assert batch.state == "invalid"
    assert [(e["row"], e["column"]) for e in batch.errors] == [(2, "登记年度")]
    assert "年度已登记" in batch.errors[0]["message"]


def test_sign_off_tells_the_teachers(world: World) -> None:
    from xuefen.web.models import Notification

    close = annual.close_year(actor(world, "bob"), world.orgs["east-1"].pk, YEAR, today=MONDAY)
    annual.sign_off(actor(world, "pat"), close.pk, today=MONDAY)
    told = set(Notification.objects.filter(message__contains="公示至 2026-01-09").values_list("user__username", flat=True))
    assert told == {"alice", "anna"}


def test_cycle_certificate_when_the_cycles_last_year_is_confirmed(world: World) -> None:
    """北京 第三条: a teacher who completed the 2021–2025 credits gets the
    结业证书 (and no yearly one: the policy provides none) once her school's
    2025, the cycle's last year, is confirmed.  The records add up to
    exactly the 36 credits and every category's minimum."""
    from django.contrib.auth.models import User

    from xuefen.web.models import OrgKind, Profile, Role
    from xuefen.web.services.teachers import add_teacher

    district = Org.objects.create(name="北京某区", kind=OrgKind.DISTRICT, parent=world.orgs["city"],
                                  policy="beijing-2021")
    school = Org.objects.create(name="北京某小学", kind=OrgKind.SCHOOL, parent=district)
    people = {}
    for name, role, org in (("mo", Role.SCHOOL_OFFICER, school), ("mp", Role.PRINCIPAL, school),
                            ("md", Role.DISTRICT_OFFICE, district)):
        people[name] = User.objects.create_user(name)
        Profile.objects.create(user=people[name], role=role, org=org)
    teacher = add_teacher(school, teacher_no="B0001", name="王老师", stage="小学", hired_year=2008,
                          id_number=idnumber.make("110105", "19800101", 18))
    world.teachers["wang"] = teacher
    records: list[dict[str, Any]] = [
        {"year": 2021, "title": "师德修养专题", "category": "公共必修", "theme": "思想政治素质与师德修养",
         "preset_credits": Decimal(3), "hours": None},
        {"year": 2022, "title": "教育政策解读", "category": "公共必修", "theme": "教育政策与理论",
         "preset_credits": Decimal(3), "hours": None},
        {"year": 2022, "title": "学生心理发展", "category": "公共必修", "theme": "学生发展", "preset_credits": Decimal(1),
         "hours": None},
        {"year": 2023, "title": "信息技术专题", "category": "公共必修", "theme": "现代信息技术",
         "preset_credits": Decimal(1), "hours": None},
        {"year": 2024, "title": "区级学科专题", "category": "专业必修", "form": "集中", "hours": Decimal(20)},
        {"year": 2021, "title": "区级学科教学能力提升", "category": "专业必修", "form": "集中", "hours": Decimal(40)},
        {"year": 2023, "title": "国培计划骨干教师研修", "program": "国培计划", "hours": Decimal(40), "result": "优秀",
         "form": "", "level": ""},
        # 选修 courses on a 公共必修 theme (written 专题选修 the theme would contradict
        # 第七条's sub-type, which is bad input)
        {"year": 2022, "title": "市级专题选修（认定3学分）", "category": "选修", "hours": Decimal(48),
         "preset_credits": Decimal(3), "theme": "学生发展"},
        {"year": 2024, "title": "市级专题选修", "category": "选修", "hours": Decimal(48),
         "preset_credits": Decimal(3), "theme": "学生发展"},
        *({"year": y, "title": "校本研修", "category": "校本研修", "hours": Decimal(48), "form": "", "level": ""}
          for y in range(2021, 2026)),
    ]
    for facts in records:
        world.record("wang", status=Status.CERTIFIED, **{"form": "", "level": "", **facts})
    close = annual.close_year(ledger.Actor(people["mo"]), school.pk, 2025, today=dt.date(2026, 1, 5))
    entry = close.snapshot[str(teacher.pk)]
    assert entry["cycle"] == [2021, 2025] and entry["cycle_passed"] and entry["cycle_total"] == "36", entry
    close = annual.sign_off(ledger.Actor(people["mp"]), close.pk, today=dt.date(2026, 1, 5))
    close = annual.submit(ledger.Actor(people["mo"]), close.pk, today=dt.date(2026, 1, 20))
    annual.confirm(ledger.Actor(people["md"]), close.pk)
    [cycle] = Certificate.objects.filter(teacher=teacher)
    assert (cycle.kind, cycle.period_start, cycle.period_end) == ("cycle", 2021, 2025)
    assert cycle.issuer == "示范市教育行政部门"  # 北京 第三条: 市教委
    assert len(cycle.record_ids) == len(records)


def test_api_close_flow_objection_and_certificates(world: World) -> None:
    passing_year(world, "alice")

    def client(name: str) -> Client:
        c = Client()
        c.force_login(world.users[name])
        return c

    def post(who: str, url: str, **data: Any) -> Any:
        return client(who).post(url, data, content_type="application/json")

    school = world.orgs["east-1"].pk
    assert post("pat", "/api/annual-closes/", school=school, year=YEAR).status_code == 403
    created = post("bob", "/api/annual-closes/", school=school, year=YEAR)
    assert created.status_code == 201, created.content
    close = created.json()
    assert close["state"] == "closed" and [t["name"] for t in close["teachers"]] == ["alice", "anna"]
    assert close["teachers"][0]["total"] == "64.8"  # exact decimal strings
    base = f"/api/annual-closes/{close['id']}"
    assert post("pat", f"{base}/sign/", version=close["version"] + 5).status_code == 409
    signed = post("pat", f"{base}/sign/", version=close["version"])
    assert signed.status_code == 200 and signed.json()["state"] == "publicity"
    objection = post("anna", f"{base}/objections/", text="我的集中培训未计入")
    assert objection.status_code == 201
    assert post("anna", f"/api/objections/{objection.json()['id']}/answer/", text="x").status_code == 403
    answered = post("bob", f"/api/objections/{objection.json()['id']}/answer/", text="已核对，无误")
    assert answered.status_code == 200 and answered.json()["answer"] == "已核对，无误"
    assert post("bob", f"{base}/submit/").status_code == 409  # the 公示 is still running
    AnnualClose.objects.filter(pk=close["id"]).update(publicity_end=dt.date(2026, 1, 9))
    assert post("bob", f"{base}/submit/").json()["state"] == "submitted"
    assert post("carol", f"{base}/return/").status_code == 400  # no reason
    assert post("carol", f"{base}/confirm/").json()["state"] == "confirmed"
    certs = client("alice").get("/api/certificates/").json()["results"]
    assert [(c["number"], c["valid"]) for c in certs] == [("ND2025-T0001-01", True)]
    assert certs[0]["verify_url"].startswith("http://testserver/verify/")
    pdf = client("alice").get(f"/api/certificates/{certs[0]['id']}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    reissued = post("carol", f"/api/certificates/{certs[0]['id']}/reissue/", reason="遗失")
    assert reissued.status_code == 201 and reissued.json()["number"] == "ND2025-T0001-02"
    assert post("carol", f"{base}/reopen/", reason="补录").json()["state"] == "reopened"


def test_demo_closes_last_year_and_the_cli_certificate_verifies(db: Any, tmp_path: Path, settings: Any) -> None:
    """The issue's demo check, on a small demo: 东区实验小学's last full year is
    confirmed, T00001 (the demo teacher, of that school) has passed it, and
    the CLI's PDF carries a QR code to a 200 page with 有效; one character
    changed is 404."""
    import io

    from django.utils import timezone

    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("demo", teachers=25, stdout=io.StringIO())
    year = timezone.localdate().year - 1
    close = AnnualClose.objects.get(school__name="东区实验小学", year=year)
    assert close.state == AnnualClose.State.CONFIRMED
    out = tmp_path / "c.pdf"
    call_command("certificate", "--teacher", "T00001", "--year", str(year), "-o", str(out), stdout=io.StringIO())
    [url] = _qr_urls(out.read_bytes())
    path = url.removeprefix("http://127.0.0.1:8000")
    page = Client().get(path)
    assert page.status_code == 200 and "有效" in page.content.decode()
    token = path.rstrip("/").rsplit("/", 1)[1]
    changed = path.replace(token, token[:4] + ("A" if token[4] != "A" else "B") + token[5:])
    assert Client().get(changed).status_code == 404


def test_close_pages_in_english(world: World) -> None:
    close = confirmed(world)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world.users["carol"])
    page = client.get(f"/annual/school/{close.school_id}/{YEAR}/").content.decode()
    assert "Confirmed" in page and "Reopen this year" in page
    verify = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/verify/{certificates.url_token(Certificate.objects.get())}/")
    assert "Valid" in verify.content.decode() and "Certificate check" in verify.content.decode()
