"""The ledger services: the review chain, returns, corrections, revocation,
declarations with evidence, spot checks — and who is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from tests.web.conftest import World

from xuefen.web.models import AuditEntry, Notification, Record, Status, TeacherResult
from xuefen.web.services import ledger

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def act(world: World, name: str) -> ledger.Actor:
    return ledger.Actor(world.users[name], "127.0.0.1")


def test_review_chain_school_district_city(world: World) -> None:
    r = world.record("alice")
    assert r.credits == Decimal("24")  # 24 h of county-level 集中 × 1.0 under yongji
    ledger.transition(act(world, "bob"), r.pk, "school_approve", r.version)
    ledger.transition(act(world, "carol"), r.pk, "district_approve")
    r = ledger.transition(act(world, "dora"), r.pk, "certify")
    assert r.status == Status.CERTIFIED
    actions = list(AuditEntry.objects.filter(object_id=str(r.pk)).values_list("action", flat=True))
    assert sorted(actions) == ["certify", "district_approve", "school_approve"]
    assert Notification.objects.filter(user=world.users["alice"]).count() == 3
    assert TeacherResult.objects.get(teacher=world.teachers["alice"]).year_total == Decimal("24")


@pytest.mark.parametrize(
    ("who", "action"),
    [("bert", "school_approve"), ("wes", "school_approve"), ("carol", "school_approve"), ("alice", "school_approve"),
     ("ivan", "school_approve"), ("audrey", "school_approve"), ("sam", "school_approve"), ("cody", "revoke"),
     ("bob", "revoke"), ("pat", "school_approve")],
)
def test_people_outside_the_chain_are_refused(world: World, who: str, action: str) -> None:
    r = world.record("alice")
    with pytest.raises(ledger.Denied):
        if action == "revoke":
            ledger.revoke_record(act(world, who), r.pk, "弄虚作假")
        else:
            ledger.transition(act(world, who), r.pk, action)
    assert Record.objects.get(pk=r.pk).status == Status.PENDING
    assert not AuditEntry.objects.filter(object_id=str(r.pk)).exists()


def test_stale_page_and_wrong_state_are_conflicts(world: World) -> None:
    r = world.record("alice")
    ledger.transition(act(world, "bob"), r.pk, "school_approve", r.version)
    with pytest.raises(ledger.Conflict):
        ledger.transition(act(world, "bob"), r.pk, "school_approve", r.version)  # the page she saw is stale
    with pytest.raises(ledger.Conflict):
        ledger.transition(act(world, "bob"), r.pk, "school_approve")  # already approved: cannot count twice
    with pytest.raises(ledger.Conflict):
        ledger.transition(act(world, "dora"), r.pk, "certify")  # the district has not audited it yet


def test_return_needs_a_comment_and_notifies(world: World) -> None:
    r = world.record("alice")
    with pytest.raises(ledger.ServiceError):
        ledger.return_record(act(world, "bob"), r.pk, "  ")
    r = ledger.return_record(act(world, "bob"), r.pk, "请补充结业证书")
    assert r.status == Status.RETURNED and r.status_reason == "请补充结业证书"
    assert Notification.objects.filter(user=world.users["alice"], message__contains="请补充结业证书").exists()


def test_correction_reprices_and_is_audited(world: World) -> None:
    r = world.record("alice")
    r = ledger.correct_record(act(world, "bob"), r.pk, {"hours": "20", "level": "省级", "location": "县域外"},
                              "学时与级别按结业证书更正")
    assert r.credits == Decimal("26")  # 20 h × 1.3
    entry = AuditEntry.objects.get(action="correct")
    assert entry.before is not None and entry.after is not None
    assert entry.before["hours"] == "24" and entry.after["hours"] == "20"


def test_revocation_keeps_the_record_and_recomputes_the_teacher(world: World) -> None:
    r = world.record("alice", status=Status.CERTIFIED)
    assert TeacherResult.objects.get(teacher=world.teachers["alice"]).year_total == Decimal("24")
    r = ledger.revoke_record(act(world, "carol"), r.pk, "结业证书系伪造")
    assert Record.objects.filter(pk=r.pk, status=Status.REVOKED, status_reason="结业证书系伪造").exists()
    assert TeacherResult.objects.get(teacher=world.teachers["alice"]).year_total == Decimal("0")


def test_declaration_checks_evidence_by_content(world: World) -> None:
    facts = {"year": "2026", "title": "市级骨干教师培训", "form": "集中培训", "level": "市级", "location": "县域外",
             "hours": "20", "result": "合格"}
    fake = SimpleUploadedFile("证书.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    with pytest.raises(ledger.ServiceError, match="不是 PDF"):
        ledger.declare_record(act(world, "alice"), world.teachers["alice"], facts, [fake])
    with pytest.raises(ledger.ServiceError, match="证明材料"):
        ledger.declare_record(act(world, "alice"), world.teachers["alice"], facts, [])
    with pytest.raises(ledger.Denied):
        ledger.declare_record(act(world, "anna"), world.teachers["alice"], facts,
                              [SimpleUploadedFile("a.pdf", PDF)])
    r = ledger.declare_record(act(world, "alice"), world.teachers["alice"], facts, [SimpleUploadedFile("a.pdf", PDF)])
    assert r.status == Status.PENDING and r.form == "集中" and r.credits == Decimal("26")
    ev = r.evidence.get()
    assert ev.content_type == "application/pdf" and len(ev.sha256) == 64


def test_bad_facts_are_refused_with_the_field_named(world: World) -> None:
    facts = {"year": "2026", "title": "x", "form": "飞行", "hours": "二十"}
    with pytest.raises(ledger.ServiceError) as err:
        ledger.declare_record(act(world, "alice"), world.teachers["alice"], facts, [SimpleUploadedFile("a.pdf", PDF)])
    assert "形式" in str(err.value) and "学时" in str(err.value)
    assert not Record.objects.exists()


def test_declaration_window(world: World) -> None:
    import datetime as dt

    world.orgs["east"].declaration_months = [3, 9]
    world.orgs["east"].save()
    facts = {"year": "2026", "title": "x", "form": "网络", "hours": "10"}
    with pytest.raises(ledger.ServiceError, match="申报期"):
        ledger.declare_record(act(world, "alice"), world.teachers["alice"], facts, [SimpleUploadedFile("a.pdf", PDF)],
                              today=dt.date(2026, 5, 1))
    r = ledger.declare_record(act(world, "alice"), world.teachers["alice"], facts, [SimpleUploadedFile("a.pdf", PDF)],
                              today=dt.date(2026, 9, 1))
    assert r.pk


def test_spot_check_is_reproducible_and_audited(world: World) -> None:
    for _ in range(6):
        world.record("alice", status=Status.SCHOOL_APPROVED)
    world.record("will", status=Status.SCHOOL_APPROVED)
    sample = ledger.spot_check(act(world, "carol"), world.orgs["east"], 3, seed=7)
    again = ledger.spot_check(act(world, "carol"), world.orgs["east"], 3, seed=7)
    assert [r.pk for r in sample] == [r.pk for r in again] and len(sample) == 3
    assert all(r.teacher.school.path.startswith(world.orgs["east"].path) for r in sample)
    with pytest.raises(ledger.Denied):
        ledger.spot_check(act(world, "cody"), world.orgs["east"], 3)
    assert AuditEntry.objects.filter(action="spot_check").count() == 2


def test_audit_log_is_append_only(world: World) -> None:
    r = world.record("alice")
    entry = ledger.transition(act(world, "bob"), r.pk, "school_approve") and AuditEntry.objects.get()
    entry.comment = "改写"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()


def test_audit_log_refuses_bulk_changes(world: World) -> None:
    r = world.record("alice")
    ledger.transition(act(world, "bob"), r.pk, "school_approve")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().update(comment="改写")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.count() == 1


def test_an_outsider_learns_nothing_from_a_stale_version(world: World) -> None:
    r = world.record("alice")
    with pytest.raises(ledger.Denied):
        ledger.transition(act(world, "wes"), r.pk, "school_approve", expected_version=r.version + 5)


def test_id_numbers_are_checked_by_their_check_digit(world: World) -> None:
    from django.core.exceptions import ValidationError

    teacher = world.teachers["alice"]
    teacher.full_clean()
    teacher.id_number = teacher.id_number[:-1] + ("0" if teacher.id_number[-1] != "0" else "1")
    with pytest.raises(ValidationError, match="校验位"):
        teacher.full_clean()
    teacher.id_number = "110101199001012000"
    with pytest.raises(ValidationError, match="Excel"):
        teacher.full_clean()
