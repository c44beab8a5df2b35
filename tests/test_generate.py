"""The synthetic province generator (benchmarks.generate)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from benchmarks.generate import SCHEMA, generate, iter_ledgers
from xuefen import vocab
from xuefen.errors import Problem
from xuefen.model import parse_record, parse_teacher


def where(key: str, message: str) -> Problem:
    return Problem(message, column=key)


@pytest.fixture(scope="module", params=["yongji", "shandong", "chaoyang-2016"])
def province(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    policy = request.param
    path = tmp_path_factory.mktemp("prov") / f"{policy}.parquet"
    # small chunks: several row groups
    generate(300, 40, policy, None, seed=5, out_path=path, chunk_teachers=120)
    return policy, path


def _digest(path: Path) -> str:
    # the table's content, not the file bytes (Parquet metadata names the writer version)
    table = pq.read_table(path)
    return hashlib.sha256(pl.from_arrow(table).write_csv().encode()).hexdigest()  # type: ignore[union-attr]


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = generate(150, 30, "yongji", 2022, seed=11, out_path=tmp_path / "a.parquet", chunk_teachers=64)
    b = generate(150, 30, "yongji", 2022, seed=11, out_path=tmp_path / "b.parquet", chunk_teachers=64)
    c = generate(150, 30, "yongji", 2022, seed=12, out_path=tmp_path / "c.parquet", chunk_teachers=64)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    # chunking changes the row groups, not the data
    d = generate(150, 30, "yongji", 2022, seed=11, out_path=tmp_path / "d.parquet", chunk_teachers=1000)
    assert _digest(a) == _digest(d)


def test_declared_schema_and_size(province: tuple[str, Path]) -> None:
    policy, path = province
    pf = pq.ParquetFile(path)
    assert pf.schema_arrow.remove_metadata().equals(SCHEMA)
    assert pf.metadata.num_rows == 300 * 40
    assert pf.metadata.num_row_groups == 3
    meta = pf.schema_arrow.metadata
    assert meta[b"xuefen.policy"] == policy.encode()
    assert "title" not in pf.schema_arrow.names


def test_sorted_by_teacher_year_record(province: tuple[str, Path]) -> None:
    _, path = province
    df = pl.read_parquet(path, columns=["teacher_id", "year", "record_id"])
    assert df.equals(df.sort("teacher_id", "year", "record_id", maintain_order=True))
    assert df.n_unique(["teacher_id", "record_id"]) == df.height
    assert df["teacher_id"].n_unique() == 300


def test_values_are_canonical(province: tuple[str, Path]) -> None:
    _, path = province
    df = pl.read_parquet(path)
    for column, field in (("stage", "stage"), ("post", "post"), ("level", "level"), ("form", "form"),
                          ("location", "location"), ("result", "result"), ("role", "role"),
                          ("achievement", "achievement"), ("program", "program")):
        values = set(df[column].drop_nulls().cast(pl.String).unique())
        assert values <= set(vocab.allowed(field)), column
    # teachers' own facts are constant over their rows
    per_teacher = df.group_by("teacher_id").agg(
        pl.col("stage", "post", "hired_year", "leaves", "school").n_unique())
    assert per_teacher.select(pl.exclude("teacher_id").max()).row(0) == (1, 1, 1, 1, 1)


def test_every_row_parses_through_the_interchange_model(province: tuple[str, Path]) -> None:
    _, path = province
    teachers = 0
    for t, rows in iter_ledgers(path, batch_rows=1000):  # batches split teachers
        teacher, problems = parse_teacher(t, where)
        assert not problems, problems
        assert teacher is not None and teacher.id == t["id"]
        for row in rows:
            record, problems = parse_record(row, where)
            assert not problems, (row, problems)
            assert record is not None
            if "hours" in row:
                assert record.hours == row["hours"]
        teachers += 1
    assert teachers == 300


def test_the_population_has_something_to_decide(tmp_path: Path) -> None:
    path = generate(2000, 60, "yongji", 2022, seed=3, out_path=tmp_path / "y.parquet")
    df = pl.read_parquet(path)
    t = df.group_by("teacher_id").agg(pl.col("hired_year", "transfer_in_year", "leaves").first())
    n = t.height
    assert 0.01 < t.filter(pl.col("hired_year") >= 2018).height / n < 0.06
    assert 0.005 < t.filter(pl.col("transfer_in_year") >= 2019).height / n < 0.05
    assert 0.02 < t.filter(pl.col("leaves").is_not_null()).height / n < 0.09
    results = df["result"].drop_nulls().cast(pl.String).value_counts(normalize=True)
    share = dict(zip(results["result"], results["proportion"], strict=True))
    assert share["合格"] > 0.8 and 0.05 < share["优秀"] < 0.15 and share["不合格"] < 0.05
    forms = set(df["form"].drop_nulls().cast(pl.String).unique())
    assert {"集中", "网络", "校本", "学区"} <= forms
    # as_of_year is the last year with records; the year before the cycle appears, nothing earlier
    assert df["year"].max() == 2022 and df["year"].min() == 2017
