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

# Which role moves a record out of which state (the review chain of
# 北京 第三条 / 赤峰 第十四、十五条 / 山东 第十九、二十条).
TRANSITIONS: dict[str, dict[str, str]] = {
    "school_approve": {"role": Role.SCHOOL_OFFICER, "from": Status.PENDING, "to": Status.SCHOOL_APPROVED},
    "district_approve": {"role": Role.DISTRICT_OFFICE, "from": Status.SCHOOL_APPROVED,
                         "to": Status.DISTRICT_APPROVED},
    "certify": {"role": Role.CITY_CENTER, "from": Status.DISTRICT_APPROVED, "to": Status.CERTIFIED},
}

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
        return p.role in (Role.SCHOOL_OFFICER, Role.DISTRICT_OFFICE, Role.CITY_CENTER)
    if action == "revoke":
        return p.role in (Role.DISTRICT_OFFICE, Role.CITY_CENTER)
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
