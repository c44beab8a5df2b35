"""The REST API: records, declarations, review actions with optimistic
locking, the engine's figures, imports, tokens, and the published schema."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from tests.web.conftest import World

from xuefen.web.models import ApiToken, AuditEntry, Record, Status

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "api" / "openapi.yaml"


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def as_user(world: World, name: str) -> Client:
    client = Client()
    client.force_login(world.users[name])
    return client


def post(client: Client, url: str, **data: Any) -> Any:
    return client.post(url, data, content_type="application/json")


def test_records_list_filters_and_exact_credits(world: World) -> None:
    world.record("alice", year=2025)
    world.record("alice", status=Status.SCHOOL_APPROVED, hours=Decimal("12.5"))
    world.record("anna")
    bob = as_user(world, "bob")
    body = bob.get("/api/records/").json()
    assert body["count"] == 3
    alice = world.teachers["alice"].pk
    assert {r["teacher"] for r in bob.get(f"/api/records/?teacher={alice}").json()["results"]} == {alice}
    assert [r["year"] for r in bob.get(f"/api/records/?teacher={alice}&year=2025").json()["results"]] == [2025]
    approved = bob.get("/api/records/?status=school_approved").json()["results"]
    assert len(approved) == 1
    assert approved[0]["credits"] == "12.5" and approved[0]["hours"] == "12.5"  # exact strings, no padding
    assert bob.get("/api/records/?status=nonsense").status_code == 400
    assert bob.get("/api/records/?year=abc").status_code == 400
    # Another district's teacher id as a filter just yields nothing.
    assert bob.get(f"/api/records/?teacher={world.teachers['will'].pk}").json()["count"] == 0


def test_approve_chain_with_versions_and_conflicts(world: World) -> None:
    r = world.record("alice")
    bob, carol, dora = (as_user(world, n) for n in ("bob", "carol", "dora"))
    response = post(bob, f"/api/records/{r.pk}/approve/", version=r.version)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == Status.SCHOOL_APPROVED and body["version"] == 2
    # The page bob saw is stale now: 409, and nothing changes.
    assert post(bob, f"/api/records/{r.pk}/approve/", version=1).status_code == 409
    # Current version but already approved at his step: 409 as well (cannot count twice).
    assert post(bob, f"/api/records/{r.pk}/approve/", version=2).status_code == 409
    assert post(dora, f"/api/records/{r.pk}/approve/", version=2).status_code == 409  # district first
    assert post(carol, f"/api/records/{r.pk}/approve/", version=2).json()["status"] == Status.DISTRICT_APPROVED
    assert post(dora, f"/api/records/{r.pk}/approve/", version=3).json()["status"] == Status.CERTIFIED
    actions = sorted(AuditEntry.objects.filter(object_id=str(r.pk)).values_list("action", flat=True))
    assert actions == ["certify", "district_approve", "school_approve"]


def test_actions_need_a_version_and_reasons(world: World) -> None:
    r = world.record("alice")
    bob, carol = as_user(world, "bob"), as_user(world, "carol")
    assert post(bob, f"/api/records/{r.pk}/approve/").status_code == 400  # version is required
    assert post(bob, f"/api/records/{r.pk}/return/", version=1).status_code == 400  # no reason
    assert post(carol, f"/api/records/{r.pk}/revoke/", version=1, comment=" ").status_code == 400
    response = post(bob, f"/api/records/{r.pk}/return/", version=1, comment="请补充结业证书")
    assert response.status_code == 200 and response.json()["status_reason"] == "请补充结业证书"
    response = post(carol, f"/api/records/{r.pk}/revoke/", version=2, comment="证书伪造")
    assert response.status_code == 200 and response.json()["status"] == Status.REVOKED


def test_declaration_multipart_with_evidence(world: World) -> None:
    alice = as_user(world, "alice")
    data = {"year": "2026", "title": "国培计划", "form": "集中", "level": "国家级", "hours": "16", "result": "合格",
            "evidence": SimpleUploadedFile("证书.pdf", PDF, content_type="application/pdf")}
    response = alice.post("/api/declarations/", data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == Status.PENDING and body["source"] == "declaration"
    assert body["hours"] == "16" and body["certificate"] is None  # an absent flag stays "not stated"
    assert len(body["evidence"]) == 1 and body["evidence"][0]["content_type"] == "application/pdf"
    assert AuditEntry.objects.filter(action="declare", object_id=str(body["id"])).exists()


def test_declaration_refusals(world: World) -> None:
    alice = as_user(world, "alice")
    fake = SimpleUploadedFile("证书.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    response = alice.post("/api/declarations/", {"year": "2026", "title": "x", "hours": "8", "evidence": fake})
    assert response.status_code == 400 and "PDF" in response.json()["detail"]
    assert alice.post("/api/declarations/", {"year": "2026", "title": "x"}).status_code == 400  # no evidence
    pdf = SimpleUploadedFile("a.pdf", PDF, content_type="application/pdf")
    assert alice.post("/api/declarations/", {"year": "2026", "level": "宇宙级", "evidence": pdf}).status_code == 400
    # JSON cannot carry evidence: the endpoint only takes multipart.
    assert post(alice, "/api/declarations/", year=2026).status_code == 415
    for who in ("bob", "carol", "ivan", "audrey"):
        pdf = SimpleUploadedFile("a.pdf", PDF, content_type="application/pdf")
        assert as_user(world, who).post("/api/declarations/", {"year": "2026", "evidence": pdf}).status_code == 403
    assert Record.objects.count() == 0


def test_teacher_result_is_the_engines_json(world: World) -> None:
    world.record("alice", status=Status.SCHOOL_APPROVED, hours=Decimal("12.5"))
    alice = world.teachers["alice"]
    body = as_user(world, "alice").get(f"/api/teachers/{alice.pk}/result/").json()
    ev = body["evaluation"]
    assert ev["policy"]["id"].startswith("yongji")
    assert ev["years"]["2026"]["total"] == "12.5"
    assert isinstance(ev["total"], str) and all(isinstance(c["earned"], str) for c in ev["categories"].values())
    # The stored summary on the teacher resource agrees with the engine.
    summary = as_user(world, "bob").get(f"/api/teachers/{alice.pk}/").json()["result"]
    assert summary["year_total"] == "12.5" and summary["status"] == ev["status"]


def test_id_numbers_masked_except_for_district_and_city(world: World) -> None:
    alice = world.teachers["alice"]
    for who, full in (("bob", False), ("pat", False), ("alice", False), ("carol", True), ("dora", True)):
        shown = as_user(world, who).get(f"/api/teachers/{alice.pk}/").json()["id_number"]
        assert (shown == alice.id_number) is full, who
        if not full:
            assert shown == alice.masked_id


def test_imports_are_read_only(world: World) -> None:
    bob = as_user(world, "bob")
    assert bob.post("/api/imports/", {}).status_code == 405
    assert bob.get("/api/imports/").status_code == 200


def test_token_lifecycle(world: World, settings: Any) -> None:
    session = as_user(world, "bob")
    assert session.get("/api/token/").json() == {"created": None, "expires": None, "refresh_expires": None}
    created = session.post("/api/token/")
    assert created.status_code == 201
    key, refresh = created.json()["token"], created.json()["refresh"]
    assert "token" not in session.get("/api/token/").json()  # shown once only

    api = Client()
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    assert api.get("/api/records/", **auth).status_code == 200
    # A token cannot see, mint or revoke tokens: only a logged-in session can.
    assert api.post("/api/token/", **auth).status_code in (401, 403)
    assert api.get("/api/token/", **auth).status_code in (401, 403)
    # Token clients need no CSRF token for writes.
    r = world.record("alice")
    assert api.post(f"/api/records/{r.pk}/approve/", {"version": 1}, content_type="application/json",
                    **auth).status_code == 200

    # Rotation replaces the old pair.
    new_key = session.post("/api/token/").json()["token"]
    assert api.get("/api/records/", **auth).status_code == 401
    assert api.post("/api/token/refresh/", {"refresh": refresh}, content_type="application/json").status_code == 401
    auth = {"HTTP_AUTHORIZATION": f"Token {new_key}"}
    assert api.get("/api/records/", **auth).status_code == 200

    # Expiry after API_TOKEN_HOURS, not 90 days.
    assert settings.API_TOKEN_HOURS <= 24
    ApiToken.objects.filter(user=world.users["bob"]).update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert api.get("/api/records/", **auth).status_code == 401

    assert session.delete("/api/token/").status_code == 204
    assert not ApiToken.objects.filter(user=world.users["bob"]).exists()


def test_tokens_are_stored_only_as_digests(world: World) -> None:
    """Issue 19 item 10: the token table held the keys in clear."""
    pair = as_user(world, "bob").post("/api/token/").json()
    row = ApiToken.objects.get(user=world.users["bob"])
    stored = " ".join(str(v) for v in ApiToken.objects.filter(pk=row.pk).values_list().get())
    assert pair["token"] not in stored and pair["refresh"] not in stored
    assert row.digest == hashlib.sha256(pair["token"].encode()).hexdigest()


def test_refresh_gives_a_new_pair_once(world: World, settings: Any) -> None:
    pair = as_user(world, "bob").post("/api/token/").json()
    api = Client()
    ApiToken.objects.update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert api.get("/api/records/", HTTP_AUTHORIZATION=f"Token {pair['token']}").status_code == 401
    fresh = api.post("/api/token/refresh/", {"refresh": pair["refresh"]}, content_type="application/json")
    assert fresh.status_code == 201
    assert api.get("/api/records/", HTTP_AUTHORIZATION=f"Token {fresh.json()['token']}").status_code == 200
    # The refresh token is spent; so is an expired one.
    assert api.post("/api/token/refresh/", {"refresh": pair["refresh"]}, content_type="application/json").status_code == 401
    ApiToken.objects.update(refresh_expires=timezone.now() - dt.timedelta(seconds=1))
    assert api.post("/api/token/refresh/", {"refresh": fresh.json()["refresh"]},
                    content_type="application/json").status_code == 401


def test_logout_ends_the_users_tokens_and_other_sessions(world: World) -> None:
    """Issue 19 item 10: a token stayed valid after logout."""
    browser, laptop = as_user(world, "bob"), as_user(world, "bob")
    key = browser.post("/api/token/").json()["token"]
    assert laptop.post("/logout/").status_code == 302
    assert Client().get("/api/records/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
    assert browser.get("/review/").status_code == 302  # the other browser is logged out too


def test_anonymous_is_refused(world: World) -> None:
    client = Client()
    for url in ("/api/records/", "/api/teachers/", "/api/imports/", "/api/token/"):
        assert client.get(url).status_code in (401, 403), url
    assert client.get("/api/records/", HTTP_AUTHORIZATION="Token nonsense").status_code == 401


def test_committed_schema_is_current(tmp_path: Path) -> None:
    """docs/api/openapi.yaml must be regenerated when the API changes, with the
    documented command.  It runs in a subprocess on the embedded SQLite default:
    integer bounds in the schema follow the database backend."""
    out = tmp_path / "openapi.yaml"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "XUEFEN_ENV")}
    env["XUEFEN_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run([sys.executable, "manage.py", "spectacular", "--file", str(out), "--validate",
                             "--fail-on-warn"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == SCHEMA.read_text(encoding="utf-8"), (
        "docs/api/openapi.yaml is stale; regenerate it with "
        "`XUEFEN_DATA_DIR=/tmp/xfd python manage.py spectacular --file docs/api/openapi.yaml`")
