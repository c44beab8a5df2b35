"""Journey: the district office uploads a teacher file with bad rows, sees
each problem by row and column, fixes the file, confirms; a new teacher is
on the platform and a moved teacher keeps her records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.web.conftest import World

from xuefen import idnumber
from xuefen.web.models import ImportBatch, Teacher

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = "教师编号,身份证号,姓名,学校,学段,岗位,首次任教年份,假期\n"
NEW_ID = idnumber.make("220221", "19920303", 55)


def _upload(page: Any, path: Path) -> None:
    page.select_option("#import-kind", "teachers")
    page.set_input_files("input[name=file]", str(path))
    page.click("button:has-text('上传并校验')")
    page.wait_for_load_state()


def test_district_imports_teachers_with_bad_rows_then_fixed(world: World, sessions: Any, tmp_path: Path) -> None:
    carol = sessions("carol")
    page = carol.goto("/imports/")
    bad = tmp_path / "教师信息.csv"
    bad.write_text(HEADER + f"T0100,{NEW_ID},新老师,东区第二中学,初中,专任教师,2021,\n"
                            "T0101,,没有身份证,东区第二中学,,,,\n"
                            "T0002,,,东区第二中学,,,,2024-产假\n", encoding="utf-8")
    _upload(page, bad)
    carol.shot("m1-teacher-import-errors")
    text = page.content()
    assert "第3行" in text and "第4行" in text and "新增教师须填写身份证号" in text and "年份:类型" in text
    assert page.locator("button:has-text('确认导入')").count() == 0
    assert not Teacher.objects.filter(teacher_no="T0100").exists()

    good = tmp_path / "教师信息-修改.csv"
    good.write_text(HEADER + f"T0100,{NEW_ID},新老师,东区第二中学,初中,专任教师,2021,\n"
                             "T0002,,,东区第二中学,,,,2024:产假\n", encoding="utf-8")
    page = carol.goto("/imports/")
    _upload(page, good)
    page.click("button:has-text('确认导入')")
    page.wait_for_load_state()
    carol.shot("m2-teacher-import-done")
    assert "已新增或更新 2 名教师" in page.content()
    assert Teacher.objects.get(teacher_no="T0100").school == world.orgs["east-2"]
    anna = Teacher.objects.get(teacher_no="T0002")
    assert anna.school == world.orgs["east-2"] and anna.leaves == [{"year": 2024, "kind": "产假", "approved": True}]
    assert ImportBatch.objects.filter(kind="teachers", state="done").count() == 1
