"""Who may see and do what — decided here and nowhere else.

Scope rule: every officer sees and acts only within the subtree of the node
their profile names.  Teachers see themselves.  Institution staff see the
records their institution imported.  The auditor reads the audit log and
nothing else; the system administrator manages organisations and accounts
but does not review credits.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from xuefen.web.models import Org, Profile, Record, Role, Status, Teacher

NOTHING = Q(pk__in=[])

# The review chain (北京 第三条 / 赤峰 第十四、十五条 / 山东 第十九、二十条):
# which level holds a record in each state, the approval it performs and the
# state that follows.  The level holding a record is the only one that may
# approve, return or correct it there; views, the API and the queues derive
# what they show and allow from this one table.
REVIEW_CHAIN: tuple[tuple[str, str, str, str], ...] = (
    # (state, holding role, approval action, next state)
    (Status.PENDING, Role.SCHOOL_OFFICER, "school_approve", Status.SCHOOL_APPROVED),
    (Status.SCHOOL_APPROVED, Role.DISTRICT_OFFICE, "district_approve", Status.DISTRICT_APPROVED),
    (Status.DISTRICT_APPROVED, Role.CITY_CENTER, "certify", Status.CERTIFIED),
)

# Which role moves a record out of which state, by approval action.
TRANSITIONS: dict[str, dict[str, str]] = {
    action: {"role": holder, "from": state, "to": after} for state, holder, action, after in REVIEW_CHAIN
}
HOLDER: dict[str, str] = {state: holder for state, holder, _action, _after in REVIEW_CHAIN}
REVIEW_ROLES = tuple(holder for _state, holder, _action, _after in REVIEW_CHAIN)
# Revocation (山东 第二十三条) is the district's and the city's, in any state but revoked.
REVOKE_ROLES = (Role.DISTRICT_OFFICE, Role.CITY_CENTER)

# States whose credits count toward the teacher's figures.  Pending and
# returned records are shown to the teacher but do not count yet.
COUNTING = (Status.SCHOOL_APPROVED, Status.DISTRICT_APPROVED, Status.CERTIFIED)


def profile(user: Any) -> Profile | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        p: Profile = user.profile
    except Profile.DoesNotExist:
        return None
    return p


def role(user: Any) -> str | None:
    p = profile(user)
    return p.role if p else None


OFFICER_ROLES = (Role.SCHOOL_OFFICER, Role.PRINCIPAL, Role.DISTRICT_OFFICE, Role.CITY_CENTER)


def teacher_scope(user: Any) -> Q:
    p = profile(user)
    if p is None:
        return NOTHING
    if p.role == Role.TEACHER:
        return Q(user=user)
    if p.role in OFFICER_ROLES and p.org is not None:
        return Q(school__path__startswith=p.org.path)
    if p.role == Role.INSTITUTION_STAFF and p.org is not None:
        # A subquery, not a join across ``records``: the join yields one row
        # per imported record, so ``get(pk=…)`` on the scoped queryset raised
        # MultipleObjectsReturned (a 500) for a teacher with two such records.
        return Q(pk__in=Record.objects.filter(import_batch__org=p.org).values("teacher_id"))
    return NOTHING


def sees_every_teacher_under(user: Any, org: Org) -> bool:
    """Whether :func:`teacher_scope` holds every teacher of ``org``'s subtree,
    so that a figure over the whole unit (its stored tally) is exactly the
    figure over the teachers this user may see there."""
    p = profile(user)
    return bool(p and p.role in OFFICER_ROLES and p.org is not None and org.path.startswith(p.org.path))


def record_scope(user: Any) -> Q:
    p = profile(user)
    if p is None:
        return NOTHING
    if p.role == Role.TEACHER:
        return Q(teacher__user=user)
    if p.role in OFFICER_ROLES and p.org is not None:
        return Q(teacher__school__path__startswith=p.org.path)
    if p.role == Role.INSTITUTION_STAFF and p.org is not None:
        return Q(import_batch__org=p.org)
    return NOTHING


def org_scope(user: Any) -> Q:
    p = profile(user)
    if p is None or p.org is None:
        return NOTHING
    if p.role in OFFICER_ROLES:
        return Q(path__startswith=p.org.path)
    if p.role == Role.SYSADMIN:
        return Q()
    return Q(pk=p.org.pk)


def can_view_teacher(user: Any, teacher: Teacher) -> bool:
    return Teacher.objects.filter(teacher_scope(user), pk=teacher.pk).exists()


def can_transition(user: Any, record: Record, action: str) -> bool:
    """May this user move this record by ``action``?  Scope and role only;
    the current state is checked by the service under a row lock."""
    p = profile(user)
    if p is None or p.org is None:
        return False
    if not record.teacher.school.path.startswith(p.org.path):
        return False
    if action in TRANSITIONS:
        return p.role == TRANSITIONS[action]["role"]
    if action in ("return", "correct"):
        return p.role in REVIEW_ROLES
    if action == "revoke":
        return p.role in REVOKE_ROLES
    if action == "spot_check":
        return p.role == Role.DISTRICT_OFFICE
    return False


def can_declare(user: Any, teacher: Teacher) -> bool:
    return role(user) == Role.TEACHER and teacher.user_id == user.pk


def can_enter_school_record(user: Any, teacher: Teacher) -> bool:
    p = profile(user)
    return bool(p and p.role == Role.SCHOOL_OFFICER and p.org and teacher.school.path.startswith(p.org.path))


def can_import(user: Any, org: Org) -> bool:
    p = profile(user)
    if p is None or p.org is None:
        return False
    if p.role == Role.INSTITUTION_STAFF:
        return org.pk == p.org.pk
    return p.role in (Role.SCHOOL_OFFICER, Role.DISTRICT_OFFICE, Role.CITY_CENTER) and org.path.startswith(p.org.path)


def import_scope(user: Any) -> Q:
    """Import batches (``ImportBatch``) a user may see: institution staff their
    own institution's, the officers who may import the batches into their
    subtree (the roles of :func:`can_import`); nobody else."""
    p = profile(user)
    if p is None or p.org is None:
        return NOTHING
    if p.role == Role.INSTITUTION_STAFF:
        return Q(org=p.org)
    if p.role in (Role.SCHOOL_OFFICER, Role.DISTRICT_OFFICE, Role.CITY_CENTER):
        return Q(org__path__startswith=p.org.path)
    return NOTHING


def can_view_results(user: Any, teacher: Teacher) -> bool:
    """The engine's verdict on a teacher: the teacher herself and the officers
    over her school.  Institution staff see the records they imported, not the
    teacher's standing."""
    p = profile(user)
    if p is None or p.role not in (Role.TEACHER, *OFFICER_ROLES):
        return False
    return can_view_teacher(user, teacher)


def can_read_audit(user: Any) -> bool:
    return role(user) in (Role.AUDITOR, Role.SYSADMIN)


def audit_scope(user: Any) -> Q:
    """Audit entries a reader may search: the system administrator all of
    them; an auditor those of her organisation's subtree, plus the entries
    tied to no organisation (platform-wide events)."""
    p = profile(user)
    if p is None or not can_read_audit(user):
        return NOTHING
    if p.role == Role.SYSADMIN:
        return Q()
    if p.org is None:
        return NOTHING
    return Q(org_path__startswith=p.org.path) | Q(org_path="")


def sees_full_id_number(user: Any) -> bool:
    """Full 身份证号 only for those who must match identities: the district
    office and city center.  Everyone else sees it masked."""
    return role(user) in (Role.DISTRICT_OFFICE, Role.CITY_CENTER)


# --- review chain, queues and record actions (office work) -------------------


def holds(user: Any, record: Record) -> bool:
    """Whether the user's level is the one holding ``record`` in its current
    state (the school a pending record, the district a school-approved one…).
    Only that level may approve, return or correct it there."""
    return HOLDER.get(record.status) == role(user)


def approve_step(user: Any) -> str | None:
    """The approval action this user's role performs in the chain, if any."""
    r = role(user)
    return next((action for _s, holder, action, _a in REVIEW_CHAIN if holder == r), None)


def queue_state(user: Any) -> str | None:
    """The state of the records waiting for this user's level."""
    r = role(user)
    return next((state for state, holder, _a, _n in REVIEW_CHAIN if holder == r), None)


RECORD_ACTIONS = ("school_approve", "district_approve", "certify", "return", "correct", "revoke")


def record_actions(user: Any, record: Record) -> set[str]:
    """The actions this user may take on ``record`` in its current state:
    scope and role (:func:`can_transition`) and the chain's state rules,
    which the services check again under the row lock."""
    out: set[str] = set()
    for action in RECORD_ACTIONS:
        if not can_transition(user, record, action):
            continue
        if action in TRANSITIONS:
            ok = record.status == TRANSITIONS[action]["from"]
        elif action in ("return", "correct"):
            ok = holds(user, record)
        else:
            ok = record.status != Status.REVOKED
        if ok:
            out.add(action)
    return out


def is_officer(user: Any) -> bool:
    """Officer pages (dashboards, 公示, teacher pages): the roles that act on
    a node of the tree."""
    p = profile(user)
    return bool(p and p.role in OFFICER_ROLES and p.org is not None)


def is_teacher(user: Any) -> bool:
    return role(user) == Role.TEACHER


def is_sysadmin(user: Any) -> bool:
    return role(user) == Role.SYSADMIN


def can_spot_check(user: Any, org: Org) -> bool:
    """抽检 (朝阳 第三十条; 山东 第十四条): the district office, in its district."""
    p = profile(user)
    return bool(p and p.role == Role.DISTRICT_OFFICE and p.org is not None and org.path.startswith(p.org.path))


def can_enter_school_credits(user: Any) -> bool:
    """The 录入校本研修学分 page: school officers (each teacher is checked by
    :func:`can_enter_school_record`)."""
    p = profile(user)
    return bool(p and p.role == Role.SCHOOL_OFFICER and p.org is not None)


def can_administer(user: Any) -> bool:
    """The administration pages (org tree, accounts and roles, policy binding
    and options, declaration windows): the system administrator only."""
    return is_sysadmin(user)


IMPORT_ROLES = (Role.INSTITUTION_STAFF, Role.SCHOOL_OFFICER, Role.DISTRICT_OFFICE, Role.CITY_CENTER)


def is_importer(user: Any) -> bool:
    """The import pages: institution staff and the offices (each unit is checked by :func:`can_import`)."""
    p = profile(user)
    return bool(p and p.role in IMPORT_ROLES and p.org is not None)


def import_targets(user: Any) -> Q:
    """The units a user may import for (as ``Org`` filters): an institution
    itself, an office any node of its subtree (:func:`can_import`)."""
    p = profile(user)
    if p is None or p.org is None or not is_importer(user):
        return NOTHING
    if p.role == Role.INSTITUTION_STAFF:
        return Q(pk=p.org.pk)
    return Q(path__startswith=p.org.path)


def can_view_bulk_job(user: Any, job: Any) -> bool:
    """A batch review job's page: the officer who started it."""
    return bool(getattr(user, "is_authenticated", False) and job.actor_id == user.pk)


# --- security (issues 17 and 19): accounts ------------------------------------


def can_manage_accounts(user: Any) -> bool:
    """Resetting passwords and lifting login locks: the system administrator
    (who manages accounts, see the module docstring)."""
    return can_administer(user)


def can_change_password(actor: Any, user: Any) -> bool:
    """Her own password, or anyone's for the account manager."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    return bool(actor.pk == user.pk or can_manage_accounts(actor))


def can_use_second_factor(user: Any) -> bool:
    """The optional TOTP second factor is offered to the district office, the
    city center and the system administrator (settings.OTP_ROLES)."""
    from django.conf import settings

    return role(user) in settings.OTP_ROLES
# ---------------------------------------------------------------------------
# Annual close (年度登记), 公示 objections and certificates — issue 14
# ---------------------------------------------------------------------------


def _over(user: Any, org: Org, *roles: str) -> bool:
    """The user has one of ``roles`` on ``org`` or on a node above it."""
    p = profile(user)
    return bool(p and p.org is not None and p.role in roles and org.path.startswith(p.org.path))


def can_close_year(user: Any, school: Org) -> bool:
    """The school officer closes the year and answers objections (永吉 学分管理专员)."""
    return _over(user, school, Role.SCHOOL_OFFICER)


def can_sign_year(user: Any, school: Org) -> bool:
    """The principal signs the closed year off (永吉 "报请校（园）长审核、公示")."""
    return _over(user, school, Role.PRINCIPAL)


def can_confirm_year(user: Any, school: Org) -> bool:
    """The district office confirms, returns and reopens (永吉 县级年审; 山东2009 (十四))."""
    return _over(user, school, Role.DISTRICT_OFFICE)


def can_view_close(user: Any, school: Org) -> bool:
    """The close pages of a school: the officers over it, and its teachers
    (who see the 公示 list and file 异议)."""
    p = profile(user)
    if p is None:
        return False
    if p.role == Role.TEACHER:
        return Teacher.objects.filter(user=user, school=school).exists()
    return _over(user, school, *OFFICER_ROLES)


def can_object(user: Any, teacher: Teacher) -> bool:
    return role(user) == Role.TEACHER and teacher.user_id == user.pk


def can_set_district(user: Any, district: Org) -> bool:
    """The district's own settings (公示天数, 截止日): its district office."""
    p = profile(user)
    return bool(p and p.role == Role.DISTRICT_OFFICE and p.org is not None and p.org.pk == district.pk)


def can_get_certificate(user: Any, teacher: Teacher) -> bool:
    """A teacher's certificates and statement: the teacher herself and the
    officers over her school (who print them for the school)."""
    return can_view_results(user, teacher) and role(user) != Role.INSTITUTION_STAFF


def can_reissue_certificate(user: Any, teacher: Teacher) -> bool:
    """补办 (永吉: "进修学校培训部门查验有关培训资料 … 方可补办"): the district office."""
    return _over(user, teacher.school, Role.DISTRICT_OFFICE)


def close_scope(user: Any) -> Q:
    """Annual closes (``AnnualClose``) a user may see: the officers' subtree,
    a teacher her own school's."""
    p = profile(user)
    if p is None or p.org is None:
        return NOTHING
    if p.role == Role.TEACHER:
        return Q(school__teachers__user=user)
    if p.role in OFFICER_ROLES:
        return Q(school__path__startswith=p.org.path)
    return NOTHING


def certificate_scope(user: Any) -> Q:
    """Certificates a user may list: a teacher her own, officers those of their subtree."""
    p = profile(user)
    if p is None or p.org is None:
        return NOTHING
    if p.role == Role.TEACHER:
        return Q(teacher__user=user)
    if p.role in OFFICER_ROLES:
        return Q(teacher__school__path__startswith=p.org.path)
    return NOTHING


def can_import_teachers(user: Any, org: Org) -> bool:
    """Teacher master data (issue 14): the offices over the unit — not a
    training institution, which only reports training."""
    return _over(user, org, Role.SCHOOL_OFFICER, Role.DISTRICT_OFFICE, Role.CITY_CENTER)


def offers_teacher_import(user: Any) -> bool:
    """Whether the import page offers the teacher-file kind (each unit is
    then checked by :func:`can_import_teachers`)."""
    return role(user) in (Role.SCHOOL_OFFICER, Role.DISTRICT_OFFICE, Role.CITY_CENTER)
# ---------------------------------------------------------------------------
# Training projects, classes and 校本研修 (issue 15).
#
# Applicants (朝阳 附件4 第三条: 培训机构, 学校, 学区): institution staff and
# school officers, for their own unit.  Experts (评审专家, 附件4 第七条) score
# the projects of the jurisdiction their profile names.  The office of that
# jurisdiction (区县继教办, or the city center above it) approves (立项) and
# accepts 校本研修 (附件6 第二十一条 验收).  Teachers see approved projects of
# the jurisdictions above their school, and the classes they are in.

APPLICANT_ROLES = (Role.INSTITUTION_STAFF, Role.SCHOOL_OFFICER)
DECIDING_ROLES = (Role.DISTRICT_OFFICE, Role.CITY_CENTER)


def _ancestor_ids(org: Org) -> list[int]:
    return [int(x) for x in org.path.strip("/").split("/") if x]


def project_scope(user: Any) -> Q:
    from xuefen.web.models import ProjectKind, ProjectState

    p = profile(user)
    if p is None:
        return NOTHING
    if p.role == Role.TEACHER:
        teacher = Teacher.objects.filter(user=user).select_related("school").first()
        if teacher is None:
            return NOTHING
        # Training projects open to her jurisdiction; a 校本研修 project only
        # when she is one of its members.
        visible = Q(approver_org_id__in=_ancestor_ids(teacher.school), kind=ProjectKind.TRAINING,
                    state__in=(ProjectState.APPROVED, ProjectState.PASSED, ProjectState.FAILED))
        return visible | Q(courses__classes__enrolments__teacher=teacher)
    if p.org is None:
        return NOTHING
    if p.role in APPLICANT_ROLES:
        return Q(applicant=p.org)
    if p.role in (*DECIDING_ROLES, Role.EXPERT):
        return Q(approver_org__path__startswith=p.org.path)
    if p.role == Role.PRINCIPAL:
        return Q(applicant__path__startswith=p.org.path)
    return NOTHING


def can_apply(user: Any, org: Org) -> bool:
    p = profile(user)
    return bool(p and p.role in APPLICANT_ROLES and p.org is not None and p.org.pk == org.pk)


def can_score(user: Any, project: Any) -> bool:
    p = profile(user)
    return bool(p and p.role == Role.EXPERT and p.org is not None
                and project.approver_org.path.startswith(p.org.path))


def can_decide(user: Any, project: Any) -> bool:
    """立项 / 退回 / 验收: the office of the project's jurisdiction or above."""
    p = profile(user)
    return bool(p and p.role in DECIDING_ROLES and p.org is not None
                and project.approver_org.path.startswith(p.org.path))


def can_manage_project(user: Any, project: Any) -> bool:
    """Courses, classes and 校本研修 members: the applicant unit's own staff."""
    p = profile(user)
    return bool(p and p.role in APPLICANT_ROLES and p.org is not None and p.org.pk == project.applicant_id)


def can_manage_class(user: Any, klass: Any) -> bool:
    """Sessions, ticks, results, closing: the class's 班主任 or the applicant's staff."""
    if getattr(user, "pk", None) is not None and klass.head_id == user.pk:
        return True
    return can_manage_project(user, klass.course.project)


def can_enrol(user: Any, teacher: Teacher) -> bool:
    return role(user) == Role.TEACHER and teacher.user_id == user.pk
