"""The platform's data: organisations, people and roles, the credit ledger,
evidence, imports, cached results, per-unit tallies and the audit log.

Writes happen only in :mod:`xuefen.web.services`; who may see what is decided
in :mod:`xuefen.web.permissions` and the ``for_user`` queryset methods here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class OrgKind(models.TextChoices):
    PROVINCE = "province", _("省")
    CITY = "city", _("市")
    DISTRICT = "district", _("区县")
    ZONE = "zone", _("学区（片区）")
    SCHOOL = "school", _("学校")
    INSTITUTION = "institution", _("培训机构")


class Org(models.Model):
    """A node of the tree 省/市/区县/学区/学校, or a training institution.

    ``path`` is the materialised path ("/1/4/9/"), so a subtree is one
    indexed prefix query at any depth."""

    name = models.CharField(_("名称"), max_length=120)
    kind = models.CharField(_("类型"), max_length=16, choices=OrgKind.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    path = models.CharField(max_length=255, db_index=True, editable=False, default="")
    # A jurisdiction binds a policy (or a jurisdiction code, resolved by date);
    # its subtree inherits it.
    policy = models.CharField(_("学分政策"), max_length=64, blank=True)
    policy_options = models.JSONField(_("政策选项"), default=dict, blank=True)
    # 朝阳 第三十条: declarations are accepted in March and September only.
    declaration_months = models.JSONField(_("申报月份"), default=list, blank=True)
    # Annual close (issue 14), set on a district: the 公示 length in working
    # days (永吉 "校长审核、公示" gives none; 5 by default) and the day of the
    # next year by which a school's close should reach the district (肃州
    # 第十一条: "次年1月份 … 审核盖章"), as MM-DD.  Empty: inherited / default.
    publicity_days = models.PositiveSmallIntegerField(_("公示天数（工作日）"), null=True, blank=True)
    close_due = models.CharField(_("年度登记截止日（次年 MM-DD）"), max_length=5, blank=True)

    class Meta:
        ordering = ["path"]
        verbose_name = _("机构")

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        adding = self._state.adding
        super().save(*args, **kwargs)
        path = f"{self.parent.path if self.parent else '/'}{self.pk}/"
        if path != self.path:
            self.path = path
            Org.objects.filter(pk=self.pk).update(path=path)
        if adding:
            # A new unit has no teachers yet, so a zero tally is exact; with a
            # row for every unit from the start, upkeep (services.tallies) is
            # a plain increment and never has to create rows under contention.
            UnitTally.objects.get_or_create(org=self)

    def ancestors(self) -> list[Org]:
        ids = [int(x) for x in self.path.strip("/").split("/") if x]
        by_id = {o.pk: o for o in Org.objects.filter(pk__in=ids)}
        return [by_id[i] for i in ids if i in by_id]

    def binding(self) -> Org | None:
        """The nearest node (itself or an ancestor) that binds a policy."""
        for node in reversed(self.ancestors()):
            if node.policy:
                return node
        return None

    def subtree(self) -> models.QuerySet[Org]:
        return Org.objects.filter(path__startswith=self.path)


class Role(models.TextChoices):
    TEACHER = "teacher", _("教师")
    SCHOOL_OFFICER = "school_officer", _("学校学分管理专员")
    PRINCIPAL = "principal", _("校长")
    DISTRICT_OFFICE = "district_office", _("区县继教办")
    CITY_CENTER = "city_center", _("市级教师发展中心")
    INSTITUTION_STAFF = "institution_staff", _("培训机构")
    SYSADMIN = "sysadmin", _("系统管理员")
    AUDITOR = "auditor", _("审计员")
    EXPERT = "expert", _("评审专家")


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    role = models.CharField(_("角色"), max_length=24, choices=Role.choices)
    # The node the role acts on: a school for officers and principals, a
    # district, the city, an institution; the teacher's school for teachers.
    org = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="staff")

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"


def validate_id_number(value: str) -> None:
    """GB 11643 check digit; the reason, in Chinese, when it fails."""
    from django.core.exceptions import ValidationError

    from xuefen import idnumber

    reason = idnumber.problem(value)
    if reason:
        raise ValidationError(reason)


class TeacherQuerySet(models.QuerySet["Teacher"]):
    def for_user(self, user: Any) -> TeacherQuerySet:
        from xuefen.web.permissions import teacher_scope

        return self.filter(teacher_scope(user))


class Teacher(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="teacher")
    school = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="teachers")
    teacher_no = models.CharField(_("教师编号"), max_length=32, unique=True)
    # 身份证号, never in clear (web.pii): encrypted, and a keyed digest for
    # lookup (services.teachers.teacher_by_id_number) and uniqueness.  Read
    # and set through the ``id_number`` property.
    id_number_enc = models.TextField(_("身份证号（密文）"), editable=False, default="")
    id_hmac = models.CharField(max_length=64, unique=True, editable=False)
    name = models.CharField(_("姓名"), max_length=64)
    stage = models.CharField(_("学段"), max_length=16, blank=True)
    post = models.CharField(_("岗位"), max_length=16, blank=True)
    hired_year = models.PositiveSmallIntegerField(_("首次任教年份"), null=True, blank=True)
    transfer_in_year = models.PositiveSmallIntegerField(_("调入年份"), null=True, blank=True)
    normal_graduate = models.BooleanField(_("师范类毕业"), null=True, blank=True)
    leaves = models.JSONField(_("假期"), default=list, blank=True)
    # Master data (issue 14): where she came from, the year she left service.
    transfer_from = models.CharField(_("调入前所在地区"), max_length=120, blank=True)
    left_year = models.PositiveSmallIntegerField(_("离岗年份"), null=True, blank=True)

    objects = TeacherQuerySet.as_manager()

    class Meta:
        ordering = ["teacher_no"]
        verbose_name = _("教师")

    def __str__(self) -> str:
        return f"{self.name}（{self.teacher_no}）"

    @property
    def id_number(self) -> str:
        """The number in clear, decrypted once per instance."""
        cached: str | None = self.__dict__.get("_id_plain")
        if cached is None:
            from xuefen.web import pii

            cached = pii.decrypt(self.id_number_enc)
            self.__dict__["_id_plain"] = cached
        return cached

    @id_number.setter
    def id_number(self, value: str) -> None:
        from xuefen.web import pii

        self.__dict__["_id_plain"] = value
        self.id_number_enc = pii.encrypt(value)
        self.id_hmac = pii.digest(value)

    def clean_fields(self, exclude: Any = None) -> None:
        from django.core.exceptions import ValidationError

        super().clean_fields(exclude)
        try:
            validate_id_number(self.id_number)
        except ValidationError as e:
            raise ValidationError({"id_number": e.messages}) from e

    @property
    def masked_id(self) -> str:
        return mask_id_number(self.id_number)


def mask_id_number(value: str) -> str:
    if len(value) < 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


class Source(models.TextChoices):
    INSTITUTION = "institution", _("机构导入")
    DECLARATION = "declaration", _("教师申报")
    SCHOOL = "school", _("学校录入")
    TRAINING = "training", _("培训项目")


class Status(models.TextChoices):
    PENDING = "pending", _("待审核")
    SCHOOL_APPROVED = "school_approved", _("学校已审核")
    DISTRICT_APPROVED = "district_approved", _("区县已审核")
    CERTIFIED = "certified", _("已认定")
    RETURNED = "returned", _("已退回")
    REVOKED = "revoked", _("已撤销")


class RecordQuerySet(models.QuerySet["Record"]):
    def for_user(self, user: Any) -> RecordQuerySet:
        from xuefen.web.permissions import record_scope

        return self.filter(record_scope(user))


# --- number ranges (issue 19: stored denial of service) ---
# The widest value each number of a record may hold: far above anything a
# policy counts (a five-year degree is about 2,000 学时 a year), far below
# what the columns can store, so a typing slip or a hostile value is refused
# with a message instead of breaking every page that reads it.  The form, the
# API and the import check apply them through ``web.limits``; the database
# holds the same bounds as CHECK constraints (Record.Meta), so changing one is
# a migration.
_YEARS = (1950, 2100)  # the interchange reader's own bounds (xuefen.model)
RECORD_RANGES: dict[str, tuple[Any, Any]] = {
    "year": _YEARS, "completed_year": _YEARS, "makeup_for_year": _YEARS,
    "hours": (Decimal(0), Decimal(10000)), "absent_hours": (Decimal(0), Decimal(10000)),
    "days": (Decimal(0), Decimal(1000)), "preset_credits": (Decimal(0), Decimal(1000)),
    "topics": (0, 1000), "words": (0, 100_000_000),
}
IMPORT_RANGES: dict[str, tuple[Any, Any]] = {"course_hours": RECORD_RANGES["hours"]}


def _range_constraints(prefix: str, ranges: dict[str, tuple[Any, Any]]) -> list[models.BaseConstraint]:
    return [models.CheckConstraint(
        condition=models.Q(**{f"{name}__isnull": True}) | models.Q(**{f"{name}__gte": lo, f"{name}__lte": hi}),
        name=f"{prefix}_{name}_range") for name, (lo, hi) in ranges.items()]
# --- end number ranges ---


class Record(models.Model):
    """One ledger entry: the facts as declared or imported, in the interchange
    vocabulary, plus its workflow state and the credits the engine computed
    under the bound policy version."""

    teacher = models.ForeignKey(Teacher, on_delete=models.PROTECT, related_name="records")
    uid = models.CharField(_("记录编号"), max_length=64)
    year = models.PositiveSmallIntegerField(_("登记年度"))
    title = models.CharField(_("培训项目名称"), max_length=200, blank=True)
    category = models.CharField(_("学分类别"), max_length=32, blank=True)
    theme = models.CharField(_("主题"), max_length=64, blank=True)
    level = models.CharField(_("级别"), max_length=16, blank=True)
    form = models.CharField(_("形式"), max_length=16, blank=True)
    location = models.CharField(_("地点"), max_length=16, blank=True)
    hours = models.DecimalField(_("学时"), max_digits=9, decimal_places=3, null=True, blank=True)
    days = models.DecimalField(_("天数"), max_digits=7, decimal_places=3, null=True, blank=True)
    preset_credits = models.DecimalField(_("认定学分"), max_digits=9, decimal_places=3, null=True, blank=True)
    result = models.CharField(_("考核结果"), max_length=8, blank=True)
    role = models.CharField(_("角色"), max_length=16, blank=True)
    achievement = models.CharField(_("成果类型"), max_length=16, blank=True)
    program = models.CharField(_("项目"), max_length=32, blank=True)
    absent_hours = models.DecimalField(_("缺勤学时"), max_digits=9, decimal_places=3, null=True, blank=True)
    topics = models.PositiveIntegerField(_("专题数"), null=True, blank=True)
    words = models.PositiveIntegerField(_("字数"), null=True, blank=True)
    approved = models.BooleanField(_("经批准"), null=True, blank=True)
    certificate = models.BooleanField(_("取得证书"), null=True, blank=True)
    subject_related = models.BooleanField(_("所教学科相关"), null=True, blank=True)
    education_system = models.BooleanField(_("教育系统颁发"), null=True, blank=True)
    completed_year = models.PositiveSmallIntegerField(_("结业年度"), null=True, blank=True)
    makeup_for_year = models.PositiveSmallIntegerField(_("补修年度"), null=True, blank=True)

    source = models.CharField(_("来源"), max_length=16, choices=Source.choices)
    status = models.CharField(_("状态"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_reason = models.TextField(_("说明"), blank=True)
    credits = models.DecimalField(_("学分"), max_digits=9, decimal_places=3, default=Decimal(0))
    credit_category = models.CharField(_("计入类别"), max_length=32, blank=True)
    explanation = models.TextField(_("计算依据"), blank=True)
    policy_id = models.CharField(_("政策版本"), max_length=64, blank=True)
    import_batch = models.ForeignKey("ImportBatch", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="records")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped by every transition: a second officer acting on a stale page fails.
    version = models.PositiveIntegerField(default=1)

    objects = RecordQuerySet.as_manager()

    class Meta:
        ordering = ["teacher", "year", "uid"]
        constraints = [models.UniqueConstraint(fields=["teacher", "uid"], name="record_uid_per_teacher"),
                       *_range_constraints("record", RECORD_RANGES)]
        verbose_name = _("学分记录")

    def __str__(self) -> str:
        return f"{self.uid} {self.title}"


class Evidence(models.Model):
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="evidence")
    file = models.FileField(upload_to="evidence/%Y/%m/")
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)


class ImportBatch(models.Model):
    """One uploaded roster file, in two phases (services.imports): validated
    as a whole (VALIDATING → INVALID or VALID), then, when the uploader
    confirms, written in one transaction (WRITING → DONE)."""

    class State(models.TextChoices):
        VALIDATING = "validating", _("校验中")
        INVALID = "invalid", _("有错误")
        VALID = "valid", _("待确认")
        WRITING = "writing", _("写入中")
        DONE = "done", _("已完成")

    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="imports")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    file_name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64, db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.VALIDATING)
    total_rows = models.PositiveIntegerField(default=0)
    done_rows = models.PositiveIntegerField(default=0)
    created_rows = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The uploaded file as received: phase 2 (and the background task) reads
    # it again, so what is written is exactly what was validated.
    file = models.FileField(upload_to="imports/%Y/%m/", blank=True)
    # 课程学时 given on the upload form: no row may claim more hours.
    course_hours = models.DecimalField(_("课程学时"), max_digits=9, decimal_places=3, null=True, blank=True)
    # --- lease (issue 19 item 6: stuck imports) ---
    # Written with every progress step; a running batch whose heartbeat is
    # older than IMPORT_LEASE_SECONDS has lost its worker (services.imports.recover).
    # Each run (check or write) carries the attempt it was started for, so a
    # run that was given up on and wakes up later changes nothing.
    heartbeat = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=0)
    # --- end lease ---
    # What the file holds (issue 14): credit records, or teachers' master data
    # (services.masterdata, through the same two phases).
    kind = models.CharField(_("导入内容"), max_length=16, default="records",
                            choices=[("records", _("学分记录")), ("teachers", _("教师信息"))])

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = _range_constraints("importbatch", IMPORT_RANGES)


class TeacherResult(models.Model):
    """The engine's verdict for one teacher in her current cycle, kept current
    by the services on every change, so dashboards never wait for a batch."""

    teacher = models.OneToOneField(Teacher, on_delete=models.CASCADE, related_name="result")
    policy_id = models.CharField(max_length=64)
    cycle_start = models.PositiveSmallIntegerField()
    cycle_end = models.PositiveSmallIntegerField()
    passed = models.BooleanField()
    status = models.CharField(max_length=16)  # 已达标（提前完成） is the longest
    total = models.DecimalField(max_digits=10, decimal_places=3)
    year_passed = models.BooleanField(null=True)
    year_total = models.DecimalField(max_digits=10, decimal_places=3, default=Decimal(0))
    data = models.JSONField(default=dict)
    computed_at = models.DateTimeField(auto_now=True)


class UnitTally(models.Model):
    """How the teachers of one unit's whole subtree stand, counted from their
    stored results: the dashboard's figures for the unit, read as one row.

    Kept current by ``services.tallies``, which applies each teacher's change
    (old standing → new) to her school and every ancestor in the transaction
    that made it; ``rebuild_tallies`` recounts everything from scratch.
    Plain integers, not unsigned: a tally that has drifted must still accept
    the next change, and the rebuild repairs it."""

    org = models.OneToOneField(Org, primary_key=True, on_delete=models.CASCADE, related_name="tally")
    teachers = models.IntegerField(default=0)
    passed = models.IntegerField(default=0)
    in_progress = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    unevaluated = models.IntegerField(default=0)
    # Of the teachers whose current year is checked (year_checked), how many
    # have met its minimums.
    year_passed = models.IntegerField(default=0)
    year_checked = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.org_id}: {self.teachers}"


class AppendOnlyQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        # The one update let through: deleting a user account detaches her
        # entries (on_delete=SET_NULL, through the base manager); the name stays.
        if kwargs == {"actor": None}:
            return super().update(**kwargs)
        raise PermissionError("审计日志只能追加，不能修改")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("审计日志不能删除")

    def _seal(self, *, seq: int, prev_hash: str, hash: str) -> int:
        """Only for services.audit.seal: the chain columns, set once."""
        return super().update(seq=seq, prev_hash=prev_hash, hash=hash)


class AuditEntry(models.Model):
    """Append-only: rows are inserted by services.audit.log and never
    updated or deleted (enforced here, for single rows, querysets and the
    base manager, and in the database by triggers — see apps.py).

    Tamper-evident: once committed, an entry is sealed into the hash chain
    (``seq``, ``prev_hash``, ``hash``; services.audit.seal)."""

    objects = AppendOnlyQuerySet.as_manager()

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    org_path = models.CharField(max_length=255, db_index=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    comment = models.TextField(blank=True)
    # The hash chain (security area): position, the previous entry's hash and
    # this entry's, set once by services.audit.seal; the triggers refuse
    # every other change.
    seq = models.BigIntegerField(null=True, unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["-at", "-id"]
        # The ORM's own deletes and updates (_base_manager, related managers)
        # go through the append-only queryset too.
        base_manager_name = "objects"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("审计日志只能追加，不能修改")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("审计日志不能删除")


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    message = models.CharField(max_length=300)
    record = models.ForeignKey(Record, null=True, blank=True, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)
    read = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]


class LoginFailure(models.Model):
    """Failed logins, for throttling per username and per address."""

    username = models.CharField(max_length=150, db_index=True)
    ip = models.GenericIPAddressField(null=True, db_index=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)


# --- office work (issue 16): batch review jobs --------------------------------


class BulkReview(models.Model):
    """One "approve / return all selected" action over many records
    (services.review.bulk_review): all of them or none, one audit entry per
    record.  Large ones run in the background (tasks.bulk_review) and the
    queue page polls ``done`` for its progress bar."""

    class State(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("处理中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("未执行")

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32)
    comment = models.TextField(blank=True)
    record_ids = models.JSONField(default=list)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class SpotCheck(models.Model):
    """抽检 (朝阳 第三十条; 山东 第十四条): a sample of the counting records
    under a district, drawn by a rule (year, source, category, size) and a
    seed, so the same draw can be replayed from the rule and the seed."""

    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="spot_checks")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    seed = models.BigIntegerField()
    size = models.PositiveIntegerField()
    rule = models.JSONField(default=dict, blank=True)
    pool = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class SpotCheckItem(models.Model):
    class Result(models.TextChoices):
        OPEN = "open", _("待核查")
        PASSED = "passed", _("属实")
        FAILED = "failed", _("不属实")

    spot_check = models.ForeignKey(SpotCheck, on_delete=models.CASCADE, related_name="items")
    record = models.ForeignKey(Record, on_delete=models.PROTECT, related_name="spot_checks")
    result = models.CharField(max_length=8, choices=Result.choices, default=Result.OPEN)
    note = models.TextField(blank=True)
    checked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["record_id"]


# --- security (issues 17 and 19): accounts, API tokens, audit anchors ---------


class AccountState(models.Model):
    """Per-user security state beside Django's user.

    ``must_change_password`` is set for accounts an administrator created or
    reset (services.accounts) and sends the user to the change page first;
    ``session_epoch`` is bumped at logout and password change, which ends
    every session of the user (views.security.SessionGuard)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_state")
    must_change_password = models.BooleanField(default=False)
    session_epoch = models.PositiveIntegerField(default=0)
    password_changed_at = models.DateTimeField(null=True, blank=True)


class ApiToken(models.Model):
    """An API access token, stored only as its SHA-256 digest; with a refresh
    token (digest too) that buys a new pair once.  Deleted at logout and
    password change (services.accounts.end_sessions)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    refresh_digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField()
    refresh_expires = models.DateTimeField()


class AuditAnchor(models.Model):
    """The chain's head written aside at intervals (``xuefen manage audit
    anchor``): rewriting the chain up to an anchored entry changes a hash
    recorded here.  Append-only like the log."""

    at = models.DateTimeField(auto_now_add=True)
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]


# ============================================================================
# Annual close (年度登记/年审) and certificates — issue 14
# ============================================================================


class AnnualClose(models.Model):
    """One school's year, closed step by step (services.annual): the school
    officer closes it, the principal signs it off and its 公示 begins (永吉：
    "报请校（园）长审核、公示"), teachers may file 异议 until the 公示 ends,
    the officer answers each and sends it to the district, which confirms it
    (山东2009 (十四) "审核合格者，予以确定"; 肃州 第十一条) or returns it.
    From CLOSED to CONFIRMED the year is locked (services.annual.ensure_year_open)."""

    class State(models.TextChoices):
        CLOSED = "closed", _("待校长签发")
        PUBLICITY = "publicity", _("公示中")
        SUBMITTED = "submitted", _("待区县确认")
        CONFIRMED = "confirmed", _("已确认")
        RETURNED = "returned", _("已退回")
        REOPENED = "reopened", _("已重新开放")

    LOCKED = (State.CLOSED, State.PUBLICITY, State.SUBMITTED, State.CONFIRMED)

    school = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="annual_closes")
    year = models.PositiveSmallIntegerField(_("年度"))
    state = models.CharField(_("状态"), max_length=16, choices=State.choices, default=State.CLOSED)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    signed_at = models.DateTimeField(null=True, blank=True)
    publicity_start = models.DateField(_("公示开始"), null=True, blank=True)
    publicity_end = models.DateField(_("公示截止"), null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(_("说明"), blank=True)
    # Each teacher's figures for the year at the close: the list the 公示 shows
    # and the certificates print, so they do not move while the year is locked.
    # {teacher id: {"passed", "total", "categories": {name: counted}, "records": [ids]}}
    snapshot = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["school", "-year"]
        constraints = [models.UniqueConstraint(fields=["school", "year"], name="annual_close_per_school_year")]

    def __str__(self) -> str:
        return f"{self.school} {self.year} {self.get_state_display()}"

    @property
    def locked(self) -> bool:
        return self.state in self.LOCKED


class Objection(models.Model):
    """异议 filed by a teacher during the 公示, answered by the school officer."""

    close = models.ForeignKey(AnnualClose, on_delete=models.CASCADE, related_name="objections")
    teacher = models.ForeignKey(Teacher, on_delete=models.PROTECT, related_name="objections")
    reason = models.TextField(_("异议理由"))
    filed_at = models.DateTimeField(auto_now_add=True)
    answer = models.TextField(_("答复"), blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["filed_at", "pk"]


class Certificate(models.Model):
    """An issued document: an annual certificate, a cycle 结业证书 or a 学分证明.
    Its public check (/verify/<token>/) reads this row: 已撤销 when it was
    voided (补办 replaces it) or a record it counted has been revoked since."""

    class Kind(models.TextChoices):
        ANNUAL = "annual", _("年度继续教育证书")
        CYCLE = "cycle", _("周期培训结业证书")
        STATEMENT = "statement", _("学分证明")

    teacher = models.ForeignKey(Teacher, on_delete=models.PROTECT, related_name="certificates")
    kind = models.CharField(_("类型"), max_length=16, choices=Kind.choices)
    number = models.CharField(_("证书编号"), max_length=40, unique=True)
    # random, 128 bits; the URL carries it signed (services.certificates.url_token)
    token = models.CharField(max_length=40, unique=True)
    period_start = models.PositiveSmallIntegerField(_("起始年度"))
    period_end = models.PositiveSmallIntegerField(_("截止年度"))
    school_name = models.CharField(_("学校"), max_length=120)
    issuer = models.CharField(_("发证机关"), max_length=120)
    issued_at = models.DateTimeField(auto_now_add=True)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    total = models.DecimalField(max_digits=10, decimal_places=3)
    categories = models.JSONField(default=dict, blank=True)
    record_ids = models.JSONField(default=list, blank=True)
    policy_id = models.CharField(max_length=64, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)
    replaced_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-issued_at", "-pk"]


# Importable by path for the API schema's enum names (settings.SPECTACULAR_SETTINGS).
AnnualCloseState = AnnualClose.State
ImportBatchState = ImportBatch.State
CertificateKind = Certificate.Kind
ImportBatchKinds = ImportBatch._meta.get_field("kind").choices


# ---------------------------------------------------------------------------
# Training: projects, courses, classes, attendance, results, 校本研修 (issue 15)
#
# 朝阳 附件4 (training projects: 申报 → 论证 → 立项 → 实施 → 评估), 附件5
# (courses), 附件6 (校本研修 projects: plan → 论证 → activities with sign-in →
# 验收), 附件7 (学区 training).  Writes in services/training.py and
# services/research.py; credits follow through the ledger (services/ledger.py).


class ProjectKind(models.TextChoices):
    TRAINING = "training", _("培训项目")
    RESEARCH = "research", _("校本研修项目")


class ProjectState(models.TextChoices):
    SUBMITTED = "submitted", _("待论证")
    REVIEWED = "reviewed", _("已论证")
    APPROVED = "approved", _("已立项")
    RETURNED = "returned", _("已退回")
    PASSED = "passed", _("验收通过")
    FAILED = "failed", _("验收未通过")


class TrainingProjectQuerySet(models.QuerySet["TrainingProject"]):
    def for_user(self, user: Any) -> TrainingProjectQuerySet:
        from xuefen.web.permissions import project_scope

        return self.filter(project_scope(user))


class TrainingProject(models.Model):
    """One 申报 (朝阳 附件4 第六条; 附件6 校本研修; 附件7 学区), its 论证 and 立项.
    Its approval is what the ``approved`` fact of the records it produces means."""

    kind = models.CharField(_("类型"), max_length=16, choices=ProjectKind.choices, default=ProjectKind.TRAINING)
    applicant = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="training_projects")
    # The jurisdiction node whose office approves it (the applicant's district).
    approver_org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    applied_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(_("项目名称"), max_length=200)
    year = models.PositiveSmallIntegerField(_("年度"))
    category = models.CharField(_("学分类别"), max_length=32, blank=True)
    theme = models.CharField(_("主题"), max_length=64, blank=True)
    level = models.CharField(_("级别"), max_length=16, blank=True)
    form = models.CharField(_("形式"), max_length=16, blank=True)
    location = models.CharField(_("地点"), max_length=16, blank=True)
    hours = models.DecimalField(_("学时"), max_digits=9, decimal_places=3)
    capacity = models.PositiveIntegerField(_("人数"), default=0)
    target = models.CharField(_("培训对象"), max_length=200, blank=True)
    budget = models.DecimalField(_("经费预算（元）"), max_digits=12, decimal_places=2, null=True, blank=True)
    plan = models.TextField(_("实施方案"), blank=True)
    state = models.CharField(_("状态"), max_length=16, choices=ProjectState.choices, default=ProjectState.SUBMITTED)
    state_reason = models.TextField(_("说明"), blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    objects = TrainingProjectQuerySet.as_manager()

    class Meta:
        ordering = ["-year", "-id"]

    def __str__(self) -> str:
        return self.title


class ProjectScore(models.Model):
    """One expert's 论证 of a project: a score per criterion and a comment."""

    project = models.ForeignKey(TrainingProject, on_delete=models.CASCADE, related_name="scores")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    scores = models.JSONField(default=dict)
    total = models.DecimalField(max_digits=6, decimal_places=2)
    comment = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "expert"], name="one_score_per_expert")]


class Course(models.Model):
    """A course within a project (朝阳 附件5): hours, lecturers, resources."""

    project = models.ForeignKey(TrainingProject, on_delete=models.CASCADE, related_name="courses")
    title = models.CharField(_("课程名称"), max_length=200)
    hours = models.DecimalField(_("学时"), max_digits=9, decimal_places=3)
    lecturers = models.CharField(_("授课教师"), max_length=200, blank=True)
    resource_url = models.URLField(_("课程资源链接"), blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title


class TrainingClass(models.Model):
    """A class (组班) of a course, with its 班主任; closing it creates the credits."""

    class State(models.TextChoices):
        OPEN = "open", _("报名中")
        CLOSED = "closed", _("已结班")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="classes")
    name = models.CharField(_("班级名称"), max_length=120)
    head = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                             verbose_name=_("班主任"))
    capacity = models.PositiveIntegerField(_("人数上限"))
    state = models.CharField(_("状态"), max_length=8, choices=State.choices, default=State.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    @property
    def record_uid(self) -> str:
        """The stable 记录编号 of every participant's record from this class:
        a roster of the same class imported with it is refused as a duplicate."""
        return f"TC{self.pk}"


class Enrolment(models.Model):
    class State(models.TextChoices):
        ENROLLED = "enrolled", _("已报名")
        WAITING = "waiting", _("候补")
        WITHDRAWN = "withdrawn", _("已退出")

    klass = models.ForeignKey(TrainingClass, on_delete=models.CASCADE, related_name="enrolments")
    teacher = models.ForeignKey(Teacher, on_delete=models.PROTECT, related_name="enrolments")
    state = models.CharField(_("状态"), max_length=12, choices=State.choices, default=State.ENROLLED)
    result = models.CharField(_("考核结果"), max_length=8, blank=True)
    record = models.ForeignKey(Record, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Why no credits (a 校本研修 project failed 验收): shown to the member.
    withheld_reason = models.TextField(_("未认定原因"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["klass", "teacher"], name="one_enrolment_per_class")]


class ClassSession(models.Model):
    """One session (or 校本研修 activity) with its sign-in window."""

    klass = models.ForeignKey(TrainingClass, on_delete=models.CASCADE, related_name="sessions")
    title = models.CharField(_("内容"), max_length=200)
    starts_at = models.DateTimeField(_("开始时间"))
    ends_at = models.DateTimeField(_("结束时间"))
    hours = models.DecimalField(_("学时"), max_digits=7, decimal_places=3)
    materials_url = models.URLField(_("材料链接"), blank=True)

    class Meta:
        ordering = ["starts_at", "id"]


class Attendance(models.Model):
    class Via(models.TextChoices):
        QR = "qr", _("扫码签到")
        LIST = "list", _("班主任勾选")

    session = models.ForeignKey(ClassSession, on_delete=models.CASCADE, related_name="attendance")
    teacher = models.ForeignKey(Teacher, on_delete=models.PROTECT, related_name="+")
    via = models.CharField(max_length=8, choices=Via.choices)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "teacher"], name="one_signin_per_session")]


class ClassSurvey(models.Model):
    """A participant's 评估 of her class (朝阳 附件4 第十七条 问卷调查)."""

    enrolment = models.OneToOneField(Enrolment, on_delete=models.CASCADE, related_name="survey")
    ratings = models.JSONField(default=dict)
    comment = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)
