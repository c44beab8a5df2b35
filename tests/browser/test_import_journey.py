"""Journey: a training institution uploads a course roster with errors, sees
every error row by row, fixes the file, re-uploads, confirms — and uploading
the same file again adds nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.web.conftest import World

from xuefen.web.models import Record, Source

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = "教师编号,姓名,记录编号,登记年度,培训项目名称,形式,级别,学时,考核结果\n"


def _roster(tmp_path: Path, name: str, rows: list[str]) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def _upload(page: Any, path: Path) -> None:
    page.set_input_files("input[name=file]", str(path))
    page.click("button:has-text('上传并校验')")
    page.wait_for_load_state()


def test_institution_imports_fixes_and_reimports(world: World, sessions: Any, tmp_path: Path) -> None:
    ivan = sessions("ivan")
    page = ivan.goto("/imports/")
    bad = _roster(tmp_path, "roster.csv", [
        "T0001,alice,C-01,2026,市级骨干教师研修,集中,市级,24,合格",
        "T9999,nobody,C-02,2026,市级骨干教师研修,集中,市级,24,合格",
        "T0002,anna,C-03,2026,市级骨干教师研修,飞行,市级,二十四,合格",
    ])
    _upload(page, bad)
    ivan.shot("i1-roster-errors")
    text = page.content()
    assert "T9999" in text or "第3行" in text
    assert "第4行" in text
    assert page.locator("button:has-text('确认导入')").count() == 0
    assert Record.objects.count() == 0

    good = _roster(tmp_path, "roster-fixed.csv", [
        "T0001,alice,C-01,2026,市级骨干教师研修,集中,市级,24,合格",
        "T0002,anna,C-03,2026,市级骨干教师研修,集中,市级,24,优秀",
    ])
    page = ivan.goto("/imports/")
    _upload(page, good)
    page.click("button:has-text('确认导入')")
    page.wait_for_load_state()
    ivan.shot("i2-roster-imported")
    assert Record.objects.filter(source=Source.INSTITUTION).count() == 2

    page = ivan.goto("/imports/")
    _upload(page, good)
    ivan.shot("i3-roster-again")
    assert Record.objects.filter(source=Source.INSTITUTION).count() == 2  # the same file adds nothing
