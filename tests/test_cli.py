"""The command line as a user meets it: exit codes, output shapes, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from xuefen.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "yongji-teacher.json"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_policies_lists_the_shipped_policies(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policies")
    assert code == 0
    assert "yongji" in out and "永吉县" in out


def test_evaluate_json_has_the_stable_keys_and_exact_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "evaluate", "--policy", "yongji", str(EXAMPLE), "--as-of", "2022-12-31",
                       "--format", "json")
    assert code == 0
    data = json.loads(out, parse_float=Decimal)
    assert {"policy", "teacher", "passed", "total", "categories", "years", "records", "shortfalls"} <= set(data)
    assert data["passed"] is True
    assert data["total"] == Decimal("327.36")
    assert "327.36" in out and "327.360" not in out
    assert set(data["categories"]["集中研修"]) == {"earned", "counted", "required", "shortfall"}
    assert set(data["years"]["2020"]) == {"passed", "total", "categories", "shortfall"}
    assert [r["id"] for r in data["records"]][:3] == ["2018-01", "2018-02", "2018-03"]
    assert set(data["records"][0]) >= {"id", "credits", "category", "explanation"}


def test_evaluate_exit_code_is_1_when_the_teacher_does_not_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "evaluate", "--policy", "yongji", str(EXAMPLE), "--as-of", "2022-12-31",
                       "--format", "json", "--option", "partial_cycle=full")
    assert code == 0  # options change nothing for this teacher
    code, out, _ = run(capsys, "evaluate", "--policy", "yongji", str(ROOT / "examples" / "teachers.csv"),
                       "--as-of", "2022-12-31", "--format", "json")
    assert code == 1
    data = json.loads(out, parse_float=Decimal)
    assert [d["teacher"]["id"] for d in data] == ["YJ-0002", "YJ-0003", "YJ-0004"]
    shortfall = data[0]["shortfalls"][0]
    assert set(shortfall) >= {"scope", "year", "category", "rule", "missing", "cite"}


def test_bad_input_exits_2_with_file_row_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("教师编号,记录编号,登记年度,学时,形式\nT1,r1,2022,二十,集中\nT1,r2,二〇二二,8,飞行\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "xuefen", "evaluate", "--policy", "yongji", str(bad)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "文件 bad.csv 第2行 “学时”" in proc.stderr
    assert "文件 bad.csv 第3行 “登记年度”" in proc.stderr
    assert "文件 bad.csv 第3行 “形式”" in proc.stderr


def test_unknown_policy_and_date_outside_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "evaluate", "--policy", "nowhere", str(EXAMPLE))
    assert code == 2 and "nowhere" in err
    code, _, err = run(capsys, "evaluate", "--policy", "yongji", str(EXAMPLE), "--as-of", "2017-06-01")
    assert code == 2 and "有效期" in err
    code, _, err = run(capsys, "evaluate", "--policy", "yongji", str(EXAMPLE), "--option", "nope=1")
    assert code == 2 and "没有选项" in err


def test_jurisdiction_code_picks_the_version_in_force(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "evaluate", "--policy", "jilin-yongji", str(EXAMPLE), "--as-of", "2022-12-31",
                       "--format", "json")
    assert code == 0
    assert json.loads(out)["policy"]["id"] == "yongji"


def test_explain_shows_conversions_and_rules_that_did_not_apply(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--policy", "yongji", str(EXAMPLE), "--as-of", "2022-12-31")
    assert code == 0
    assert "2018年 2018年永吉县小学数学骨干教师集中培训 县级集中培训（县域内），系数1.0：24学时 × 1 = 24学分" in out
    assert "（永吉县方案·学时与学分转换）" in out
    assert "○ 〔未适用〕“高中、特殊教育学校教师集中研修不足部分" in out
    assert "选项“产假/哺乳期年度对五年周期要求的影响”" in out


def test_records_in_the_seeds_words_and_a_missing_fact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """朝阳 附件3 第八条: a sub-type written as the category counts at its own
    rate (第十条 自主选修 20学时1学分); a record without the hours its rate
    needs is named in the explanation and in the plan, with the fact to add."""
    doc = {"teacher": {"id": "T1", "stage": "小学"},
           "records": [{"id": "e1", "year": 2018, "category": "专业选修", "result": "合格"},
                       {"id": "e2", "year": 2018, "category": "自主选修", "hours": 40}]}
    path = tmp_path / "teacher.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    _, out, _ = run(capsys, "evaluate", "--policy", "chaoyang-2016", str(path), "--as-of", "2019-12-31",
                       "--format", "json")
    data = json.loads(out, parse_float=Decimal)
    credits = {r["id"]: r["credits"] for r in data["records"]}
    assert credits == {"e1": Decimal("0"), "e2": Decimal("2")}
    _, out, _ = run(capsys, "explain", "--policy", "chaoyang-2016", str(path), "--as-of", "2019-12-31")
    assert "缺少学时，无法换算" in out and "按本政策的说法读作选修·自主选修" in out
    _, out, _ = run(capsys, "plan", "--policy", "chaoyang-2016", str(path), "--as-of", "2019-12-31", "--format", "json")
    assert json.loads(out)["incomplete"] == [{"record": "e1", "year": 2018, "missing": "学时"}]
    _, out, _ = run(capsys, "plan", "--policy", "chaoyang-2016", str(path), "--as-of", "2019-12-31")
    assert "记录 e1（2018年）缺少学时：补填后才能计算学分" in out


def test_evaluate_shows_each_sub_type_as_a_theme_line_with_its_cap(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """朝阳 附件3 第八条: 市级教科研活动 counts at 20学时1.5学分 (第十一条) and at most
    3 credits a cycle; the report's theme line shows the 6 earned, the 3 kept
    and the cap's cut, and the JSON gives the same under "themes"."""
    doc = {"teacher": {"id": "T1", "stage": "小学"},
           "records": [{"id": "e1", "year": 2018, "category": "专业选修", "hours": 30, "result": "合格"},
                       {"id": "e4", "year": 2019, "category": "市级教科研活动", "hours": 20},
                       {"id": "e5", "year": 2019, "category": "市级教科研活动", "hours": 60}]}
    path = tmp_path / "teacher.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    _, out, _ = run(capsys, "evaluate", "--policy", "chaoyang-2016", str(path), "--as-of", "2020-12-31",
                    "--format", "text")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ·")}
    assert rows["·市级教科研活动"] == ["6", "3", "—", "—"]
    assert rows["·专业选修与专题选修"] == ["3", "3", "5", "2"]  # 第八条: the two together at least 5
    assert "本周期上限 3学分，封顶扣除 3学分（朝阳区十三五培训实施意见·附件3第八条）" in out
    assert "·自主选修" not in out  # nothing in it, no rule on it
    _, out, _ = run(capsys, "evaluate", "--policy", "chaoyang-2016", str(path), "--as-of", "2020-12-31",
                    "--format", "json")
    data = json.loads(out, parse_float=Decimal)
    city = data["themes"]["选修"]["市级教科研活动"]
    assert (city["earned"], city["counted"]) == (Decimal("6"), Decimal("3"))
    assert [(c["rule"], c["max"], c["cut"]) for c in city["caps"]] == [("cap-city-research", 3, 3)]
    assert data["categories"]["选修"] == {"earned": Decimal("9"), "counted": Decimal("6"),
                                         "required": Decimal("10"), "shortfall": Decimal("4")}


def test_a_category_the_policy_does_not_know_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "roster.csv"
    path.write_text("教师编号,姓名,记录编号,登记年度,培训项目名称,学分类别,学时\nT1,张三,r1,2018,项目,选秀,20\n",
                    encoding="utf-8")
    code, _, err = run(capsys, "evaluate", "--policy", "chaoyang-2016", str(path), "--as-of", "2020-12-31")
    assert code == 2
    assert "roster.csv 第2行 “学分类别”：学分类别“选秀”不属于朝阳区十三五培训实施意见（可用：公共必修" in err


def test_plan_converts_the_shortfall_into_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    doc["records"] = [r for r in doc["records"] if r["year"] < 2022]
    path = tmp_path / "teacher.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    code, out, _ = run(capsys, "plan", "--policy", "yongji", str(path), "--as-of", "2022-06-30", "--format", "json")
    assert code == 1
    data = json.loads(out, parse_float=Decimal)
    need = next(n for n in data["needs"] if n["scope"] == "year" and n["category"] == "集中研修")
    assert need["missing"] == Decimal("24")
    county = next(w for w in need["ways"] if w["rule"] == "conv-county-central")
    assert county["hours"] == Decimal("24")  # coefficient 1.0
    outside = next(w for w in need["ways"] if w["rule"] == "conv-upper-outside")
    assert outside["whole_hours"] == 19  # 24 / 1.3 = 18.46 -> 19 hours
    assert all(n["year"] in (None, 2022) for n in data["needs"])


def test_policy_show_cites_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "show", "yongji")
    assert code == 0
    assert out.count("出处：") >= out.count("  [")


def test_template_and_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "template", "-o", str(tmp_path / "t.xlsx"))
    assert code == 0 and (tmp_path / "t.xlsx").stat().st_size > 0
    code, _, _ = run(capsys, "schema", "-o", str(tmp_path / "s.json"))
    assert code == 0
    assert json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))["required"] == ["teacher", "records"]


def test_batch_output_equals_the_per_teacher_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:

    csv = str(ROOT / "examples" / "teachers.csv")
    code, out, _ = run(capsys, "evaluate", "--policy", "yongji", csv, "--as-of", "2022-12-31", "-o",
                       str(tmp_path / "r.parquet"))
    assert code == 1 and "3 名教师" in out
    batch = {r["teacher_id"]: r for r in pl.read_parquet(tmp_path / "r.parquet").to_dicts()}
    code, out, _ = run(capsys, "evaluate", "--policy", "yongji", csv, "--as-of", "2022-12-31", "--format", "json")
    for doc in json.loads(out, parse_float=Decimal):
        row = batch[doc["teacher"]["id"]]
        assert Decimal(row["total_milli"]) / 1000 == doc["total"]
        assert row["passed"] == doc["passed"]


def test_parquet_population_writes_teachers_and_unit_rates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.generate import generate

    src = generate(80, 12, "yongji", 2022, seed=2, out_path=tmp_path / "p.parquet", chunk_teachers=40)
    code, out, _ = run(capsys, "evaluate", "--policy", "yongji", str(src), "--as-of", "2022-12-31", "-o",
                       str(tmp_path / "r.parquet"))
    teachers = pl.read_parquet(tmp_path / "r.parquet")
    units = pl.read_parquet(tmp_path / "r-units.parquet")
    assert teachers.height == 80
    assert code == (0 if teachers["passed"].all() else 1)
    city = units.filter(pl.col("level") == "city").row(0, named=True)
    assert (city["teachers"], city["passed"]) == (80, int(teachers["passed"].sum()))
    assert f"{city['passed']}/80" in out


def test_bench_passes_every_argument_to_the_benchmark() -> None:
    done = subprocess.run([sys.executable, "-m", "xuefen", "bench", "--help"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0
    assert "--sizes" in done.stdout and "--write-doc" in done.stdout
