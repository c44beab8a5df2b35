"""The office's daily work (issue 16) and the review chain's holder rule
(issue 19 item 7): each defect here had its test fail before the fix."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from tests.web.conftest import World

from xuefen.web import permissions as perm
from xuefen.web.models import (
    AuditEntry,
    BulkReview,
    Notification,
    Record,
    SpotCheck,
    SpotCheckItem,
    Status,
    TeacherResult,
)
from xuefen.web.services import ledger, review, spotcheck


def client_for(world: World, who: str) -> Client:
    c = Client()
    c.force_login(world.users[who])
    return c


# --- issue 19 item 7: only the level holding a record may return it --------------------------


def test_school_officer_cannot_return_a_district_approved_record(world: World) -> None:
    r = world.record("alice", status=Status.DISTRICT_APPROVED)
    with pytest.raises(ledger.Conflict):
        ledger.return_record(ledger.Actor(world.users["bob"]), r.pk, "请补充材料")
    assert Record.objects.get(pk=r.pk).status == Status.DISTRICT_APPROVED


def test_school_officer_return_by_post_is_refused(world: World) -> None:
    r = world.record("alice", status=Status.DISTRICT_APPROVED)
    response = client_for(world, "bob").post(f"/review/{r.pk}/return/", {"comment": "请补充材料"})
    assert response.status_code in (302, 409)
    assert Record.objects.get(pk=r.pk).status == Status.DISTRICT_APPROVED


def test_api_return_by_a_level_not_holding_the_record_is_409(world: World) -> None:
    r = world.record("alice", status=Status.SCHOOL_APPROVED)
    response = client_for(world, "bob").post(f"/api/records/{r.pk}/return/", {"comment": "x", "version": r.version},
                                             content_type="application/json")
    assert response.status_code == 409
    response = client_for(world, "carol").post(f"/api/records/{r.pk}/return/",
                                               {"comment": "请补充", "version": r.version},
                                               content_type="application/json")
    assert response.status_code == 200


@pytest.mark.parametrize(("status", "who", "allowed"), [
    (Status.PENDING, "bob", {"school_approve", "return", "correct"}),
    (Status.PENDING, "carol", {"revoke"}),
    (Status.SCHOOL_APPROVED, "bob", set()),
    (Status.SCHOOL_APPROVED, "carol", {"district_approve", "return", "correct", "revoke"}),
    (Status.DISTRICT_APPROVED, "dora", {"certify", "return", "correct", "revoke"}),
    (Status.REVOKED, "carol", set()),
    (Status.PENDING, "pat", set()),
])
def test_record_actions_derive_from_the_chain(world: World, status: str, who: str, allowed: set[str]) -> None:
    r = world.record("alice", status=status)
    assert perm.record_actions(world.users[who], r) == allowed


# --- issue 16 item 7 and item 5 defects ----------------------------------------------------


def test_category_filter_lists_each_category_once(world: World) -> None:
    for _ in range(4):
        world.record("alice")
        world.record("anna")
    categories = client_for(world, "bob").get("/review/").context["categories"]
    assert categories and len(categories) == len(set(categories))


def test_notifications_are_worded_once(world: World) -> None:
    r = world.record("alice")
    ledger.transition(ledger.Actor(world.users["bob"]), r.pk, "school_approve")
    ledger.transition(ledger.Actor(world.users["carol"]), r.pk, "district_approve")
    ledger.transition(ledger.Actor(world.users["dora"]), r.pk, "certify")
    messages = list(Notification.objects.filter(record=r).values_list("message", flat=True))
    assert len(messages) == 3
    assert not [m for m in messages if "已已" in m or "已学校" in m or "已区县" in m], messages


def test_favicon_is_served_and_linked(world: World, client: Client) -> None:
    assert client.get("/favicon.ico").status_code in (200, 301, 302)
    page = client.get("/login/").content.decode()
    assert 'rel="icon"' in page


# --- batch review ---------------------------------------------------------------------------


def test_bulk_approve_is_all_or_nothing_with_one_audit_entry_per_record(world: World) -> None:
    rs = [world.record("alice") for _ in range(3)] + [world.record("anna")]
    stale = world.record("anna", status=Status.SCHOOL_APPROVED)
    actor = ledger.Actor(world.users["bob"])
    with pytest.raises(ledger.Conflict):
        review.bulk_review(actor, [r.pk for r in rs] + [stale.pk], "approve")
    assert set(Record.objects.filter(pk__in=[r.pk for r in rs]).values_list("status", flat=True)) == {Status.PENDING}
    assert review.bulk_review(actor, [r.pk for r in rs], "approve") == 4
    assert set(Record.objects.filter(pk__in=[r.pk for r in rs]).values_list("status", flat=True)) == {
        Status.SCHOOL_APPROVED}
    entries = AuditEntry.objects.filter(action="school_approve", object_id__in=[str(r.pk) for r in rs])
    assert entries.count() == 4
    assert TeacherResult.objects.get(teacher=world.teachers["alice"]).year_total > 0


def test_bulk_refuses_records_outside_scope(world: World) -> None:
    mine, theirs = world.record("alice"), world.record("will")
    with pytest.raises(ledger.Denied):
        review.bulk_review(ledger.Actor(world.users["bob"]), [mine.pk, theirs.pk], "approve")
    assert Record.objects.get(pk=mine.pk).status == Status.PENDING


def test_bulk_return_needs_a_reason(world: World) -> None:
    r = world.record("alice")
    with pytest.raises(ledger.ServiceError):
        review.bulk_review(ledger.Actor(world.users["bob"]), [r.pk], "return", " ")


def test_queue_is_paginated_and_select_filtered_approves_every_page(world: World, settings: Any) -> None:
    settings.REVIEW_PAGE_SIZE = 5
    for i in range(12):
        world.record("alice" if i % 2 else "anna")
    bob = client_for(world, "bob")
    page = bob.get("/review/")
    assert len(page.context["records"]) == 5 and page.context["count"] == 12
    assert len(bob.get("/review/", {"page": 3}).context["records"]) == 2
    query = "status=pending&q=alice"
    response = bob.post("/review/bulk/", {"scope": "filtered", "query": query, "expected": "6", "action": "approve"})
    assert response.status_code == 302
    assert Record.objects.filter(teacher__name="alice", status=Status.SCHOOL_APPROVED).count() == 6
    assert Record.objects.filter(teacher__name="anna", status=Status.PENDING).count() == 6


def test_select_filtered_refuses_when_the_count_moved(world: World) -> None:
    for _ in range(3):
        world.record("alice")
    bob = client_for(world, "bob")
    bob.post("/review/bulk/", {"scope": "filtered", "query": "status=pending", "expected": "2", "action": "approve"})
    assert Record.objects.filter(status=Status.PENDING).count() == 3


def test_large_selection_runs_as_a_job_with_progress(world: World, settings: Any) -> None:
    settings.REVIEW_BACKGROUND_RECORDS = 2
    rs = [world.record("alice") for _ in range(4)]
    bob = client_for(world, "bob")
    response = bob.post("/review/bulk/", {"ids": [str(r.pk) for r in rs], "action": "approve", "query": ""})
    job = BulkReview.objects.get()
    assert response["Location"] == f"/review/jobs/{job.pk}/"
    assert job.state == BulkReview.State.DONE and job.done == 4
    assert bob.get(f"/review/jobs/{job.pk}/").status_code == 200
    assert client_for(world, "bert").get(f"/review/jobs/{job.pk}/").status_code == 404


def test_search_by_record_number_and_teacher_number(world: World) -> None:
    a, b = world.record("alice"), world.record("anna")
    second = world.record("anna")  # X002: record numbers are per teacher
    bob = client_for(world, "bob")
    assert [r.pk for r in bob.get("/review/", {"q": second.uid}).context["records"]] == [second.pk]
    assert {r.pk for r in bob.get("/review/", {"q": a.uid}).context["records"]} == {a.pk, b.pk}
    found = bob.get("/review/", {"q": world.teachers["anna"].teacher_no}).context["records"]
    assert {r.pk for r in found} == {b.pk, second.pk}


# --- item 5: what the teacher and the reviewer read -------------------------------------------


def test_capped_amount_is_said_in_plain_words_on_the_record(world: World) -> None:
    # 永吉: 校本研修 at most 24 credits a year (学时与学分标准); 40 h + 12 h × 0.5 = 26.
    world.record("alice", status=Status.SCHOOL_APPROVED, form="校本", level="", hours=Decimal(40), title="校本甲")
    world.record("alice", status=Status.SCHOOL_APPROVED, form="校本", level="", hours=Decimal(12), title="校本乙")
    html = client_for(world, "alice").get("/me/").content.decode()
    assert "本年校本研修已达上限24学分，此条6学分中计入4学分" in html
    # … and on the category: the engine's own sentence, in the page, not in a tooltip
    assert '<p class="scope-note">2026年校本研修共 26学分，按上限计 24学分' in html
    html = client_for(world, "bob").get(f"/teachers/{world.teachers['alice'].pk}/").content.decode()
    assert "此条6学分中计入4学分" in html


def test_revoked_record_says_so(world: World) -> None:
    r = world.record("alice", status=Status.SCHOOL_APPROVED)
    ledger.revoke_record(ledger.Actor(world.users["carol"]), r.pk, "证书系伪造")
    html = client_for(world, "alice").get(f"/records/{r.pk}/").content.decode()
    assert "此记录已撤销，不计入学分" in html
    assert "此记录已撤销，不计入学分" in client_for(world, "alice").get("/me/").content.decode()


def test_no_policy_code_or_doubled_year_in_what_the_record_page_says(world: World) -> None:
    r = world.record("alice", status=Status.SCHOOL_APPROVED, title="区级培训")
    html = client_for(world, "bob").get(f"/records/{r.pk}/").content.decode()
    assert "yongji" not in html
    assert "2026年 区级培训" not in html
    assert "2026年 区级培训" not in client_for(world, "alice").get("/me/").content.decode()


def test_audit_log_speaks_chinese_and_names_the_operator(world: World) -> None:
    bob = world.users["bob"]
    bob.first_name = "王老师"
    bob.save()
    r = world.record("alice")
    ledger.transition(ledger.Actor(bob), r.pk, "school_approve")
    html = client_for(world, "audrey").get("/audit/").content.decode()
    assert "学分记录" in html and ">Record" not in html
    assert "school_approved" not in html and "学校已审核" in html
    assert "王老师" in html


# --- the new pages --------------------------------------------------------------------------


def test_correct_page_keeps_the_old_values_in_history(world: World) -> None:
    r = world.record("alice", title="区级培训")
    bob = client_for(world, "bob")
    page = bob.get(f"/records/{r.pk}/")
    assert f"/records/{r.pk}/correct/" in page.content.decode()
    form = bob.get(f"/records/{r.pk}/correct/")
    assert form.status_code == 200 and form.context["values"]["hours"] == "24"
    values = {**form.context["values"], "hours": "20", "comment": "按结业证书更正学时", "version": str(r.version)}
    response = bob.post(f"/records/{r.pk}/correct/", values)
    assert response.status_code == 302
    assert Record.objects.get(pk=r.pk).hours == Decimal(20)
    html = bob.get(f"/records/{r.pk}/").content.decode()
    assert "更正" in html and "<del>24</del> → <ins>20</ins>" in html and "按结业证书更正学时" in html
    assert bob.post(f"/records/{r.pk}/correct/", {**values, "comment": ""}).status_code == 400
    # the district does not hold a pending record: no correction page for it
    assert client_for(world, "carol").get(f"/records/{r.pk}/correct/").status_code == 404


def test_spot_check_draws_by_rule_and_seed_records_a_result_and_revokes(world: World) -> None:
    for name in ("alice", "anna", "ella", "alice", "anna"):
        world.record(name, status=Status.SCHOOL_APPROVED)
    world.record("will", status=Status.SCHOOL_APPROVED)  # 西区: never in 东区's pool
    carol = client_for(world, "carol")
    response = carol.post("/spot-checks/", {"size": "3", "seed": "42", "year": "2026"})
    check = SpotCheck.objects.get()
    assert response["Location"] == f"/spot-checks/{check.pk}/"
    drawn = sorted(check.items.values_list("record_id", flat=True))
    assert check.pool == 5 and len(drawn) == 3
    assert sorted(spotcheck.pool(world.orgs["east"], {"year": 2026})) == sorted(
        Record.objects.filter(teacher__school__path__startswith=world.orgs["east"].path).values_list("pk", flat=True))
    # the same rule and seed draw the same records again
    again = spotcheck.draw(ledger.Actor(world.users["carol"]), world.orgs["east"], 3, 42, "2026")
    assert sorted(again.items.values_list("record_id", flat=True)) == drawn
    item = check.items.first()
    assert item is not None
    carol.post(f"/spot-checks/items/{item.pk}/", {"result": "failed", "note": "证书编号查无此证", "revoke": "1"})
    item.refresh_from_db()
    assert item.result == SpotCheckItem.Result.FAILED
    assert Record.objects.get(pk=item.record_id).status == Status.REVOKED
    assert "证书编号查无此证" in carol.get(f"/spot-checks/{check.pk}/").content.decode()
    assert client_for(world, "cody").get(f"/spot-checks/{check.pk}/").status_code == 404
    assert client_for(world, "bob").get("/spot-checks/").status_code == 404


def test_school_credits_for_a_list_of_teachers_in_one_form(world: World) -> None:
    bob = client_for(world, "bob")
    page = bob.get("/school-credits/")
    assert [row["teacher"].name for row in page.context["rows"]] == ["alice", "anna"]
    alice, anna = world.teachers["alice"], world.teachers["anna"]
    post = {"year": "2026", "title": "校本研修：课堂观察", "form": "校本", "result": "合格",
            f"hours-{alice.pk}": "10", f"hours-{anna.pk}": "十"}
    assert bob.post("/school-credits/", post).status_code == 400
    assert not Record.objects.filter(source="school").exists()  # all or nothing
    post[f"hours-{anna.pk}"] = "12"
    assert bob.post("/school-credits/", post).status_code == 302
    made = Record.objects.filter(source="school").order_by("teacher__teacher_no")
    assert [(r.teacher.name, r.hours, r.credits, r.status) for r in made] == [
        ("alice", Decimal(10), Decimal(5), Status.SCHOOL_APPROVED), ("anna", Decimal(12), Decimal(6),
                                                                     Status.SCHOOL_APPROVED)]
    assert AuditEntry.objects.filter(action="school_entry").count() == 2
    ella = world.teachers["ella"]
    response = bob.post("/school-credits/", {**post, f"hours-{ella.pk}": "8"})
    assert not Record.objects.filter(teacher=ella).exists() and response.status_code == 302


def test_password_change_through_the_service(world: World) -> None:
    from tests.web.conftest import PASSWORD

    c = Client()
    assert c.login(username="alice", password=PASSWORD)
    bad = c.post("/account/password/", {"old": "wrong", "new": "Neues-Passwort-2026", "again": "Neues-Passwort-2026"})
    assert bad.status_code == 400
    ok = c.post("/account/password/", {"old": PASSWORD, "new": "Neues-Passwort-2026", "again": "Neues-Passwort-2026"})
    assert ok.status_code == 302
    assert c.get("/me/").status_code == 302  # every session ends at a password change (issue 17)
    assert AuditEntry.objects.filter(action="password_changed").count() == 1
    assert Client().login(username="alice", password="Neues-Passwort-2026")


def test_administrator_resets_a_password_and_changes_roles(world: World) -> None:
    sam = client_for(world, "sam")
    bob = world.users["bob"]
    shown = sam.post(f"/manage/users/{bob.pk}/reset-password/")
    temporary = shown.context["temporary"]
    assert Client().login(username="bob", password=temporary)
    assert AuditEntry.objects.filter(action="password_reset", object_id=str(bob.pk)).exists()
    sam.post(f"/manage/users/{bob.pk}/", {"role": "principal", "org": str(world.orgs["east-1"].pk), "active": "on"})
    assert perm.role(User.objects.get(pk=bob.pk)) == "principal"
    created = sam.post("/manage/users/", {"username": "newbie", "full_name": "新老师", "role": "teacher",
                                          "org": str(world.orgs["east-1"].pk)})
    assert Client().login(username="newbie", password=created.context["temporary"])
    assert client_for(world, "carol").post(f"/manage/users/{bob.pk}/reset-password/").status_code == 404


def test_administrator_changes_a_units_policy_option_and_its_verdicts_change(world: World) -> None:
    """永吉 周期中途入职: 'prorate' (the default) scales the cycle requirement to
    the years in post; 'full' keeps 320.  A teacher hired in 2026 with 70
    credits in 2026 meets a prorated cycle minimum only."""
    alice = world.teachers["alice"]
    alice.hired_year = 2026
    alice.save(update_fields=["hired_year"])
    world.record("alice", status=Status.SCHOOL_APPROVED, hours=Decimal(24))
    before = TeacherResult.objects.get(teacher=alice)
    sam = client_for(world, "sam")
    east = world.orgs["east"]
    page = sam.get(f"/manage/orgs/{east.pk}/")
    assert page.status_code == 200 and any(o["option"].id == "partial_cycle" for o in page.context["options"])
    sam.post(f"/manage/orgs/{east.pk}/", {"policy": "yongji", "option-partial_cycle": "full"})
    east.refresh_from_db()
    assert east.policy_options == {"partial_cycle": "full"}
    after = TeacherResult.objects.get(teacher=alice)
    assert after.data.get("options", {}).get("partial_cycle") == "full"
    # Prorated for the two years in post (2026–2027 of 2023–2027): 集中研修 48 of 120; kept in full: 120.
    assert before.data["categories"]["集中研修"]["required"] == "48"
    assert after.data["categories"]["集中研修"]["required"] == "120"
    entry = AuditEntry.objects.get(action="org_update")
    assert entry.before and entry.before["policy_options"] == {} and entry.after
    assert client_for(world, "carol").post(f"/manage/orgs/{east.pk}/", {"policy": ""}).status_code == 404


def test_not_found_page_is_chinese_and_says_what_the_user_may_do(world: World) -> None:
    response = client_for(world, "bob").get("/records/999999/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "页面不存在或您无权查看" in html and 'href="/review/"' in html and 'href="/dashboard/"' in html
    anonymous = Client().get("/no-such-page/").content.decode()
    assert "页面不存在" in anonymous and 'href="/login/"' in anonymous


# --- item 4: declarations checked like imports --------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
FACTS = {"year": "2026", "title": "县级班主任培训", "form": "集中", "level": "区县级", "hours": "16", "result": "合格"}


def declare(c: Client, confirm: bool = False, pdf: bytes = PDF, **changes: str) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    data: dict[str, Any] = {**FACTS, **changes, "evidence": SimpleUploadedFile("证书.pdf", pdf,
                                                                                content_type="application/pdf")}
    if confirm:
        data["confirm"] = "1"
    return c.post("/me/declare/", data)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"category": "瞎编类别"}, "学分类别“瞎编类别”不属于永吉县方案"),
    ({"year": "2027"}, "晚于今年"),
    ({"year": "2019"}, "已不在申报范围内"),
])
def test_declaration_refused_with_the_reason(world: World, changes: dict[str, str], reason: str) -> None:
    response = declare(client_for(world, "alice"), **changes)
    assert response.status_code == 400 and reason in response.content.decode()
    assert not Record.objects.exists()


def test_a_sub_type_written_as_the_category_is_declared_in_the_policys_words(world: World) -> None:
    """永吉 学分结构: 学区研修 is part of 校本研修; the form accepts it as the CLI
    and the roster import do, and the engine prices it at 学区研修's 0.8."""
    response = declare(client_for(world, "alice"), category="学区研修", form="", level="", hours="20")
    assert response.status_code == 302, response.content.decode()[:400]
    record = Record.objects.get()
    assert record.category == "学区研修" and record.credits == Decimal("16")


def test_zero_credits_and_duplicates_are_warned_then_confirmed_and_shown_to_the_reviewer(world: World) -> None:
    alice = client_for(world, "alice")
    zero = declare(alice, form="网络", hours="", level="")
    assert zero.status_code == 200 and "计 0 学分" in zero.content.decode() and not Record.objects.exists()
    assert declare(alice).status_code == 302
    again = declare(alice)
    html = again.content.decode()
    assert again.status_code == 200 and "材料完全相同" in html and "同名、同学时、同年度" in html
    assert Record.objects.count() == 1
    assert declare(alice, confirm=True).status_code == 302
    assert Record.objects.count() == 2
    queue = client_for(world, "bob").get("/review/").content.decode()
    assert "证明材料与该教师的另一条记录完全相同" in queue and "另有同名、同学时、同年度的记录" in queue
    # another file and another title: nothing to warn about
    assert declare(alice, pdf=PDF + b"%2", title="市级骨干培训").status_code == 302


def test_api_declaration_warns_until_confirmed(world: World) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    alice = client_for(world, "alice")
    for _ in range(2):
        world.record("alice", title="县级班主任培训", hours=Decimal(16))
    body = {**FACTS, "evidence": SimpleUploadedFile("a.pdf", PDF)}
    response = alice.post("/api/declarations/", body)
    assert response.status_code == 400 and "同名、同学时、同年度" in response.json()["detail"]
    body = {**FACTS, "confirm": "true", "evidence": SimpleUploadedFile("a.pdf", PDF)}
    assert alice.post("/api/declarations/", body).status_code == 201


# --- item 6: dashboards -------------------------------------------------------------------


def test_at_risk_list_is_paginated_and_exported(world: World, settings: Any) -> None:
    from openpyxl import load_workbook

    carol = client_for(world, "carol")
    east = world.orgs["east"]
    for name in ("alice", "anna", "ella"):
        world.record(name, status=Status.SCHOOL_APPROVED, hours=Decimal(2))
    page = carol.get(f"/dashboard/org/{east.pk}/at-risk/")
    assert page.status_code == 200 and page.context["page"].paginator.count == 3
    assert f"/dashboard/org/{east.pk}/at-risk/" in carol.get(f"/dashboard/org/{east.pk}/").content.decode()
    response = carol.get(f"/dashboard/org/{east.pk}/at-risk.xlsx")
    import io

    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    names = sorted(row[1] for row in sheet.iter_rows(min_row=2, values_only=True))
    assert names == ["alice", "anna", "ella"]
    assert client_for(world, "cody").get(f"/dashboard/org/{east.pk}/at-risk/").status_code == 404
    assert client_for(world, "alice").get(f"/dashboard/org/{east.pk}/at-risk.xlsx").status_code == 404


def test_weifang_98_percent_floor_flagged_per_school(world: World) -> None:
    """潍坊 第四篇第十九条: a school under 98% is flagged; 永吉 sets no floor."""
    west = world.orgs["west"]
    west.policy = "weifang"
    west.save()
    # A teacher hired this year (师范类): 第十三条 checks her hire year, 12 credits; she has 2.
    will = world.teachers["will"]
    will.hired_year, will.normal_graduate = 2026, True
    will.save(update_fields=["hired_year", "normal_graduate"])
    world.record("will", status=Status.SCHOOL_APPROVED, hours=Decimal(2))
    assert TeacherResult.objects.get(teacher=will).year_passed is False
    html = client_for(world, "cody").get(f"/dashboard/org/{west.pk}/").content.decode()
    assert "本年达标率 0.0%，低于 98%（潍坊市规定第四篇第十九条）" in html and "1 所学校低于政策规定的学分合格率" in html
    school = client_for(world, "wes").get(f"/dashboard/org/{world.orgs['west-1'].pk}/").content.decode()
    assert "本校本年达标率 0.0%，低于 98%" in school
    world.record("alice", status=Status.SCHOOL_APPROVED, hours=Decimal(2))
    east = client_for(world, "carol").get(f"/dashboard/org/{world.orgs['east'].pk}/").content.decode()
    assert "低于政策要求" not in east and "floor-flag" not in east


HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize(("who", "path"), [
    (None, "/login/"), ("audrey", "/audit/"), ("bob", "/review/"), ("carol", "/spot-checks/"),
    ("bob", "/school-credits/"), ("alice", "/account/password/"), ("sam", "/manage/"), ("sam", "/manage/users/"),
    ("ivan", "/imports/"), ("carol", "/account/otp/"), ("sam", "/account/locks/"), ("carol", "/spot-checks/"),
])
def test_english_mode_on_the_page(world: World, who: str | None, path: str) -> None:
    """Item 7: a page offered in English says its UI in English (the login page
    and the audit log were Chinese whatever the language)."""
    c = client_for(world, who) if who else Client()
    c.post("/i18n/setlang/", {"language": "en", "next": "/"})
    html = c.get(path).content.decode()
    heading = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert heading is not None
    assert not HAN.search(re.sub(r"<small>.*?</small>", "", heading.group(1))), heading.group(1)
    labels = re.findall(r"<(?:button|th)[^>]*>([^<]+)<", html)
    assert labels and not [t for t in labels if HAN.search(t) and t.strip() not in ("简体中文",)], labels


def test_no_exception_class_name_reaches_the_user(world: World) -> None:
    """Item 5: a broken spreadsheet said “无法打开 Excel 文件（BadZipFile）”."""
    from xuefen.web.services import imports

    batch = imports.validate_roster(ledger.Actor(world.users["ivan"]), world.orgs["inst"], "名册.xlsx",
                                    b"PK\x03\x04 not really a zip")
    messages = " ".join(e["message"] for e in batch.errors)
    assert "无法打开 Excel 文件" in messages
    assert not re.search(r"[A-Z][a-z]+(Error|Exception|File)\b", messages), messages


def test_import_times_are_in_asia_shanghai(world: World) -> None:
    """Item 5: the duplicate-upload message printed the batch's UTC time."""
    import datetime as dt

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from xuefen.web.models import ImportBatch
    from xuefen.web.services import imports

    data = "教师编号,记录编号,登记年度,培训项目名称,形式,级别,学时,考核结果\nT0001,1,2026,市级培训,集中,市级,24,合格\n".encode()
    batch = imports.validate_roster(ledger.Actor(world.users["ivan"]), world.orgs["inst"], "a.csv", data)
    imports.commit_batch(ledger.Actor(world.users["ivan"]), batch)
    late = dt.datetime(2026, 12, 3, 20, 30, tzinfo=dt.UTC)  # 04:30 on the 4th in 上海
    ImportBatch.objects.filter(pk=batch.pk).update(created_at=late)
    response = client_for(world, "ivan").post("/imports/", {"org": world.orgs["inst"].pk,
                                                            "file": SimpleUploadedFile("b.csv", data)}, follow=True)
    said = " ".join(str(m) for m in response.context["messages"])
    local = timezone.localtime(late).strftime("%Y-%m-%d %H:%M")
    assert local == "2026-12-04 04:30" and local in said, said


def test_spot_check_and_correction_through_the_api(world: World) -> None:
    for name in ("alice", "anna"):
        world.record(name, status=Status.SCHOOL_APPROVED)
    carol = client_for(world, "carol")
    drawn = carol.post("/api/spot-checks/", {"size": 2, "seed": 11, "year": "2026"}, content_type="application/json")
    assert drawn.status_code == 201 and len(drawn.json()["records"]) == 2
    item = drawn.json()["records"][0]
    answer = carol.post(f"/api/spot-check-items/{item['item']}/", {"result": "failed", "note": "无此培训", "revoke": True},
                        content_type="application/json")
    assert answer.status_code == 200 and Record.objects.get(pk=item["record"]).status == Status.REVOKED
    assert client_for(world, "cody").post(f"/api/spot-check-items/{item['item']}/", {"result": "passed"},
                                          content_type="application/json").status_code == 404
    r = world.record("alice", status=Status.SCHOOL_APPROVED, hours=Decimal(24))
    fixed = carol.post(f"/api/records/{r.pk}/correct/", {"changes": {"hours": "12"}, "comment": "按证书更正"},
                       content_type="application/json")
    assert fixed.status_code == 200 and fixed.json()["credits"] == "12"
