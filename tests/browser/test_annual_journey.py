"""Journeys: a school closes its year, the principal signs it off, a teacher
files an objection during the 公示, the officer answers and sends it, the
district confirms; the teacher downloads her certificate; its QR code leads
to the public check, which says 有效, then 已撤销 after a revocation; a forged
token is 404."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from tests.web.conftest import World
from tests.web.test_annual import YEAR, passing_year

from xuefen.web.models import AnnualClose, AuditEntry, Certificate, Record, Status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _click(page: Any, selector: str) -> None:
    page.click(selector)
    page.wait_for_load_state()


def _qr(pdf: Path) -> str:
    pdfium = pytest.importorskip("pypdfium2")
    zxingcpp = pytest.importorskip("zxingcpp")
    [code] = zxingcpp.read_barcodes(pdfium.PdfDocument(str(pdf))[0].render(scale=2).to_pil())
    return str(code.text)


def test_close_sign_publicity_objection_confirm_and_certificate(world: World, sessions: Any, tmp_path: Path) -> None:
    passing_year(world, "alice")
    world.record("anna", status=Status.CERTIFIED, year=YEAR, title="一次集中培训")
    school = world.orgs["east-1"]
    year_url = f"/annual/school/{school.pk}/{YEAR}/"

    bob = sessions("bob")
    page = bob.goto("/annual/")  # the officer is sent to her school's last full year
    page = bob.goto(year_url)
    assert "未登记" in page.inner_text("#close-state")
    _click(page, "#do-close")
    assert "待校长签发" in page.inner_text("#close-state")
    bob.shot("a1-closed")

    pat = sessions("pat")
    page = pat.goto(year_url)
    assert page.locator("#close-list tbody tr").count() == 2
    _click(page, "#do-sign")
    assert "公示中" in page.inner_text("#close-state")
    pat.shot("a2-signed-publicity")

    anna = sessions("anna")
    page = anna.goto(year_url)
    assert "anna" in page.inner_text("#close-list")
    page.fill("#objection-form textarea[name=reason]", "我的网络研修未计入")
    _click(page, "#objection-form button")
    assert "异议已提交" in page.content()
    anna.shot("a3-objection")

    page = bob.goto(year_url)
    _click(page, "#do-submit")  # refused: the 公示 has not ended
    assert "结束后方可报送" in page.content()
    # Time passes: the 公示 (5 working days from today) is over.
    AnnualClose.objects.filter(school=school, year=YEAR).update(publicity_end=dt.date.today() - dt.timedelta(days=1))
    page = bob.goto(year_url)
    _click(page, "#do-submit")
    assert "未答复" in page.content()
    AnnualClose.objects.filter(school=school, year=YEAR).update(publicity_end=dt.date.today())
    page = bob.goto(year_url)
    page.fill("#objections input[name=answer]", "该记录尚未经学校审核，不计入本年度")
    _click(page, "#objections button")
    AnnualClose.objects.filter(school=school, year=YEAR).update(publicity_end=dt.date.today() - dt.timedelta(days=1))
    page = bob.goto(year_url)
    _click(page, "#do-submit")
    assert "待区县确认" in page.inner_text("#close-state")

    carol = sessions("carol")
    page = carol.goto(f"/annual/?year={YEAR}")
    assert "待区县确认" in page.inner_text(f"#district-{world.orgs['east'].pk}")
    carol.shot("a4-district-table")
    page = carol.goto(year_url)
    _click(page, "#do-confirm")
    assert "已确认" in page.inner_text("#close-state")
    carol.shot("a5-confirmed")
    assert Certificate.objects.filter(teacher=world.teachers["alice"], kind="annual").count() == 1
    assert not Certificate.objects.filter(teacher=world.teachers["anna"]).exists()
    assert AuditEntry.objects.filter(action="objection_answer").count() == 1

    # the teacher downloads her certificate
    alice = sessions("alice")
    page = alice.goto("/me/certificates/")
    alice.shot("a6-my-certificates")
    with page.expect_download() as info:
        page.click("#certs a:has-text('下载 PDF')")
    pdf = tmp_path / "cert.pdf"
    info.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    url = _qr(pdf)
    assert "/verify/" in url

    # the QR code's page, without logging in: 有效
    visitor = alice.context.browser.new_context(locale="zh-CN")
    try:
        vpage = visitor.new_page()
        vpage.goto(url)
        assert vpage.inner_text("#verify-status") == "有效"
        assert vpage.inner_text("#verify-name") == "a****"
        shots = Path(__file__).parent / "screenshots"
        shots.mkdir(exist_ok=True)
        vpage.screenshot(path=str(shots / "a7-verify-valid.png"), full_page=True)
        # forged: one character of the token changed
        token = url.rstrip("/").rsplit("/", 1)[1]
        forged = url.replace(token, token[:5] + ("x" if token[5] != "x" else "y") + token[6:])
        assert vpage.goto(forged).status == 404
        # a counted record revoked (山东 第二十三条): 已撤销
        cert = Certificate.objects.get(teacher=world.teachers["alice"], kind="annual")
        page = carol.goto(f"/records/{cert.record_ids[0]}/")
        form = page.locator("form:has(button[data-action=revoke])")
        form.locator("input[name=comment]").fill("证明材料伪造")
        _click(page, "button[data-action=revoke]")
        assert Record.objects.get(pk=cert.record_ids[0]).status == Status.REVOKED
        vpage.goto(url)
        assert vpage.inner_text("#verify-status") == "已撤销"
        vpage.screenshot(path=str(shots / "a8-verify-revoked.png"), full_page=True)
    finally:
        visitor.close()
