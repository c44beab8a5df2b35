from __future__ import annotations

from pathlib import Path

import pytest

from xuefen.policy.loader import Registry, default_policy_dir, default_registry


@pytest.fixture(scope="session")
def registry() -> Registry:
    return default_registry()


@pytest.fixture(scope="session")
def policy_dir() -> Path:
    return default_policy_dir()
