"""The Parquet driver (``xuefen.batch.parquet``): split over worker processes,
read in batches, cut at teacher boundaries — the result must not depend on
any of it.  Files are written with row groups that cut teachers in two, so
teachers straddle reads, batches and the ranges of different workers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from benchmarks.generate import generate
from xuefen.batch import evaluate_frame
from xuefen.batch.parquet import evaluate_parquet
from xuefen.policy.loader import default_registry

CASES = [("yongji", 2022), ("shandong", 2028)]


def _ragged_copy(src: Path, dst: Path, rows_per_group: int) -> None:
    """The same rows, re-written with row groups that ignore teacher boundaries."""
    table = pq.read_table(src)
    pq.write_table(table, dst, row_group_size=rows_per_group, store_decimal_as_integer=True)


def _key(df: pl.DataFrame) -> pl.DataFrame:
    cols = ["teacher_id", "passed", "status", "total_milli", *sorted(c for c in df.columns if c.startswith("cat:"))]
    return df.select(cols).sort("teacher_id")


@pytest.mark.parametrize(("policy_id", "year"), CASES)
def test_split_reads_and_workers_do_not_change_the_result(tmp_path: Path, policy_id: str, year: int) -> None:
    src = generate(240, 23, policy_id, year, seed=3, out_path=tmp_path / "p.parquet", chunk_teachers=100)
    ragged = tmp_path / "ragged.parquet"
    _ragged_copy(src, ragged, rows_per_group=997)  # 23 rows a teacher: nearly every group cuts one in two
    as_of = dt.date(year, 12, 31)
    reference = evaluate_frame(default_registry().get(policy_id), pl.read_parquet(src), as_of)
    assert reference.columnar_chunks >= 1
    expected = _key(reference.teachers)
    assert expected.height == 240
    runs = [
        evaluate_parquet(policy_id, src, as_of, workers=1),
        evaluate_parquet(policy_id, ragged, as_of, workers=1, batch_rows=100, read_rows=300),
        evaluate_parquet(policy_id, ragged, as_of, workers=2, batch_rows=100, read_rows=300),
        evaluate_parquet(policy_id, ragged, as_of, workers=3, batch_rows=50, read_rows=997),
    ]
    for got in runs:
        assert got.height == 240  # every teacher exactly once
        assert _key(got).equals(expected)


@pytest.mark.parametrize("workers", [2, 6])
def test_a_teacher_longer_than_a_range(tmp_path: Path, workers: int) -> None:
    """Row groups of 5 rows and teachers of 23: with six workers some ranges
    lie wholly inside one teacher, who must still be evaluated once, whole."""
    src = generate(3, 23, "shandong", 2028, seed=5, out_path=tmp_path / "p.parquet", chunk_teachers=3)
    tiny = tmp_path / "tiny.parquet"
    _ragged_copy(src, tiny, rows_per_group=5)
    as_of = dt.date(2028, 12, 31)
    expected = _key(evaluate_frame(default_registry().get("shandong"), pl.read_parquet(src), as_of).teachers)
    got = evaluate_parquet("shandong", tiny, as_of, workers=workers, batch_rows=4, read_rows=5)
    assert got.height == 3
    assert _key(got).equals(expected)


def test_output_file_and_worker_errors(tmp_path: Path) -> None:
    src = generate(60, 10, "yongji", 2022, seed=4, out_path=tmp_path / "p.parquet", chunk_teachers=20)
    out = tmp_path / "result.parquet"
    evaluate_parquet("yongji", src, dt.date(2022, 12, 31), out, workers=2)
    assert pl.read_parquet(out).height == 60
    with pytest.raises(RuntimeError, match="工作进程失败"):
        evaluate_parquet("no-such-policy", src, dt.date(2022, 12, 31), workers=2)


@pytest.mark.parametrize(("policy_id", "year"), CASES)
def test_generated_province_equals_the_per_teacher_engine(tmp_path: Path, policy_id: str, year: int) -> None:
    """The benchmark's data, small: the Parquet path on two workers against the
    engine, teacher by teacher, each row parsed as a file reader would."""
    from benchmarks.generate import iter_parsed
    from xuefen.engine.evaluate import Evaluator

    src = generate(150, 40, policy_id, year, seed=9, out_path=tmp_path / "p.parquet", chunk_teachers=50)
    as_of = dt.date(year, 12, 31)
    got = {r["teacher_id"]: r for r in evaluate_parquet(policy_id, src, as_of, workers=2).to_dicts()}
    ev = Evaluator(default_registry().get(policy_id))
    seen = 0
    for teacher, records, _ in iter_parsed(src):
        e = ev.evaluate(teacher, records, as_of)
        row = got[teacher.id]
        assert (row["passed"], row["total_milli"]) == (e.passed, int(e.total * 1000)), teacher.id
        seen += 1
    assert seen == 150 == len(got)


def with_unknown_form(src: Path, row: int, out: Path, row_group_size: int) -> Path:
    """A copy of ``src`` whose record ``row`` (0-based) has a form no vocabulary knows."""
    import pyarrow as pa

    table = pq.read_table(src)
    forms = table.column("form").cast(pa.string()).to_pylist()
    forms[row] = "面授培训"
    table = table.set_column(table.schema.get_field_index("form"), "form",
                             pa.array(forms, pa.string()).dictionary_encode())
    pq.write_table(table, out, row_group_size=row_group_size, store_decimal_as_integer=True)
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_an_unknown_value_names_file_row_and_column(tmp_path: Path, workers: int) -> None:

    from xuefen.errors import InputError

    src = generate(60, 10, "yongji", 2022, seed=4, out_path=tmp_path / "p.parquet", chunk_teachers=20)
    bad_row = 437  # 0-based: the file's 438th record, in the second half
    bad = with_unknown_form(src, bad_row, tmp_path / "bad.parquet", 200)
    with pytest.raises(InputError) as caught:
        evaluate_parquet("yongji", bad, dt.date(2022, 12, 31), workers=workers)
    [problem] = caught.value.problems
    assert (problem.file, problem.row, problem.column) == ("bad.parquet", bad_row + 1, "form")
    assert "面授培训" in problem.message


@pytest.mark.parametrize("workers", [1, 2])
def test_an_unknown_teacher_fact_names_her_first_row(tmp_path: Path, workers: int) -> None:
    """A teacher's facts repeat on each of her rows; a value outside the
    vocabulary is reported at her first row, with the column."""
    import pyarrow as pa

    from xuefen.errors import InputError

    src = generate(60, 10, "yongji", 2022, seed=4, out_path=tmp_path / "p.parquet", chunk_teachers=20)
    table = pq.read_table(src)
    ids = table.column("teacher_id").to_pylist()
    victim = ids[433]
    first = ids.index(victim)
    for column in ("stage", "post"):
        values = table.column(column).cast(pa.string()).to_pylist()
        values = [("不存在的取值" if t == victim else v) for t, v in zip(ids, values, strict=True)]
        bad_table = table.set_column(table.schema.get_field_index(column), column,
                                     pa.array(values, pa.string()).dictionary_encode())
        bad = tmp_path / f"bad-{column}.parquet"
        pq.write_table(bad_table, bad, row_group_size=200, store_decimal_as_integer=True)
        with pytest.raises(InputError) as caught:
            evaluate_parquet("yongji", bad, dt.date(2022, 12, 31), workers=workers)
        [problem] = caught.value.problems
        assert (problem.file, problem.row, problem.column) == (f"bad-{column}.parquet", first + 1, column)
        assert "不存在的取值" in problem.message
