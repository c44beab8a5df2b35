"""Account security in the browser: a user locked out sees how long to wait,
the administrator lifts the lock, a district officer binds the TOTP second
factor and logs in with it, a teacher whose password was reset must choose
her own first.  Screenshots: lockout, unlock, TOTP setup, password change."""

from __future__ import annotations

from typing import Any

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.browser.conftest import Session
from tests.web.conftest import PASSWORD, World

from xuefen.web.services import accounts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW = "Xuefen-2026-secure"


def _code(device: TOTPDevice, ahead: int = 0) -> str:
    """The code the phone shows now (``ahead`` = 1: in the next 30 s, which
    the device accepts too; a code already used is refused as a replay)."""
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift + ahead):06d}"


def _try(s: Session, username: str, password: str) -> Any:
    page = s.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def test_lockout_unlock_totp_and_forced_change(browser: Any, live_server: Any, world: World, settings: Any) -> None:
    anon = Session(browser, live_server.url)
    for _ in range(settings.LOGIN_MAX_FAILURES):
        page = _try(anon, "alice", "wrong")
    assert "分钟后再试" in page.locator(".error").inner_text()
    assert page.locator("[data-wait-minutes]").is_visible()
    anon.shot("security-lockout")
    page = _try(anon, "alice", PASSWORD)
    assert "/login/" in page.url  # still locked

    admin = Session(browser, live_server.url).login("sam")
    page = admin.goto("/account/locks/")
    assert "alice" in page.locator("table").inner_text()
    admin.shot("security-locks")
    page.click("button:has-text('解除锁定')")
    page.wait_for_load_state()
    assert "已解除" in page.locator(".messages").inner_text()
    page = _try(anon, "alice", PASSWORD)
    assert page.url.endswith("/me/")

    carol = Session(browser, live_server.url).login("carol")
    page = carol.goto("/account/otp/")
    assert page.locator("img.otp-qr").is_visible()
    carol.shot("security-totp-setup")
    device = TOTPDevice.objects.get(user=world.users["carol"], confirmed=False)
    page.fill("input[name=token]", _code(device))
    page.click("button:has-text('启用')")
    page.wait_for_load_state()
    assert "已启用" in page.locator(".messages").inner_text()
    fresh = Session(browser, live_server.url)
    page = _try(fresh, "carol", PASSWORD)
    assert page.locator("input[name=otp]").is_visible()
    device.refresh_from_db()
    device.throttle_reset()
    page.fill("input[name=password]", PASSWORD)  # on the page that asked for the code
    page.fill("input[name=otp]", _code(device, ahead=1))
    fresh.shot("security-totp-login")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login/" not in page.url

    temporary = accounts.reset_password(world.users["sam"], world.users["anna"])
    anna = Session(browser, live_server.url)
    page = _try(anna, "anna", temporary)
    assert page.url.endswith("/account/password/")
    anna.shot("security-password-forced")
    page.fill("input[name=old]", temporary)
    page.fill("input[name=new]", NEW)
    page.fill("input[name=again]", NEW)
    page.click("button:has-text('修改密码')")
    page.wait_for_load_state()
    page = _try(anna, "anna", NEW)
    assert page.url.endswith("/me/")
    for s in (anon, admin, carol, fresh, anna):
        s.close()
