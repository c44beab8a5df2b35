"""Property-based fuzzing of the REST API from its committed OpenAPI file
(docs/api/openapi.yaml) with Schemathesis (issue 17 item 5): for every
operation, generated requests — valid and malformed parameters and bodies —
sent through the Django application in process, as a district office (who
may act on most operations) and as a teacher.  No response may be a 5xx, and
every response must match the schema's description of it (status code
documented, body valid against its schema).

Bounded: ``FUZZ_EXAMPLES`` examples per operation and user (the default keeps
the drill to a minute or two here), no shrinking deadline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from tests.web.conftest import World

from xuefen.web.api import authentication as api_auth

ROOT = Path(__file__).resolve().parents[2]
FUZZ_EXAMPLES = int(os.environ.get("XUEFEN_FUZZ_EXAMPLES", "15"))

schema = schemathesis.openapi.from_path(ROOT / "docs/api/openapi.yaml")
schema.app = get_wsgi_application()


@pytest.fixture
def _keep_connection() -> Any:
    """Django closes the database connection at the end of each request; its
    own test client turns that off, and so must this in-process WSGI client,
    or the test's transaction (PostgreSQL) is closed under it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(world: World, _keep_connection: Any) -> dict[str, str]:
    world.record("alice")
    world.record("ella")
    world.record("anna", status="school_approved")
    return {who: api_auth.issue(world.users[who])[1] for who in ("carol", "alice")}


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_api_answers_as_its_schema_says(case: Any, tokens: dict[str, str]) -> None:
    for key in tokens.values():
        case.call_and_validate(headers={"Authorization": f"Token {key}"},
                               checks=[not_a_server_error, status_code_conformance, response_schema_conformance])
