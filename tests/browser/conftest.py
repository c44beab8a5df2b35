"""Browser journeys: Chromium driven by Playwright against pytest-django's
live server, with the named people of tests/web/conftest.py.

Skipped when /usr/bin/chromium is missing.  Screenshots go to
tests/browser/screenshots/ (not committed) so a person can look at them."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.web.conftest import PASSWORD, World, _media, world  # noqa: F401  (fixtures reused)

from xuefen.web.models import Status

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots"



def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs Chromium at /usr/bin/chromium")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module.  Playwright's sync API keeps an event loop
    running in this thread, beside which Django's ORM (used by the fixtures
    and assertions) refuses to run unless DJANGO_ALLOW_ASYNC_UNSAFE is set —
    set only while the browser is open, so it never leaks into other tests
    (``check --deploy`` warns about it)."""
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=str(CHROMIUM),
                                  args=["--no-sandbox", "--disable-background-networking"])
            yield b
            b.close()


class Session:
    """One person's browser context, logged in through the login page."""

    def __init__(self, browser: Any, base: str, width: int = 1280, height: int = 900, lang: str = "zh-CN") -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": height}, locale=lang,
                                           extra_http_headers={"Accept-Language": lang})
        self.page = self.context.new_page()

    def login(self, name: str) -> Session:
        self.page.goto(self.base + "/login/")
        self.page.fill("input[name=username]", name)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state()
        return self

    def goto(self, path: str) -> Any:
        self.page.goto(self.base + path)
        return self.page

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def sessions(browser: Any, live_server: Any) -> Iterator[Any]:
    opened: list[Session] = []

    def open_as(name: str, width: int = 1280, height: int = 900, lang: str = "zh-CN") -> Session:
        s = Session(browser, live_server.url, width, height, lang).login(name)
        opened.append(s)
        return s

    yield open_as
    for s in opened:
        s.close()


@pytest.fixture
def seeded(world: World) -> World:  # noqa: F811
    """alice has two certified years and some of this year under review."""
    for year in (2024, 2025):
        world.record("alice", Status.CERTIFIED, year=year, title=f"{year}年县级骨干教师集中培训", hours=Decimal(30))
        world.record("alice", Status.CERTIFIED, year=year, title=f"{year}年国培计划网络研修", form="网络",
                     level="国家级", program="国培计划", hours=Decimal(40))
        world.record("alice", Status.CERTIFIED, year=year, title=f"{year}年校本研修", form="校本", level="校级",
                     hours=Decimal(70), result="")
    world.record("alice", Status.SCHOOL_APPROVED, title="2026年校本研修：课例研究", form="校本", level="校级",
                 hours=Decimal(30), result="")
    world.record("alice", Status.RETURNED, title="2026年暑期读书活动", hours=Decimal(8),
                 status_reason="请上传盖章的结业证书")
    world.record("anna", Status.CERTIFIED, year=2025, title="2025年县级集中培训", hours=Decimal(20))
    world.record("ella", Status.CERTIFIED, year=2026, title="2026年县级集中培训", hours=Decimal(30))
    return world
