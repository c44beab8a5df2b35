"""Two officers act on the same record at the same moment (PostgreSQL: real
row locks between two connections).  Exactly one approval lands; the other is
refused, and the credits are counted once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections
from tests.web.conftest import World

from xuefen.web.models import AuditEntry, Record, Status, TeacherResult
from xuefen.web.services import ledger

pytestmark = pytest.mark.postgres


@pytest.fixture
def on_postgres(transactional_db: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-lock concurrency needs PostgreSQL (set DATABASE_URL)")


def _race(world: World, pk: int, who: list[str], action: str) -> list[str]:
    barrier = threading.Barrier(len(who))
    outcomes: list[str] = []
    lock = threading.Lock()

    def act(name: str) -> None:
        try:
            barrier.wait(timeout=10)
            ledger.transition(ledger.Actor(world.users[name]), pk, action)
            result = "ok"
        except ledger.Conflict:
            result = "conflict"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=act, args=(name,)) for name in who]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return sorted(outcomes)


def test_two_simultaneous_approvals_count_once(on_postgres: None, world: World) -> None:
    from django.contrib.auth.models import User

    from xuefen.web.models import Profile, Role

    twin = User.objects.create_user("bob2", password="a-long-test-password")
    Profile.objects.create(user=twin, role=Role.SCHOOL_OFFICER, org=world.orgs["east-1"])
    world.users["bob2"] = twin
    record = world.record("alice")
    outcomes = _race(world, record.pk, ["bob", "bob2"], "school_approve")
    assert outcomes == ["conflict", "ok"]
    record = Record.objects.get(pk=record.pk)
    assert record.status == Status.SCHOOL_APPROVED and record.version == 2
    assert AuditEntry.objects.filter(action="school_approve", object_id=str(record.pk)).count() == 1
    result = TeacherResult.objects.get(teacher=world.teachers["alice"])
    assert result.year_total == record.credits  # counted once


def test_approval_racing_revocation_leaves_a_consistent_record(on_postgres: None, world: World) -> None:
    record = world.record("alice", status=Status.SCHOOL_APPROVED)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def approve() -> None:
        try:
            barrier.wait(timeout=10)
            ledger.transition(ledger.Actor(world.users["carol"]), record.pk, "district_approve")
        except ledger.ServiceError:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def revoke() -> None:
        try:
            barrier.wait(timeout=10)
            ledger.revoke_record(ledger.Actor(world.users["carol"]), record.pk, "证书系伪造")
        except ledger.ServiceError:
            pass
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve), threading.Thread(target=revoke)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    record = Record.objects.get(pk=record.pk)
    assert record.status == Status.REVOKED  # revocation always wins, whichever came first
    result = TeacherResult.objects.get(teacher=world.teachers["alice"])
    assert result.year_total == 0
