"""Journeys through the platform in a real browser:

(a) a teacher declares with a PDF → the school officer approves → the
    district audits → the city certifies → the teacher sees her credits;
(b) officers drill down from the chart to one teacher;
(c) the teacher home at phone size (390 px), in Chinese and in English.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.web.conftest import World

from xuefen.web.models import Record, Status, TeacherResult

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TITLE = "2026年县级班主任专题培训"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def approve_in_queue(session: Any, title: str, action: str) -> None:
    page = session.goto("/review/")
    item = page.locator("li.q-item", has_text=title)
    item.locator(f"button[data-action={action}]").click()
    page.wait_for_load_state()
    assert page.locator(".messages li.success").count() == 1


def test_declare_review_chain_and_see_credits(seeded: World, sessions: Any) -> None:
    alice = sessions("alice", width=390, height=844)
    page = alice.page
    before = page.locator("#cycle-total").inner_text()
    page.click("text=申报学分")
    page.fill("input[name=year]", "2026")
    page.fill("input[name=title]", TITLE)
    page.select_option("select[name=form]", "集中")
    page.select_option("select[name=level]", "区县级")
    page.fill("input[name=hours]", "16")
    page.select_option("select[name=result]", "合格")
    page.set_input_files("input[name=evidence]",
                         files=[{"name": "结业证书.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    alice.shot("a1-declare-form")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "已提交申报" in page.locator(".messages").inner_text()
    assert TITLE in page.locator("#declarations").inner_text()
    assert page.locator("#cycle-total").inner_text() == before  # pending: not counted yet
    alice.shot("a2-declared")

    record = Record.objects.get(title=TITLE)
    assert record.status == Status.PENDING and record.evidence.count() == 1

    bob = sessions("bob")
    approve_in_queue(bob, TITLE, "school_approve")
    bob.shot("a3-school-approved")
    carol = sessions("carol")
    carol.goto(f"/records/{record.pk}/")
    assert "结业证书.pdf" in carol.page.inner_text("body")
    approve_in_queue(carol, TITLE, "district_approve")
    dora = sessions("dora")
    approve_in_queue(dora, TITLE, "certify")
    dora.shot("a4-city-certified")
    record.refresh_from_db()
    assert record.status == Status.CERTIFIED

    page.goto(alice.base + "/me/")
    result = TeacherResult.objects.get(teacher=seeded.teachers["alice"])
    assert page.locator("#cycle-total").inner_text() == _fmt(result.total)
    assert page.locator("#this-year-total").inner_text() == _fmt(result.year_total)
    assert page.locator("#cycle-total").inner_text() != before
    item = page.locator("li.record", has_text=TITLE)
    assert "已认定" in item.inner_text() and "16" in item.locator(".credits").inner_text()
    assert "已认定" in page.locator("#notifications").inner_text()
    alice.shot("a5-teacher-sees-credits")


def _fmt(value: Any) -> str:
    from xuefen.numbers import fmt

    return fmt(value)


def click_bar(page: Any, index: int) -> None:
    """Click the middle of unit ``index``'s first non-empty segment in the ECharts bar chart."""
    page.wait_for_selector("#chart[data-ready='1']")
    x, y = page.evaluate(
        """(i) => { const el = document.getElementById('chart'); const c = echarts.getInstanceByDom(el);
                   const s = c.getOption().series.find(s => s.data[i] > 0);
                   const p = c.convertToPixel({xAxisIndex: 0, yAxisIndex: 0}, [s.data[i] / 2, i]);
                   const r = el.getBoundingClientRect(); return [r.left + p[0], r.top + p[1]]; }""", index)
    with page.expect_navigation():
        page.mouse.click(x, y)


def test_city_drills_down_by_chart_to_one_teacher(seeded: World, sessions: Any) -> None:
    dora = sessions("dora")
    page = dora.goto("/dashboard/")
    dora.shot("b1-city")
    names = page.locator("#units tbody th a").all_inner_texts()
    click_bar(page, names.index("东区"))
    assert page.url.endswith(f"/dashboard/org/{seeded.orgs['east'].pk}/")
    dora.shot("b2-district")
    names = page.locator("#units tbody th a").all_inner_texts()
    click_bar(page, names.index("东区实验小学"))
    assert page.url.endswith(f"/dashboard/org/{seeded.orgs['east-1'].pk}/")
    dora.shot("b3-school")
    page.locator("#teachers a", has_text="alice").click()
    page.wait_for_load_state()
    assert re.search(r"/teachers/\d+/$", page.url)
    assert "alice" in page.locator("h1").inner_text()
    assert page.locator("#cycle-total").inner_text() == _fmt(TeacherResult.objects.get(
        teacher=seeded.teachers["alice"]).total)
    dora.shot("b4-teacher")


def test_district_officer_drills_down_by_table_link(seeded: World, sessions: Any) -> None:
    carol = sessions("carol", width=390, height=844)
    page = carol.goto("/dashboard/")
    assert page.locator("#kpi-in-progress").inner_text() != "0"
    carol.shot("b5-district-phone")
    page.locator("#units a", has_text="东区实验小学").click()
    page.wait_for_load_state()
    page.locator("#teachers a", has_text="alice").click()
    page.wait_for_load_state()
    assert seeded.teachers["alice"].id_number in page.locator("h1").inner_text()  # district sees full IDs
    carol.shot("b6-teacher-phone")


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_teacher_home_on_a_phone(seeded: World, sessions: Any, lang: str) -> None:
    alice = sessions("alice", width=390, height=844, lang=lang)
    page = alice.page
    page.goto(alice.base + "/me/")
    # Nothing sticks out sideways on a 390 px screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for section in ("#needs", "#requirements", "#returned", "#records"):
        assert page.locator(section).is_visible(), section
    heading = page.locator("#needs h2").inner_text()
    assert heading == ("我还需要" if lang == "zh-CN" else "What I still need")
    alice.shot(f"c-teacher-phone-{lang}")
    # The returned declaration can be fixed from the phone.
    page.locator("#returned a.button").click()
    page.wait_for_load_state()
    assert page.locator("input[name=title]").input_value() == "2026年暑期读书活动"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    alice.shot(f"c-resubmit-phone-{lang}")
