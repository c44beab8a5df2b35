"""Every shipped policy loads, tiles time with its other versions, cites
articles that exist, and passes its own case file with full coverage."""

from __future__ import annotations

from pathlib import Path

import pytest

from xuefen.engine.cases import cases_path, coverage_gaps, load_cases, run_case
from xuefen.policy.citations import check_policy, seeds_dir
from xuefen.policy.loader import Registry, check_versions, default_policy_dir, load_directory

EXPECTED = {
    "beijing-2021",
    "chaoyang-2016",
    "chaoyang-private-2016",
    "chifeng",
    "shandong",
    "shandong-2009",
    "weifang",
    "suzhou",
    "yongji",
}
POLICY_IDS = sorted(p.stem for p in default_policy_dir().glob("*.yaml"))


def test_all_policy_files_load() -> None:
    registry = load_directory(default_policy_dir())
    assert set(registry.policies) == set(POLICY_IDS)


def test_the_nine_seed_policies_are_shipped(registry: Registry) -> None:
    assert set(registry.policies) == EXPECTED


def test_versions_of_a_jurisdiction_neither_overlap_nor_leave_gaps(registry: Registry) -> None:
    assert check_versions(registry.policies.values()) == []


@pytest.mark.skipif(not seeds_dir().exists(), reason="shared/seeds not beside the repository")
@pytest.mark.parametrize("policy_id", POLICY_IDS)
def test_every_cited_article_exists_in_its_seed_file(registry: Registry, policy_id: str) -> None:
    assert check_policy(registry.get(policy_id), seeds_dir()) == []


@pytest.mark.parametrize("policy_id", POLICY_IDS)
def test_policy_cases_pass_and_cover_every_rule(registry: Registry, policy_dir: Path, policy_id: str) -> None:
    path = cases_path(policy_dir, policy_id)
    assert path.exists(), f"{policy_id} 没有用例文件"
    declared, cases = load_cases(path)
    assert declared == policy_id
    policy = registry.get(policy_id)
    outcomes = [run_case(policy, case, path.name) for case in cases]
    failures = [f"第{o.case.line}行 {o.case.name}: {m}" for o in outcomes for m in o.mismatches]
    assert failures == []
    assert coverage_gaps(policy, outcomes) == []
