"""The training API (issue 15): projects, courses, classes, enrolments,
sessions and attendance, 校本研修 — the same scope and services as the pages
(views/training.py).  Status codes as in api/views.py: 404 outside scope,
403 in scope but not this role, 409 wrong state or stale version, 400 refused
content."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from xuefen.numbers import fmt
from xuefen.web import permissions as perm
from xuefen.web.api.serializers import ExactDecimalField
from xuefen.web.api.views import ERRORS, Refused, call_service, client_ip
from xuefen.web.models import (
    ClassSession,
    Course,
    Enrolment,
    Org,
    ProjectKind,
    Role,
    Teacher,
    TrainingClass,
    TrainingProject,
)
from xuefen.web.services import ledger, research, training

# A list asked for a page past its end answers 404 (DRF's pagination).
PAGE_404 = OpenApiResponse(description="页码无效或超出范围")


def _actor(request: Request) -> ledger.Actor:
    return ledger.Actor(request.user, client_ip(request))


# ------------------------------------------------------------------ serializers


class ScoreOut(serializers.Serializer):
    expert = serializers.CharField(source="expert.username")
    scores = serializers.DictField(child=serializers.CharField())
    total = ExactDecimalField()
    comment = serializers.CharField()


class ProjectSerializer(serializers.ModelSerializer):
    hours = ExactDecimalField()
    budget = ExactDecimalField()
    applicant_name = serializers.CharField(source="applicant.name", read_only=True)
    state = serializers.CharField(read_only=True, help_text="submitted 待论证 / reviewed 已论证 / approved 已立项 / "
                                                            "returned 已退回 / passed 验收通过 / failed 验收未通过")
    scores = ScoreOut(many=True, read_only=True)

    class Meta:
        model = TrainingProject
        fields = ("id", "kind", "title", "year", "category", "theme", "level", "form", "location", "hours",
                  "capacity", "target", "budget", "plan", "state", "state_reason", "applicant", "applicant_name",
                  "approver_org", "version", "scores")
        read_only_fields = fields


class ProjectIn(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    year = serializers.IntegerField(required=False, min_value=1990, max_value=2100)
    category = serializers.CharField(required=False, allow_blank=True, max_length=32)
    theme = serializers.CharField(required=False, allow_blank=True, max_length=64)
    level = serializers.CharField(required=False, allow_blank=True, max_length=16)
    form = serializers.CharField(required=False, allow_blank=True, max_length=16)
    location = serializers.CharField(required=False, allow_blank=True, max_length=16)
    hours = serializers.CharField(max_length=20, help_text="学时，精确小数字符串")
    capacity = serializers.IntegerField(required=False, min_value=0, max_value=100000)
    target = serializers.CharField(required=False, allow_blank=True, max_length=200)
    budget = serializers.CharField(required=False, allow_blank=True, max_length=20)
    plan = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class ScoreIn(serializers.Serializer):
    scores = serializers.DictField(child=serializers.CharField(max_length=20),
                                   help_text="评分项 → 分数；评分项见 XUEFEN_TRAINING_CRITERIA")
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class DecideIn(serializers.Serializer):
    approve = serializers.BooleanField()
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    version = serializers.IntegerField(required=False, min_value=1)


class CourseSerializer(serializers.ModelSerializer):
    hours = ExactDecimalField()
    # blank when there is none, so not a "uri" in the schema
    resource_url = serializers.CharField(read_only=True, help_text="课程资源链接（可为空）")

    class Meta:
        model = Course
        fields = ("id", "project", "title", "hours", "lecturers", "resource_url")
        read_only_fields = fields


class CourseIn(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    hours = serializers.CharField(max_length=20)
    lecturers = serializers.CharField(required=False, allow_blank=True, max_length=200)
    resource_url = serializers.CharField(required=False, allow_blank=True, max_length=200)


class ClassSerializer(serializers.ModelSerializer):
    course_title = serializers.CharField(source="course.title", read_only=True)
    project = serializers.IntegerField(source="course.project_id", read_only=True)
    record_uid = serializers.CharField(read_only=True)
    state = serializers.CharField(read_only=True, help_text="open 报名中 / closed 已结班")

    class Meta:
        model = TrainingClass
        fields = ("id", "course", "course_title", "project", "name", "head", "capacity", "state", "version",
                  "record_uid")
        read_only_fields = fields


class ClassIn(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)
    capacity = serializers.IntegerField(min_value=1, max_value=10000)


class EnrolmentSerializer(serializers.ModelSerializer):
    teacher_name = serializers.CharField(source="teacher.name", read_only=True)
    state = serializers.CharField(read_only=True, help_text="enrolled 已报名 / waiting 候补 / withdrawn 已退出")

    class Meta:
        model = Enrolment
        fields = ("id", "klass", "teacher", "teacher_name", "state", "result", "record", "withheld_reason")
        read_only_fields = fields


class ResultsIn(serializers.Serializer):
    results = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=8),
                                    help_text="报名 id → 合格 / 优秀 / 不合格")
    version = serializers.IntegerField(required=False, min_value=1)


class VersionIn(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1)


class SessionSerializer(serializers.ModelSerializer):
    hours = ExactDecimalField()
    materials_url = serializers.CharField(read_only=True, help_text="材料链接（可为空）")

    class Meta:
        model = ClassSession
        fields = ("id", "klass", "title", "starts_at", "ends_at", "hours", "materials_url")
        read_only_fields = fields


class SessionIn(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    hours = serializers.CharField(max_length=20)
    materials_url = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class SignInIn(serializers.Serializer):
    token = serializers.CharField(max_length=500, help_text="课次签到二维码中的令牌")


class TickIn(serializers.Serializer):
    present = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
                                    help_text="出勤学员的报名 id")


class MembersIn(serializers.Serializer):
    teachers = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**31 - 1))


class AcceptIn(serializers.Serializer):
    passed = serializers.BooleanField()
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    version = serializers.IntegerField(required=False, min_value=1)


class ReportOut(serializers.Serializer):
    participants = serializers.IntegerField()
    results = serializers.DictField(child=serializers.IntegerField(), help_text="考核结果 → 人数")
    attendance = serializers.CharField(allow_null=True, help_text="出勤率（%），精确小数字符串")
    credits = serializers.CharField(help_text="已登记学分合计，精确小数字符串")
    records = serializers.IntegerField()
    surveys = serializers.IntegerField()
    averages = serializers.DictField(child=serializers.CharField(), help_text="问卷评分项 → 均分（1–5）")


class SignInOut(serializers.Serializer):
    session = serializers.IntegerField()
    teacher = serializers.IntegerField()
    via = serializers.CharField()


class TickOut(serializers.Serializer):
    teachers = serializers.ListField(child=serializers.IntegerField())


class RecordsOut(serializers.Serializer):
    records = serializers.ListField(child=serializers.IntegerField())


# ------------------------------------------------------------------ viewsets


def _teacher(request: Request) -> Teacher:
    if perm.role(request.user) != Role.TEACHER:
        raise exceptions.PermissionDenied("只有教师本人可以执行该操作")
    teacher = Teacher.objects.filter(user=request.user).select_related("school").first()
    if teacher is None:
        raise exceptions.PermissionDenied("账号未关联教师档案")
    return teacher


class _Projects(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProjectSerializer
    kind = ProjectKind.TRAINING

    def get_queryset(self) -> QuerySet[TrainingProject]:
        ids = TrainingProject.objects.for_user(self.request.user).values("pk")
        return (TrainingProject.objects.filter(pk__in=ids, kind=self.kind).select_related("applicant")
                .prefetch_related("scores__expert").order_by("-year", "-pk"))

    def _fresh(self, pk: int) -> Response:
        return Response(ProjectSerializer(self.get_queryset().get(pk=pk)).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        p = perm.profile(request.user)
        org: Org | None = p.org if p else None
        if org is None or not perm.can_apply(request.user, org):
            raise exceptions.PermissionDenied("当前角色不能申报项目")
        body = ProjectIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = {k: str(v) for k, v in body.validated_data.items()}
        project = call_service(lambda: training.apply_project(_actor(request), org, data, kind=self.kind))
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="专家论证（评分与意见）", request=ScoreIn, responses={200: ProjectSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def score(self, request: Request, pk: str | None = None) -> Response:
        project = self.get_object()
        body = ScoreIn(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        call_service(lambda: training.score_project(_actor(request), project.pk, v["scores"], v["comment"]))
        return self._fresh(project.pk)

    @extend_schema(summary="立项或退回（继教办）", request=DecideIn, responses={200: ProjectSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        project = self.get_object()
        body = DecideIn(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        call_service(lambda: training.decide_project(_actor(request), project.pk, v["approve"], v["comment"],
                                             v.get("version")))
        return self._fresh(project.pk)


@extend_schema_view(
    list=extend_schema(summary="培训项目（按权限范围）", responses={200: ProjectSerializer(many=True), 404: PAGE_404}),
    retrieve=extend_schema(summary="一个培训项目", responses={200: ProjectSerializer, 404: ERRORS[404]}),
    create=extend_schema(summary="申报培训项目（培训机构、学校、学区）", request=ProjectIn,
                         responses={201: ProjectSerializer, 400: ERRORS[400], 403: ERRORS[403]}),
)
class ProjectViewSet(_Projects):
    """朝阳 附件4: 申报 → 论证 → 立项."""

    kind = ProjectKind.TRAINING

    @extend_schema(summary="项目实施与评估（朝阳 附件4 第十七、十八条；申报单位、评审专家、继教办）",
                   responses={200: ReportOut, 403: ERRORS[403], 404: ERRORS[404]})
    @action(detail=True, methods=["get"])
    def report(self, request: Request, pk: str | None = None) -> Response:
        project = self.get_object()
        user = request.user
        if not (perm.can_decide(user, project) or perm.can_manage_project(user, project)
                or perm.can_score(user, project)):
            raise exceptions.PermissionDenied("无权查看项目评估")
        r = training.project_report(project)
        return Response({"participants": r["participants"], "results": r["results"],
                         "attendance": None if r["attendance"] is None else fmt(r["attendance"]),
                         "credits": fmt(r["credits"]), "records": r["records"], "surveys": r["surveys"],
                         "averages": {k: fmt(v) for k, v in r["averages"].items()}})

    @extend_schema(summary="添加课程（立项后，申报单位）", request=CourseIn, responses={201: CourseSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def courses(self, request: Request, pk: str | None = None) -> Response:
        project = self.get_object()
        body = CourseIn(data=request.data)
        body.is_valid(raise_exception=True)
        course = call_service(lambda: training.add_course(_actor(request), project.pk, dict(body.validated_data)))
        return Response(CourseSerializer(course).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="校本研修项目（按权限范围）", responses={200: ProjectSerializer(many=True), 404: PAGE_404}),
    retrieve=extend_schema(summary="一个校本研修项目", responses={200: ProjectSerializer, 404: ERRORS[404]}),
    create=extend_schema(summary="申报校本研修项目（学校）", request=ProjectIn,
                         responses={201: ProjectSerializer, 400: ERRORS[400], 403: ERRORS[403]}),
)
class ResearchViewSet(_Projects):
    """朝阳 附件6; 永吉 校本研修: plan → 论证 → members and activities → 验收."""

    kind = ProjectKind.RESEARCH

    @extend_schema(summary="设置研修成员（本校教师）", request=MembersIn, responses={200: ClassSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        project = self.get_object()
        body = MembersIn(data=request.data)
        body.is_valid(raise_exception=True)
        klass = call_service(lambda: research.set_members(_actor(request), project.pk, body.validated_data["teachers"]))
        return Response(ClassSerializer(klass).data)

    @extend_schema(summary="验收（通过：登记成员学分；不通过：不予认定并告知原因）", request=AcceptIn,
                   responses={200: RecordsOut, **ERRORS})
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        project = self.get_object()
        body = AcceptIn(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        records = call_service(lambda: research.accept(_actor(request), project.pk, v["passed"], v["reason"],
                                               v.get("version")))
        return Response({"records": [r.pk for r in records]})


def _visible_projects(user: Any) -> QuerySet[TrainingProject]:
    return TrainingProject.objects.for_user(user).values("pk")  # type: ignore[return-value]


@extend_schema_view(
    list=extend_schema(summary="课程（所属项目在权限范围内）", responses={200: CourseSerializer(many=True), 404: PAGE_404}),
    retrieve=extend_schema(summary="一门课程", responses={200: CourseSerializer, 404: ERRORS[404]}),
)
class CourseViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CourseSerializer

    def get_queryset(self) -> QuerySet[Course]:
        return Course.objects.filter(project__in=_visible_projects(self.request.user)).order_by("pk")

    @extend_schema(summary="开班（申报单位；操作者为班主任）", request=ClassIn, responses={201: ClassSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def classes(self, request: Request, pk: str | None = None) -> Response:
        course = self.get_object()
        body = ClassIn(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        klass = call_service(lambda: training.open_class(_actor(request), course.pk, v["name"], v["capacity"]))
        return Response(ClassSerializer(klass).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="班级（所属项目在权限范围内）", responses={200: ClassSerializer(many=True), 404: PAGE_404}),
    retrieve=extend_schema(summary="一个班级", responses={200: ClassSerializer, 404: ERRORS[404]}),
)
class ClassViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ClassSerializer

    def get_queryset(self) -> QuerySet[TrainingClass]:
        return (TrainingClass.objects.filter(course__project__in=_visible_projects(self.request.user))
                .select_related("course").order_by("pk"))

    @extend_schema(summary="教师本人报名（满员进入候补）", request=None, responses={201: EnrolmentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def enrol(self, request: Request, pk: str | None = None) -> Response:
        klass = self.get_object()
        teacher = _teacher(request)
        enrolment = call_service(lambda: training.enrol(_actor(request), klass.pk, teacher))
        return Response(EnrolmentSerializer(enrolment).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="教师本人退出（候补第一位转为正式学员）", request=None,
                   responses={200: EnrolmentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str | None = None) -> Response:
        klass = self.get_object()
        teacher = _teacher(request)
        mine = Enrolment.objects.filter(klass=klass, teacher=teacher).first()
        if mine is None:
            raise exceptions.NotFound("您没有报名该班级")
        enrolment = call_service(lambda: training.withdraw(_actor(request), mine.pk))
        return Response(EnrolmentSerializer(enrolment).data)

    @extend_schema(summary="添加课次（班主任）", request=SessionIn, responses={201: SessionSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def sessions(self, request: Request, pk: str | None = None) -> Response:
        klass = self.get_object()
        body = SessionIn(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        session = call_service(lambda: training.add_session(_actor(request), klass.pk, v["title"], v["starts_at"],
                                                    v["ends_at"], v["hours"], v["materials_url"]))
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="登记考核结果（优秀比例、缺勤比例超限则整体拒绝）", request=ResultsIn,
                   responses={200: ClassSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def results(self, request: Request, pk: str | None = None) -> Response:
        klass = self.get_object()
        body = ResultsIn(data=request.data)
        body.is_valid(raise_exception=True)
        raw = body.validated_data["results"]
        if not all(str(k).isdigit() for k in raw):
            raise exceptions.ValidationError({"results": "键应为报名 id"})
        results = {int(k): v for k, v in raw.items()}
        call_service(lambda: training.enter_results(_actor(request), klass.pk, results, body.validated_data.get("version")))
        return Response(ClassSerializer(self.get_queryset().get(pk=klass.pk)).data)

    @extend_schema(summary="结班：为每位学员生成学分记录（来源：培训项目）", request=VersionIn,
                   responses={200: RecordsOut, **ERRORS})
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str | None = None) -> Response:
        klass = self.get_object()
        body = VersionIn(data=request.data)
        body.is_valid(raise_exception=True)
        records = call_service(lambda: training.close_class(_actor(request), klass.pk, body.validated_data.get("version")))
        return Response({"records": [r.pk for r in records]})


@extend_schema_view(
    list=extend_schema(summary="报名（教师本人的；班主任与申报单位：其班级的）",
                       responses={200: EnrolmentSerializer(many=True), 404: PAGE_404}),
    retrieve=extend_schema(summary="一条报名", responses={200: EnrolmentSerializer, 404: ERRORS[404]}),
)
class EnrolmentViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = EnrolmentSerializer

    def get_queryset(self) -> QuerySet[Enrolment]:
        user = self.request.user
        p = perm.profile(user)
        if p is None:
            return Enrolment.objects.none()
        mine = Q(teacher__user=user) if p and p.role == Role.TEACHER else Q(pk__in=[])
        managed = Q(klass__head=user) | (Q(klass__course__project__applicant=p.org)
                                         if p and p.role in perm.APPLICANT_ROLES and p.org else Q(pk__in=[]))
        return Enrolment.objects.filter(mine | managed).select_related("teacher").order_by("pk")


@extend_schema_view(
    list=extend_schema(summary="课次（所属项目在权限范围内）", responses={200: SessionSerializer(many=True), 404: PAGE_404}),
    retrieve=extend_schema(summary="一个课次", responses={200: SessionSerializer, 404: ERRORS[404]}),
)
class SessionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SessionSerializer

    def get_queryset(self) -> QuerySet[ClassSession]:
        return ClassSession.objects.filter(klass__course__project__in=_visible_projects(self.request.user)) \
            .order_by("pk")

    @extend_schema(summary="扫码签到（教师本人，课次签到时间内）", request=SignInIn,
                   responses={201: SignInOut, **ERRORS})
    @action(detail=True, methods=["post"])
    def signin(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        teacher = _teacher(request)
        body = SignInIn(data=request.data)
        body.is_valid(raise_exception=True)
        if call_service(lambda: training.session_from_token(body.validated_data["token"])).pk != session.pk:
            raise Refused("签到码与课次不符")
        att = call_service(lambda: training.sign_in(_actor(request), body.validated_data["token"], teacher))
        return Response({"session": session.pk, "teacher": teacher.pk, "via": att.via},
                        status=status.HTTP_201_CREATED)

    @extend_schema(summary="班主任勾选考勤（所列即出勤）", request=TickIn, responses={200: TickOut, **ERRORS})
    @action(detail=True, methods=["post"])
    def attendance(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        body = TickIn(data=request.data)
        body.is_valid(raise_exception=True)
        teachers = call_service(lambda: training.tick_attendance(_actor(request), session.pk, body.validated_data["present"]))
        return Response({"teachers": teachers})
