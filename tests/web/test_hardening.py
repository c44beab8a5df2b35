"""Security drills of issues 17 and 19: each test reproduced its defect
before the fix (named in its docstring).

* accounts (17.1, 19.9): password rules, forced change after an
  administrator set the password, logout and password change end every
  session and token, trusted proxies, a locked user in by her second factor
  or an administrator's unlock, logins audited;
* 身份证号 at rest (17.2): nothing in clear in the database, lookup by digest,
  key rotation, unmasked views audited;
* the audit log (17.3, 19.8): hash chain, verify names the first broken link,
  anchors; the ORM's base manager and raw SQL refused on SQLite; TRUNCATE,
  DISABLE TRIGGER and DROP TRIGGER refused on PostgreSQL under the
  application role;
* headers (17.6): CSP without unsafe-inline, no inline code in templates.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone, translation
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.web.conftest import PASSWORD, World

from xuefen.web import apps as web_apps
from xuefen.web import pii
from xuefen.web.models import AccountState, ApiToken, AuditAnchor, AuditEntry, Teacher
from xuefen.web.services import accounts, audit
from xuefen.web.services.ledger import Denied, ServiceError
from xuefen.web.services.teachers import teacher_by_id_number

ROOT = Path(__file__).resolve().parents[2]
NEW = "Xuefen-2026-secure"


@pytest.fixture(autouse=True)
def _chinese() -> Any:
    with translation.override("zh-hans"):
        yield


def login(client: Client, username: str, password: str, ip: str = "10.0.0.1", **extra: Any) -> Any:
    return client.post("/login/", {"username": username, "password": password, **extra}, REMOTE_ADDR=ip)


# --- passwords ------------------------------------------------------------------------------

@pytest.mark.parametrize(("password", "reason"), [
    ("Ab1-short", "至少"),  # under 10
    ("alllowercaseletters", "3 类"),  # one class
    ("lowercase123456", "3 类"),  # two classes
    ("1234567890-", "常见"),  # Django's common-password list (three classes would not save it)
    ("Alice-2026-xyz", "用户名"),  # contains the username
])
def test_password_rules(world: World, password: str, reason: str) -> None:
    with pytest.raises(ServiceError) as refused:
        accounts.change_password(world.users["alice"], world.users["alice"], password)
    assert reason in str(refused.value), str(refused.value)


def test_password_may_not_contain_the_id_number(world: World) -> None:
    number = world.teachers["alice"].id_number
    with pytest.raises(ServiceError, match="身份证号"):
        accounts.change_password(world.users["alice"], world.users["alice"], f"Xf-{number[-8:]}-ab")


def test_change_password_ends_every_session_and_token(world: World) -> None:
    bob = world.users["bob"]
    elsewhere = Client()
    elsewhere.force_login(bob)
    key = elsewhere.post("/api/token/").json()["token"]
    accounts.change_password(bob, bob, NEW, old=PASSWORD)
    assert elsewhere.get("/review/").status_code == 302
    assert Client().get("/api/records/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
    assert not ApiToken.objects.filter(user=bob).exists()
    assert AuditEntry.objects.filter(action="password_changed", object_id=str(bob.pk)).exists()
    assert login(Client(), "bob", NEW).status_code == 302


def test_password_page_changes_and_logs_out(world: World) -> None:
    client = Client()
    client.force_login(world.users["bob"])
    bad = client.post("/account/password/", {"old": PASSWORD, "new": "short", "again": "short"})
    assert bad.status_code == 400 and "至少" in bad.content.decode()
    ok = client.post("/account/password/", {"old": PASSWORD, "new": NEW, "again": NEW})
    assert ok.status_code == 302 and ok["Location"] == "/login/"
    assert client.get("/review/").status_code == 302


def test_reset_forces_a_change_at_next_login(world: World) -> None:
    sam, alice = world.users["sam"], world.users["alice"]
    with pytest.raises(Denied):
        accounts.reset_password(world.users["bob"], alice)
    temporary = accounts.reset_password(sam, alice)
    client = Client()
    response = login(client, "alice", temporary)
    assert response.status_code == 302 and response["Location"] == "/account/password/"
    # Every other page sends her to the change page until she has chosen her own.
    assert client.get("/me/")["Location"] == "/account/password/"
    assert client.get("/api/records/").status_code == 403
    client.post("/account/password/", {"old": temporary, "new": NEW, "again": NEW})
    assert not AccountState.objects.get(user=alice).must_change_password
    client = Client()
    assert login(client, "alice", NEW).status_code == 302
    assert client.get("/me/").status_code == 200


def test_accounts_made_by_the_administrator_must_change_their_password(world: World) -> None:
    _user, temporary = accounts.create_account(world.users["sam"], "newofficer", role="school_officer",
                                              org=world.orgs["east-1"])
    assert login(Client(), "newofficer", temporary)["Location"] == "/account/password/"
    # The demo accounts and the fixtures are not flagged.
    assert not AccountState.objects.filter(user=world.users["bob"], must_change_password=True).exists()


def test_absolute_session_limit(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client()
    client.force_login(world.users["alice"])
    start = timezone.now()
    for minutes in range(20, 12 * 60, 20):  # active every 20 minutes, never idle
        monkeypatch.setattr(timezone, "now", lambda m=minutes: start + dt.timedelta(minutes=m))
        assert client.get("/me/").status_code == 200, minutes
    monkeypatch.setattr(timezone, "now", lambda: start + dt.timedelta(hours=12, minutes=1))
    assert client.get("/me/").status_code == 302


# --- lockout, proxies, second factor, unlock --------------------------------------------------

def _lock(username: str, settings: Any, ip: str = "10.0.0.1") -> None:
    for _ in range(settings.LOGIN_MAX_FAILURES):
        login(Client(), username, "wrong", ip=ip)


def test_forwarded_address_only_from_trusted_proxies(world: World, settings: Any) -> None:
    """Issue 19 item 9: behind a proxy (one REMOTE_ADDR) failures locked everyone;
    and a client must not pick the address it is counted against."""
    settings.TRUSTED_PROXIES = ["10.1.0.0/16"]
    for _ in range(settings.LOGIN_MAX_FAILURES):
        Client().post("/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.1.0.5",
                      HTTP_X_FORWARDED_FOR="198.51.100.7")
    # Another client through the same proxy is not locked out.
    ok = Client().post("/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.1.0.5",
                       HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert ok.status_code == 302
    # A client talking to us directly cannot dodge its lock with a forged header.
    for _ in range(settings.LOGIN_MAX_FAILURES):
        Client().post("/login/", {"username": "anna", "password": "wrong"}, REMOTE_ADDR="203.0.113.1",
                      HTTP_X_FORWARDED_FOR="192.0.2.1")
    forged = Client().post("/login/", {"username": "anna", "password": PASSWORD}, REMOTE_ADDR="203.0.113.1",
                           HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert forged.status_code == 429


def _device(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_second_factor_is_required_once_enabled(world: World) -> None:
    device = _device(world.users["carol"])
    asked = login(Client(), "carol", PASSWORD)
    assert asked.status_code == 200 and "动态口令" in asked.content.decode()
    assert login(Client(), "carol", PASSWORD, otp="000000" if _code(device) != "000000" else "111111").status_code == 200
    TOTPDevice.objects.get(pk=device.pk).throttle_reset()  # django-otp slows guessing after a failure
    assert login(Client(), "carol", PASSWORD, otp=_code(device)).status_code == 302


def test_locked_user_gets_in_with_her_second_factor(world: World, settings: Any) -> None:
    device = _device(world.users["carol"])
    _lock("carol", settings)
    assert login(Client(), "carol", PASSWORD).status_code == 429
    assert login(Client(), "carol", PASSWORD, otp=_code(device)).status_code == 302
    assert AuditEntry.objects.filter(action="login_second_factor_while_locked").exists()


def test_administrator_unlocks(world: World, settings: Any) -> None:
    _lock("alice", settings)
    assert login(Client(), "alice", PASSWORD).status_code == 429
    admin = Client()
    admin.force_login(world.users["sam"])
    page = admin.get("/account/locks/").content.decode()
    assert "alice" in page
    officer = Client()
    officer.force_login(world.users["bob"])
    assert officer.get("/account/locks/").status_code == 404
    assert officer.post("/account/locks/unlock/", {"username": "alice"}).status_code == 404
    assert admin.post("/account/locks/unlock/", {"username": "alice"}).status_code == 302
    assert login(Client(), "alice", PASSWORD).status_code == 302
    assert AuditEntry.objects.filter(action="login_unlocked", object_id="alice").exists()


def test_logins_failures_and_locks_are_audited(world: World, settings: Any) -> None:
    """Issue 19 item 9: logins, failures and lockouts left no audit entry."""
    login(Client(), "anna", PASSWORD)
    _lock("alice", settings)
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"login", "login_failed", "login_locked"} <= actions
    assert AuditEntry.objects.filter(action="login_failed", ip="10.0.0.1").count() == settings.LOGIN_MAX_FAILURES


def test_otp_setup_page(world: World) -> None:
    client = Client()
    client.force_login(world.users["carol"])
    page = client.get("/account/otp/").content.decode()
    assert "data:image/svg+xml" in page
    device = TOTPDevice.objects.get(user=world.users["carol"], confirmed=False)
    assert client.post("/account/otp/", {"action": "confirm", "token": _code(device)}).status_code == 302
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    teacher = Client()
    teacher.force_login(world.users["alice"])
    assert teacher.get("/account/otp/").status_code == 404  # offered to district, city and admin only


# --- 身份证号 at rest ---------------------------------------------------------------------------

def _dump() -> str:
    """Every table's every row as text, like ``sqlite3 .dump`` / ``pg_dump``."""
    out = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            out.extend(" ".join(str(v) for v in row) for row in cursor.fetchall())
    return "\n".join(out)


def test_no_id_number_in_clear_in_the_database(world: World) -> None:
    dump = _dump()
    for t in world.teachers.values():
        assert t.id_number not in dump
        assert t.id_number_enc in dump  # the dump did read the table


def test_lookup_by_digest(world: World) -> None:
    alice = world.teachers["alice"]
    assert teacher_by_id_number(alice.id_number.lower()) == alice
    assert teacher_by_id_number(alice.id_number, scope=world.users["bob"]) == alice
    assert teacher_by_id_number(alice.id_number, scope=world.users["wes"]) is None
    assert Teacher.objects.get(pk=alice.pk).id_number == alice.id_number


def test_the_digest_keeps_numbers_unique(world: World) -> None:
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        Teacher.objects.create(school=world.orgs["east-1"], teacher_no="T9999", name="dup",
                               id_number=world.teachers["alice"].id_number)


def test_key_rotation(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    old_key, mac = pii.new_key(), "hmac-key-for-the-test"
    (installed,), _ = pii._dev_keys()  # what the fixtures were encrypted with
    monkeypatch.setenv("XUEFEN_ID_KEYS", f"{old_key},{installed}")
    monkeypatch.setenv("XUEFEN_ID_HMAC_KEY", mac)  # a new HMAC key too: digests are recomputed
    pii.reset_keys()
    try:
        call_command("rotate_id_key")  # everything under old_key now
        alice = world.teachers["alice"]
        before = Teacher.objects.get(pk=alice.pk).id_number_enc
        new_key = pii.new_key()
        monkeypatch.setenv("XUEFEN_ID_KEYS", f"{new_key},{old_key}")
        call_command("rotate_id_key")
        after = Teacher.objects.get(pk=alice.pk).id_number_enc
        assert after != before
        monkeypatch.setenv("XUEFEN_ID_KEYS", new_key)  # the old key retired
        pii.reset_keys()
        assert Teacher.objects.get(pk=alice.pk).id_number == alice.id_number
        assert teacher_by_id_number(alice.id_number) == alice
    finally:
        # The rows go back with the test's transaction; the keys with the environment.
        monkeypatch.undo()
        pii.reset_keys()


def test_unmasked_views_are_audited(world: World) -> None:
    carol = Client()
    carol.force_login(world.users["carol"])
    alice = world.teachers["alice"]
    assert alice.id_number in carol.get(f"/teachers/{alice.pk}/").content.decode()
    seen = AuditEntry.objects.filter(action="id_number_viewed", actor=world.users["carol"])
    assert seen.exists() and alice.id_number not in str(list(seen.values()))
    api = carol.get(f"/api/teachers/?school={world.orgs['east-1'].pk}")
    assert alice.id_number in api.content.decode()
    assert AuditEntry.objects.filter(action="id_number_viewed", actor=world.users["carol"],
                                     object_id="/api/teachers/").exists()
    bob = Client()
    bob.force_login(world.users["bob"])
    bob.get(f"/teachers/{alice.pk}/")
    bob.get("/api/teachers/")
    assert not AuditEntry.objects.filter(action="id_number_viewed", actor=world.users["bob"]).exists()


# --- the audit log ------------------------------------------------------------------------------

def _entries(world: World, n: int = 3) -> list[AuditEntry]:
    entries = [audit.log(world.users["sam"], "test_entry", world.users["sam"], after={"n": i}) for i in range(n)]
    audit.seal()
    return entries


def _maintenance_sql(sql: str, params: list[Any]) -> None:
    """An attacker with the table owner's powers (the drill edits a row behind every guard)."""
    web_apps.allow_audit_maintenance(True)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL xuefen.audit_maintenance TO 'on'")
        cursor.execute(sql, params)


def test_chain_verifies_and_names_the_first_broken_link(world: World) -> None:
    entries = _entries(world, 4)
    assert audit.verify().ok
    call_command("audit", "verify")
    _maintenance_sql("UPDATE xuefen_auditentry SET comment = %s WHERE id = %s", ["edited", entries[1].pk])
    verdict = audit.verify()
    seq = AuditEntry.objects.get(pk=entries[1].pk).seq
    assert not verdict.ok and f"第 {seq} 条" in verdict.problems[0] and "被修改" in verdict.problems[0]
    with pytest.raises(CommandError, match="校验失败"):
        call_command("audit", "verify")


def test_chain_detects_a_deleted_entry(world: World) -> None:
    entries = _entries(world, 3)
    _maintenance_sql("DELETE FROM xuefen_auditentry WHERE id = %s", [entries[1].pk])
    assert "缺少" in audit.verify().problems[0]


def test_anchor_detects_a_rewritten_tail(world: World, tmp_path: Path, settings: Any) -> None:
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "anchors.log")
    entries = _entries(world, 3)
    anchor = audit.anchor()
    assert anchor is not None and (tmp_path / "anchors.log").read_text().split()[-1] == anchor.hash
    # Rewrite the last entry and recompute its hash consistently: the chain alone looks whole.
    last = AuditEntry.objects.filter(pk=entries[-1].pk).values().get()
    last["comment"] = "rewritten"
    _maintenance_sql("UPDATE xuefen_auditentry SET comment = %s, hash = %s WHERE id = %s",
                     ["rewritten", audit.link(last["prev_hash"], last), last["id"]])
    problems = audit.verify().problems
    assert problems and "锚点" in problems[0]


def test_anchors_are_written_periodically(world: World, settings: Any) -> None:
    settings.AUDIT_ANCHOR_EVERY = 2
    for _ in range(5):
        _entries(world, 1)
    assert AuditAnchor.objects.count() >= 2


def test_base_manager_cannot_rewrite_the_log(world: World) -> None:
    """Issue 19 item 8: on SQLite the ORM's _base_manager.update()/delete() succeeded."""
    entry = _entries(world, 1)[0]
    web_apps.allow_audit_maintenance(False)
    try:
        with pytest.raises(PermissionError):
            AuditEntry._base_manager.filter(pk=entry.pk).update(comment="x")
        with pytest.raises(PermissionError):
            AuditEntry._base_manager.filter(pk=entry.pk).delete()
        for sql in ("UPDATE xuefen_auditentry SET comment = 'x' WHERE id = %s",
                    "DELETE FROM xuefen_auditentry WHERE id = %s"):
            with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("SET LOCAL xuefen.audit_maintenance TO 'off'")
                cursor.execute(sql, [entry.pk])
    finally:
        web_apps.allow_audit_maintenance(True)
    assert AuditEntry.objects.get(pk=entry.pk).comment == ""


def test_deleting_a_user_keeps_her_entries(world: World) -> None:
    web_apps.allow_audit_maintenance(False)
    try:
        entry = audit.log(world.users["pat"], "test_entry", world.users["pat"])
        audit.seal()
        world.users["pat"].delete()
    finally:
        web_apps.allow_audit_maintenance(True)
    kept = AuditEntry.objects.get(pk=entry.pk)
    assert kept.actor_id is None and kept.actor_name == "pat"
    assert audit.verify().ok


@pytest.mark.postgres
def test_application_role_cannot_truncate_disable_or_drop(world: World) -> None:
    """Issue 19 item 8: on PostgreSQL the application's role could TRUNCATE the
    audit log, or DISABLE/DROP its trigger and then UPDATE."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    entry = _entries(world, 1)[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = 'xuefen_app_drill'")
        if cursor.fetchone() is None:
            cursor.execute("CREATE ROLE xuefen_app_drill NOLOGIN")
    call_command("secure_db", "--app-role", "xuefen_app_drill")
    attacks = [
        "TRUNCATE xuefen_auditentry",
        "ALTER TABLE xuefen_auditentry DISABLE TRIGGER ALL",
        "DROP TRIGGER xuefen_audit_append_only ON xuefen_auditentry",
        f"UPDATE xuefen_auditentry SET comment = 'x' WHERE id = {int(entry.pk)}",
        f"DELETE FROM xuefen_auditentry WHERE id = {int(entry.pk)}",
        "TRUNCATE xuefen_auditanchor",
    ]
    for sql in attacks:
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE xuefen_app_drill")
            cursor.execute(sql)
    # The owner's TRUNCATE is refused by the statement trigger.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL xuefen.audit_maintenance TO 'off'")
        cursor.execute("TRUNCATE xuefen_auditentry")
    # The platform itself still works under that role: a review with its audit entry and seal.
    r = world.record("alice")
    from xuefen.web.services import ledger

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE xuefen_app_drill")
        ledger.transition(ledger.Actor(world.users["bob"]), r.pk, "school_approve", expected_version=r.version)
        audit.seal()
    assert audit.verify().ok and AuditEntry.objects.get(pk=entry.pk).comment == ""


# --- headers and inline code ---------------------------------------------------------------------

def test_security_headers(world: World) -> None:
    response = Client().get("/login/")
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_templates_hold_no_inline_script_or_style() -> None:
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=", re.IGNORECASE)
    offenders = [f"{p.name}: {m.group(0)}" for p in (ROOT / "src/xuefen/web/templates").rglob("*.html")
                 for m in inline.finditer(p.read_text(encoding="utf-8"))]
    assert offenders == []
