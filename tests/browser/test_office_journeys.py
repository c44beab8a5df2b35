"""Office journeys in a real browser (issue 16 "Done when"):

(a) the school officer approves 1,000 declarations in one action (the
    background job and its progress bar; without a broker it runs inline);
(b) the district draws a 抽检 sample, records a result and revokes the record;
(c) the school officer corrects a record (更正) and the old value stays in its history;
(d) the school officer enters 校本研修 credits for a list of teachers in one form;
(e) a teacher changes her password and logs in with the new one;
(f) the administrator changes a unit's policy option and the unit's verdicts change.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from tests.web.conftest import World

from xuefen.web.models import AuditEntry, BulkReview, Record, Source, SpotCheckItem, Status, TeacherResult
from xuefen.web.services.evaluation import price_records

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def top(session: Any, name: str) -> None:
    """The first screen only (a 50-row queue is too long to read as a whole)."""
    from tests.browser.conftest import SHOTS

    SHOTS.mkdir(exist_ok=True)
    session.page.screenshot(path=str(SHOTS / f"{name}.png"))


def _pending(world: World, n: int) -> list[int]:
    """``n`` pending declarations, half alice's and half anna's, written at once."""
    made = []
    for name in ("alice", "anna"):
        t = world.teachers[name]
        records = [Record(teacher=t, uid=f"B{i:04d}", year=2026, title=f"批量申报{i}", form="集中", level="区县级",
                          hours=Decimal(2), result="合格", source=Source.DECLARATION, status=Status.PENDING)
                   for i in range(n // 2)]
        price_records(t, records)
        made += Record.objects.bulk_create(records)
    return [r.pk for r in made]


def test_approve_a_thousand_declarations_in_one_action(world: World, sessions: Any) -> None:
    ids = _pending(world, 1000)
    bob = sessions("bob")
    page = bob.goto("/review/")
    assert "1000 条" in page.locator("h1").inner_text()
    assert page.locator("li.q-item").count() == 50  # one page of the queue
    top(bob, "o1-queue")
    page.check("#scope-filtered")
    started = time.perf_counter()
    page.click("button[name=action][value=approve]")
    page.wait_for_url("**/review/jobs/*/", timeout=300_000)
    page.wait_for_selector("text=已处理 1000 条记录", timeout=300_000)
    elapsed = time.perf_counter() - started
    bob.shot("o2-job-done")
    job = BulkReview.objects.get()
    assert job.state == BulkReview.State.DONE and job.done == 1000 and job.total == 1000
    assert Record.objects.filter(pk__in=ids, status=Status.SCHOOL_APPROVED).count() == 1000
    assert AuditEntry.objects.filter(action="school_approve").count() == 1000
    assert TeacherResult.objects.get(teacher=world.teachers["alice"]).year_total > 0
    print(f"1000 approvals in one action: {elapsed:.1f} s")


def test_spot_check_with_a_result(world: World, sessions: Any) -> None:
    for name in ("alice", "anna", "ella"):
        world.record(name, status=Status.SCHOOL_APPROVED, title=f"{name}的县级培训")
    carol = sessions("carol")
    page = carol.goto("/spot-checks/")
    page.fill("input[name=size]", "2")
    page.fill("input[name=seed]", "2026")
    carol.shot("o3-spot-form")
    page.click("button:has-text('抽取')")
    page.wait_for_url("**/spot-checks/*/")
    items = page.locator("li.q-item")
    assert items.count() == 2
    first = items.first
    first.locator("select[name=result]").select_option("failed")
    first.locator("input[name=note]").fill("培训机构无此人结业记录")
    first.locator("input[name=revoke]").check()
    first.locator("button:has-text('记录结果')").click()
    page.wait_for_load_state()
    assert "已记录核查结果" in page.locator(".messages").inner_text()
    carol.shot("o4-spot-result")
    item = SpotCheckItem.objects.filter(result=SpotCheckItem.Result.FAILED).get()
    assert Record.objects.get(pk=item.record_id).status == Status.REVOKED


def test_correct_a_record(world: World, sessions: Any) -> None:
    r = world.record("alice", title="区级班主任培训", hours=Decimal(24))
    bob = sessions("bob")
    page = bob.goto(f"/records/{r.pk}/")
    page.click("a:has-text('更正')")
    page.fill("input[name=hours]", "18")
    page.fill("input[name=comment]", "按结业证书更正学时")
    bob.shot("o5-correct-form")
    page.click("button:has-text('保存更正')")
    page.wait_for_url(f"**/records/{r.pk}/")
    assert page.locator("#record-credits").inner_text() == "18"
    history = page.locator("table.history").inner_text()
    assert "更正" in history and "24" in history and "18" in history and "按结业证书更正学时" in history
    bob.shot("o6-corrected")


def test_enter_school_credits_for_a_list_of_teachers(world: World, sessions: Any) -> None:
    bob = sessions("bob")
    page = bob.goto("/school-credits/")
    page.fill("input[name=title]", "2026年校本研修：课堂观察")
    page.fill("#fill-hours", "12")
    page.click("#fill-button")
    bob.shot("o7-school-credits")
    page.click("button:has-text('录入')")
    page.wait_for_load_state()
    assert "已为 2 名教师录入" in page.locator(".messages").inner_text()
    made = Record.objects.filter(source=Source.SCHOOL, title="2026年校本研修：课堂观察")
    assert sorted(r.teacher.name for r in made) == ["alice", "anna"]
    assert {r.credits for r in made} == {Decimal(6)}  # 永吉 校本研修 × 0.5


def test_password_change(world: World, sessions: Any) -> None:
    from tests.web.conftest import PASSWORD

    alice = sessions("alice")
    page = alice.goto("/")
    page.click("a:has-text('修改密码')")
    page.fill("input[name=old]", PASSWORD)
    page.fill("input[name=new]", "Spring-新密码-2026")
    page.fill("input[name=again]", "Spring-新密码-2026")
    alice.shot("o8-password")
    page.click("button:has-text('修改密码')")
    page.wait_for_load_state()
    # Every session of hers ends at a password change (issue 17): she logs in again.
    assert "密码已修改" in page.locator(".messages").inner_text()
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "Spring-新密码-2026")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith("/me/")


def test_administrator_changes_a_policy_option_and_verdicts_change(world: World, sessions: Any) -> None:
    alice = world.teachers["alice"]
    alice.hired_year = 2026
    alice.save(update_fields=["hired_year"])
    world.record("alice", status=Status.SCHOOL_APPROVED, hours=Decimal(24))
    before = TeacherResult.objects.get(teacher=alice).data
    sam = sessions("sam")
    page = sam.goto("/manage/")
    sam.shot("o9-org-tree")
    page.click("a:has-text('东区')")
    page.select_option("select[name=option-partial_cycle]", "full")
    sam.shot("o10-org-settings")
    page.click("button:has-text('保存并重新评估')")
    page.wait_for_load_state()
    assert "重新评估了该单位的" in page.locator(".messages").inner_text()
    after = TeacherResult.objects.get(teacher=alice).data
    assert before["options"].get("partial_cycle") != "full" and after["options"]["partial_cycle"] == "full"
    # Prorated for the two years in post (2026–2027 of 2023–2027): 集中研修 48 of 120; kept in full: 120.
    assert before["categories"]["集中研修"]["required"] == "48"
    assert after["categories"]["集中研修"]["required"] == "120"
    assert after["categories"]["集中研修"]["shortfall"] == "96"


def test_dashboard_rate_chart_floor_and_at_risk_list(world: World, sessions: Any) -> None:
    west = world.orgs["west"]
    west.policy = "weifang"
    west.save()
    will = world.teachers["will"]
    will.hired_year, will.normal_graduate = 2026, True
    will.save(update_fields=["hired_year", "normal_graduate"])
    world.record("will", status=Status.SCHOOL_APPROVED, hours=Decimal(2))
    for name in ("alice", "anna", "ella"):
        world.record(name, status=Status.SCHOOL_APPROVED, hours=Decimal(30))
    dora = sessions("dora")
    page = dora.goto(f"/dashboard/org/{west.pk}/")
    page.wait_for_selector("#rate-chart[data-ready='1']")
    assert "低于 98%" in page.locator("#units").inner_text()
    dora.shot("o11-dashboard-floor")
    page = dora.goto("/dashboard/")
    page.wait_for_selector("#rate-chart[data-ready='1']")
    dora.shot("o12-dashboard-city")
    page.click("a:has-text('全部（分页）')")
    page.wait_for_load_state()
    assert page.locator("#at-risk tbody tr").count() >= 1
    dora.shot("o13-at-risk")
