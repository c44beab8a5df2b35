"""The security baseline: password hashing, login throttling, idle session
expiry, CSRF, the production deploy check, 身份证号 kept out of logs and URLs
and masked in pages, no default passwords — and the append-only audit log
with its search page."""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.db import DatabaseError, connection, transaction
from django.test import Client, override_settings
from django.urls import get_resolver
from django.utils import timezone
from tests.web.conftest import PASSWORD, World

from xuefen.web import settings as conf
from xuefen.web.apps import install_audit_guard
from xuefen.web.logmask import MaskIdNumbers
from xuefen.web.models import AuditEntry, LoginFailure, Profile, Record, Role, Status
from xuefen.web.services import ledger

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    # Argon2 is checked against the real settings module below; here it would only be slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- passwords -------------------------------------------------------------------------

def test_argon2_is_the_first_hasher() -> None:
    assert conf.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    with override_settings(PASSWORD_HASHERS=conf.PASSWORD_HASHERS):
        assert make_password("a-long-test-password").startswith("argon2$")


def test_no_default_passwords_outside_the_demo_command() -> None:
    literal = re.compile(r"""(passw(or)?d\w*\s*[=:]\s*["'][^"']+["']|set_password\(\s*["'])""", re.IGNORECASE)
    allowed = {ROOT / "src/xuefen/web/management/commands/demo.py"}
    files = [*ROOT.glob("src/**/*.py"), *ROOT.glob("scripts/*"), *ROOT.glob("*.sh"), *ROOT.glob("src/**/*.html")]
    offenders = [f"{path.relative_to(ROOT)}: {m.group(0)}" for path in files if path.is_file() and path not in allowed
                 for m in literal.finditer(path.read_text(encoding="utf-8", errors="replace"))]
    assert offenders == []


# --- login throttling ---------------------------------------------------------------------

def login(client: Client, username: str, password: str, ip: str = "10.0.0.1", **extra: Any) -> Any:
    return client.post("/login/", {"username": username, "password": password, **extra}, REMOTE_ADDR=ip)


def test_login_locks_a_username_at_an_address_after_repeated_failures(world: World, settings: Any) -> None:
    client = Client()
    for i in range(settings.LOGIN_MAX_FAILURES):
        # Case and spacing variants count against the same account; the last failure starts the lock.
        expected = 429 if i == settings.LOGIN_MAX_FAILURES - 1 else 200
        assert login(client, ["alice", "ALICE", " Alice "][i % 3], "wrong").status_code == expected
    # Locked at this address: even the right password is refused without checking it, and the wait is shown.
    response = login(client, "alice", PASSWORD)
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    assert re.search(r"约 \d+ 分钟", response.content.decode())
    # Another account at the same address is unaffected.
    assert login(Client(), "anna", PASSWORD).status_code == 302

    # The window passes: alice gets in, and her failures are cleared.
    LoginFailure.objects.update(at=timezone.now() - dt.timedelta(seconds=settings.LOGIN_LOCK_SECONDS + 1))
    assert login(client, "alice", PASSWORD).status_code == 302
    assert not LoginFailure.objects.filter(username="alice").exists()


def test_strangers_cannot_lock_an_account_from_elsewhere(world: World, settings: Any) -> None:
    """Issue 19 item 9: five anonymous requests locked any account, admin included."""
    for _ in range(settings.LOGIN_MAX_FAILURES * 2):
        login(Client(), "sam", "wrong", ip="203.0.113.9")
    assert login(Client(), "sam", PASSWORD, ip="203.0.113.9").status_code == 429
    assert login(Client(), "sam", PASSWORD, ip="10.0.0.2").status_code == 302


def test_login_locks_an_address_spraying_many_usernames(world: World, settings: Any) -> None:
    for i in range(settings.LOGIN_SPRAY_USERNAMES):
        login(Client(), f"nobody{i}", "wrong", ip="10.0.0.7")
    assert login(Client(), "anna", PASSWORD, ip="10.0.0.7").status_code == 429
    assert login(Client(), "anna", PASSWORD, ip="10.0.0.8").status_code == 302


def test_one_school_address_failing_for_several_users_locks_none_of_the_others(world: World, settings: Any) -> None:
    """Schools sit behind one NAT: colleagues' typos do not lock the school out."""
    for name in ("alice", "anna", "bob", "pat"):
        for _ in range(settings.LOGIN_MAX_FAILURES - 1):
            login(Client(), name, "wrong", ip="10.0.0.50")
    assert login(Client(), "ella", PASSWORD, ip="10.0.0.50").status_code == 302
    assert login(Client(), "alice", PASSWORD, ip="10.0.0.50").status_code == 302


def test_success_resets_the_count(world: World, settings: Any) -> None:
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        login(Client(), "alice", "wrong")
    assert login(Client(), "alice", PASSWORD).status_code == 302
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        login(Client(), "alice", "wrong")
    assert login(Client(), "alice", PASSWORD).status_code == 302


def test_login_never_redirects_off_site(world: World) -> None:
    response = Client().post("/login/?next=https://evil.example/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and "evil" not in response["Location"]
    response = Client().post("/login/?next=//evil.example/x", {"username": "alice", "password": PASSWORD})
    assert "evil" not in response["Location"]
    response = Client().post("/login/?next=/me/", {"username": "alice", "password": PASSWORD})
    assert response["Location"] == "/me/"


# --- sessions ---------------------------------------------------------------------------------

def test_idle_session_expires(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not saved on every request (issue 19 item 5): SessionTouch pushes the expiry on once a minute at most.
    assert conf.SESSION_COOKIE_AGE <= 30 * 60 and conf.SESSION_TOUCH_SECONDS <= 60
    assert "xuefen.web.middleware.SessionTouch" in conf.MIDDLEWARE
    client = Client()
    client.force_login(world.users["alice"])
    start = timezone.now()

    def at(minutes: int) -> None:
        monkeypatch.setattr(timezone, "now", lambda: start + dt.timedelta(minutes=minutes))

    at(20)
    assert client.get("/me/").status_code == 200
    at(45)  # 45 minutes after login, but only 25 idle: still in
    assert client.get("/me/").status_code == 200
    at(45 + conf.SESSION_COOKIE_AGE // 60 + 1)  # idle longer than the limit
    response = client.get("/me/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- CSRF --------------------------------------------------------------------------------------

def test_csrf_is_enforced_on_posts(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    assert login(client, "alice", PASSWORD).status_code == 403
    client.get("/login/")
    token = client.cookies["csrftoken"].value
    assert login(client, "alice", PASSWORD, csrfmiddlewaretoken=token).status_code == 302

    r = world.record("alice")
    bob = Client(enforce_csrf_checks=True)
    bob.force_login(world.users["bob"])
    assert bob.post(f"/review/{r.pk}/school_approve/", {"version": 1}).status_code == 403
    # The API under a browser session needs the token too (token clients do not: test_api).
    assert bob.post(f"/api/records/{r.pk}/approve/", {"version": 1}, content_type="application/json").status_code == 403
    assert bob.post("/api/token/").status_code == 403
    assert bob.post("/logout/").status_code == 403
    assert Record.objects.get(pk=r.pk).status == Status.PENDING


# --- deployment -----------------------------------------------------------------------------------

def test_check_deploy_passes_in_production(tmp_path: Path) -> None:
    env = {**os.environ, "XUEFEN_ENV": "production", "XUEFEN_SECRET_KEY": "k" * 20 + "-not-a-real-key-" + "q7" * 20,
           "XUEFEN_ALLOWED_HOSTS": "xuefen.example", "XUEFEN_DATA_DIR": str(tmp_path), "XUEFEN_ALLOW_SQLITE": "1",
           "XUEFEN_ID_KEYS": "x" * 43 + "=", "XUEFEN_ID_HMAC_KEY": "h" * 40,
           "XUEFEN_AUDIT_ANCHOR_FILE": str(tmp_path / "anchors.log")}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # Without the keys of 身份证号 the deploy check fails.
    for name in ("XUEFEN_ID_KEYS", "XUEFEN_ID_HMAC_KEY"):
        missing = {k: v for k, v in env.items() if k != name}
        result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=missing,
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode != 0 and "xuefen.E001" in result.stderr, name


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = {**os.environ, "XUEFEN_ENV": "production", "XUEFEN_DATA_DIR": str(tmp_path)}
    env.pop("XUEFEN_SECRET_KEY", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode != 0 and "XUEFEN_SECRET_KEY" in result.stderr


# --- 身份证号 ------------------------------------------------------------------------------------------

@pytest.fixture
def log_output() -> Any:
    """What the configured console handler writes (it carries the mask filter)."""
    handlers = [h for h in logging.getLogger().handlers if any(isinstance(f, MaskIdNumbers) for f in h.filters)]
    assert handlers, "the root handler must carry xuefen.web.logmask.MaskIdNumbers"
    buffer = io.StringIO()
    old = [h.setStream(buffer) for h in handlers if isinstance(h, logging.StreamHandler)]  # type: ignore[func-returns-value]
    yield buffer
    for h, stream in zip(handlers, old, strict=True):
        if stream is not None:
            h.setStream(stream)  # type: ignore[attr-defined]


def test_id_numbers_never_reach_the_logs(world: World, log_output: io.StringIO) -> None:
    number = world.teachers["alice"].id_number
    log = logging.getLogger("xuefen.test")
    log.warning("teacher %s failed", number)
    try:
        raise ValueError(f"Key (id_number)=({number}) already exists.")
    except ValueError:
        log.exception("import failed")
    client = Client()
    client.force_login(world.users["bob"])
    client.get(f"/records/{number}/")  # a 404 is logged with its path by django.request
    text = log_output.getvalue()
    assert number not in text
    assert number[:4] + "**********" + number[-4:] in text
    assert "already exists" in text and "Not Found" in text


def test_id_numbers_never_in_urls(world: World) -> None:
    patterns = [str(p.pattern) for p in get_resolver().url_patterns]
    assert not any("id_number" in p for p in patterns)
    number = world.teachers["alice"].id_number
    world.record("alice")
    carol = Client()
    carol.force_login(world.users["carol"])
    for url in (f"/teachers/{world.teachers['alice'].pk}/", "/dashboard/", f"/dashboard/org/{world.orgs['east-1'].pk}/"):
        page = carol.get(url).content.decode()
        links = re.findall(r'(?:href|action|src)="([^"]*)"', page)
        assert not [link for link in links if number in link], url


@pytest.mark.parametrize(("who", "full"), [("bob", False), ("pat", False), ("carol", True), ("dora", True)])
def test_id_numbers_masked_in_pages_unless_needed(world: World, who: str, full: bool) -> None:
    alice = world.teachers["alice"]
    r = world.record("alice")
    client = Client()
    client.force_login(world.users[who])
    for url in (f"/teachers/{alice.pk}/", f"/records/{r.pk}/"):
        page = client.get(url).content.decode()
        assert (alice.id_number in page) is full, url
        if not full:
            assert alice.masked_id in page, url


def test_teacher_sees_her_own_number_masked(world: World) -> None:
    alice = world.teachers["alice"]
    client = Client()
    client.force_login(world.users["alice"])
    assert alice.id_number not in client.get("/me/").content.decode()


# --- the audit log ---------------------------------------------------------------------------------

def test_audit_entries_refuse_change_and_delete_in_python(world: World) -> None:
    entry = AuditEntry.objects.create(action="test", object_type="Record", object_id="1")
    entry.comment = "rewritten"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()


@pytest.mark.postgres
def test_audit_table_is_append_only_in_postgresql(world: World) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the database-level guard exists on PostgreSQL only")
    assert install_audit_guard("default")  # installed by post_migrate already; reinstalling is harmless
    with connection.cursor() as cursor:  # the suite's flush maintenance, off for this test's transaction
        cursor.execute("SET LOCAL xuefen.audit_maintenance TO 'off'")
    r = world.record("alice")
    ledger.transition(ledger.Actor(world.users["bob"]), r.pk, "school_approve")
    entry = AuditEntry.objects.get(object_id=str(r.pk))
    table = AuditEntry._meta.db_table
    # the queryset refuses in Python already; raw SQL meets the trigger
    for attempt in (lambda: AuditEntry.objects.filter(pk=entry.pk).update(comment="rewritten"),
                    lambda: AuditEntry.objects.filter(pk=entry.pk).delete()):
        with pytest.raises(PermissionError), transaction.atomic():
            attempt()
    attempts = [
        lambda: connection.cursor().execute(f"UPDATE {table} SET action = 'x' WHERE id = %s", [entry.pk]),
        lambda: connection.cursor().execute(f"UPDATE {table} SET comment = 'x' WHERE id = %s", [entry.pk]),
        lambda: connection.cursor().execute(f"DELETE FROM {table}"),
    ]
    for attempt in attempts:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    entry.refresh_from_db()
    assert entry.action == "school_approve" and entry.comment == ""

    # Deleting an account only detaches it from its entries (SET NULL); the name stays.
    bob = world.users["bob"]
    Profile.objects.filter(user=bob).delete()
    bob.delete()
    entry.refresh_from_db()
    assert entry.actor_id is None and entry.actor_name == "bob"


def audit_client(world: World, who: str = "audrey") -> Client:
    client = Client()
    client.force_login(world.users[who])
    return client


def test_audit_search_filters(world: World) -> None:
    actor = ledger.Actor(world.users["bob"], "10.1.1.1")
    r1, r2 = world.record("alice"), world.record("anna")
    ledger.transition(actor, r1.pk, "school_approve")
    ledger.return_record(actor, r2.pk, "请补充证明")
    ledger.transition(ledger.Actor(world.users["wes"]), world.record("will").pk, "school_approve")
    ledger.correct_record(ledger.Actor(world.users["carol"]), r1.pk, {"hours": "20"}, "按证书更正")
    client = audit_client(world)

    def shown(**params: str) -> list[tuple[str, str]]:
        rows = client.get("/audit/", params).context["rows"]
        return [(row["entry"].action, row["entry"].actor_name) for row in rows]

    assert len(shown()) == 4
    assert shown(actor="BO") == [("return", "bob"), ("school_approve", "bob")]
    assert shown(action="correct") == [("correct", "carol")]
    assert shown(object=str(r1.pk), object_type="Record") == [("correct", "carol"), ("school_approve", "bob")]
    assert {a for a, _ in shown(org=str(world.orgs["west"].pk))} == {"school_approve"}
    assert shown(org=str(world.orgs["west"].pk)) == [("school_approve", "wes")]
    today = timezone.localdate()
    assert len(shown(**{"from": today.isoformat(), "to": today.isoformat()})) == 4
    assert shown(**{"from": (today + dt.timedelta(days=1)).isoformat()}) == []
    assert shown(**{"to": (today - dt.timedelta(days=1)).isoformat()}) == []
    assert len(shown(**{"from": "not-a-date"})) == 4


def test_audit_shows_readable_diffs(world: World) -> None:
    r = world.record("alice")
    ledger.correct_record(ledger.Actor(world.users["bob"]), r.pk, {"hours": "20"}, "学时按结业证书更正")
    response = audit_client(world).get("/audit/", {"action": "correct"})
    diff = response.context["rows"][0]["diff"]
    fields = {d["key"]: (d["before"], d["after"]) for d in diff}
    assert fields["hours"] == ("24", "20") and fields["version"] == ("1", "2")
    assert "title" not in fields  # unchanged fields are not repeated
    page = response.content.decode()
    assert "学时" in page and "<del>24</del>" in page and "<ins>20</ins>" in page


def test_audit_paginates(world: World) -> None:
    for i in range(60):
        AuditEntry.objects.create(action="test", object_type="Org", object_id=str(i),
                                  org_path=world.orgs["east"].path)
    client = audit_client(world)
    first = client.get("/audit/", {"action": "test"})
    assert len(first.context["rows"]) == 50 and first.context["page"].paginator.num_pages == 2
    assert "action=test&amp;page=2" in first.content.decode()
    second = client.get("/audit/", {"action": "test", "page": "2"})
    assert len(second.context["rows"]) == 10
    assert client.get("/audit/", {"page": "999"}).status_code == 200  # out of range: last page


def test_auditor_reads_only_her_subtree(world: World) -> None:
    Profile.objects.filter(user=world.users["audrey"]).update(org=world.orgs["east"])
    AuditEntry.objects.create(action="test", object_type="Org", object_id="e", org_path=world.orgs["east-1"].path)
    AuditEntry.objects.create(action="test", object_type="Org", object_id="w", org_path=world.orgs["west-1"].path)
    ids = [row["entry"].object_id for row in audit_client(world).get("/audit/").context["rows"]]
    assert ids == ["e"]
    # The organisation filter cannot reach outside the subtree either.
    rows = audit_client(world).get("/audit/", {"org": str(world.orgs["west"].pk)}).context["rows"]
    assert rows == []
    ids = {row["entry"].object_id for row in audit_client(world, "sam").get("/audit/").context["rows"]}
    assert ids == {"e", "w"}


def test_audit_page_masks_id_numbers_for_auditors(world: World) -> None:
    number = world.teachers["alice"].id_number
    AuditEntry.objects.create(action="teacher_import", object_type="Teacher", object_id="1",
                              org_path=world.orgs["east-1"].path, after={"id_number": number},
                              comment=f"导入 {number}")
    page = audit_client(world).get("/audit/").content.decode()
    assert number not in page and world.teachers["alice"].masked_id in page


def test_only_auditors_and_sysadmin_read_the_audit_log(world: World) -> None:
    for who in ("alice", "bob", "carol", "dora", "ivan"):
        assert audit_client(world, who).get("/audit/").status_code == 404, who
    assert Role.AUDITOR in (Profile.objects.get(user=world.users["audrey"]).role,)
