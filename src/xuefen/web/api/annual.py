"""API for the annual close and certificates (issue 14): the same services
and scopes as the pages (services.annual, services.certificates,
permissions.close_scope / certificate_scope).  Status codes as in api.views:
404 outside scope, 403 wrong role, 409 stale version or wrong state, 400 refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from xuefen.web import pdfs
from xuefen.web import permissions as perm
from xuefen.web.api.views import ERRORS, call_service, client_ip
from xuefen.web.models import AnnualClose, Certificate, Objection, Org
from xuefen.web.services import annual, certificates, ledger


class ObjectionSerializer(serializers.ModelSerializer[Objection]):
    teacher_name = serializers.CharField(source="teacher.name", read_only=True)

    class Meta:
        model = Objection
        fields = ("id", "teacher", "teacher_name", "reason", "filed_at", "answer", "answered_at")


class AnnualCloseSerializer(serializers.ModelSerializer[AnnualClose]):
    school_name = serializers.CharField(source="school.name", read_only=True)
    objections = ObjectionSerializer(many=True, read_only=True)
    teachers = serializers.SerializerMethodField()

    class Meta:
        model = AnnualClose
        fields = ("id", "school", "school_name", "year", "state", "version", "publicity_start", "publicity_end",
                  "closed_at", "signed_at", "submitted_at", "confirmed_at", "reason", "objections", "teachers")

    def get_teachers(self, obj: AnnualClose) -> list[dict[str, Any]]:
        """The 公示 list: each teacher's figures for the year as taken at the close (credits as exact strings)."""
        return [{"teacher": int(k), **{f: v[f] for f in ("teacher_no", "name", "passed", "total", "categories")}}
                for k, v in sorted(obj.snapshot.items(), key=lambda kv: kv[1]["teacher_no"])]


class CloseCreateSerializer(serializers.Serializer[Any]):
    school = serializers.IntegerField()
    year = serializers.IntegerField(min_value=2000, max_value=2100)


class StepSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class TextSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(allow_blank=True)


class CertificateSerializer(serializers.ModelSerializer[Certificate]):
    valid = serializers.SerializerMethodField()
    verify_url = serializers.SerializerMethodField()
    total = serializers.CharField(read_only=True)

    class Meta:
        model = Certificate
        fields = ("id", "teacher", "kind", "number", "period_start", "period_end", "school_name", "issuer",
                  "issued_at", "total", "categories", "valid", "voided_at", "void_reason", "verify_url")

    def get_valid(self, obj: Certificate) -> bool:
        return certificates.is_valid(obj)

    def get_verify_url(self, obj: Certificate) -> str:
        request = self.context.get("request")
        path = certificates.verify_url(obj, "")
        return request.build_absolute_uri(path) if request is not None else path


@extend_schema_view(
    list=extend_schema(summary="年度登记列表（按权限范围）"),
    retrieve=extend_schema(summary="一所学校一个年度的登记、公示名单与异议",
                           responses={200: AnnualCloseSerializer, 404: ERRORS[404]}),
)
class AnnualCloseViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AnnualCloseSerializer

    def get_queryset(self) -> QuerySet[AnnualClose]:
        return (AnnualClose.objects.filter(perm.close_scope(self.request.user)).distinct()
                .select_related("school").prefetch_related("objections__teacher").order_by("school_id", "-year"))

    def _answer(self, close: AnnualClose, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=close.pk)).data, status=code)

    @extend_schema(summary="学分管理专员登记年度（锁定该年度）", request=CloseCreateSerializer,
                   responses={201: AnnualCloseSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = CloseCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        school = Org.objects.filter(perm.org_scope(request.user), pk=body.validated_data["school"]).first()
        if school is None:
            raise exceptions.NotFound()
        actor = ledger.Actor(request.user, client_ip(request))
        close = call_service(lambda: annual.close_year(actor, school.pk, body.validated_data["year"]))
        return self._answer(close, status.HTTP_201_CREATED)

    def _step(self, request: Request, fn: Callable[[ledger.Actor, int, dict[str, Any]], AnnualClose]) -> Response:
        close = self.get_object()
        body = StepSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor = ledger.Actor(request.user, client_ip(request))
        return self._answer(call_service(lambda: fn(actor, close.pk, body.validated_data)))

    @extend_schema(summary="校长签发，开始公示", request=StepSerializer, responses={200: AnnualCloseSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def sign(self, request: Request, pk: str | None = None) -> Response:
        return self._step(request, lambda a, i, b: annual.sign_off(a, i, b["version"]))

    @extend_schema(summary="公示结束、异议均已答复后报送区县", request=StepSerializer,
                   responses={200: AnnualCloseSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        return self._step(request, lambda a, i, b: annual.submit(a, i, b["version"]))

    @extend_schema(summary="区县确认（颁发证书）", request=StepSerializer, responses={200: AnnualCloseSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str | None = None) -> Response:
        return self._step(request, lambda a, i, b: annual.confirm(a, i, b["version"]))

    @extend_schema(summary="区县退回（须填写理由）", request=StepSerializer,
                   responses={200: AnnualCloseSerializer, **ERRORS})
    @action(detail=True, methods=["post"], url_path="return")
    def return_(self, request: Request, pk: str | None = None) -> Response:
        return self._step(request, lambda a, i, b: annual.return_close(a, i, b["reason"], b["version"]))

    @extend_schema(summary="区县重新开放已确认的年度（须填写理由；该年度证书作废）", request=StepSerializer,
                   responses={200: AnnualCloseSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str | None = None) -> Response:
        return self._step(request, lambda a, i, b: annual.reopen(a, i, b["reason"], b["version"]))

    @extend_schema(summary="教师在公示期内提出异议", request=TextSerializer,
                   responses={201: ObjectionSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def objections(self, request: Request, pk: str | None = None) -> Response:
        close = self.get_object()
        body = TextSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor = ledger.Actor(request.user, client_ip(request))
        objection = call_service(lambda: annual.file_objection(actor, close.pk, body.validated_data["text"]))
        return Response(ObjectionSerializer(objection).data, status=status.HTTP_201_CREATED)


class ObjectionViewSet(viewsets.GenericViewSet):
    serializer_class = ObjectionSerializer

    def get_queryset(self) -> QuerySet[Objection]:
        return Objection.objects.filter(close__in=AnnualClose.objects.filter(perm.close_scope(self.request.user)))

    @extend_schema(summary="学分管理专员答复异议", request=TextSerializer, responses={200: ObjectionSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def answer(self, request: Request, pk: str | None = None) -> Response:
        objection = self.get_object()
        body = TextSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor = ledger.Actor(request.user, client_ip(request))
        answered = call_service(lambda: annual.answer_objection(actor, objection.pk, body.validated_data["text"]))
        return Response(ObjectionSerializer(answered).data)


@extend_schema_view(
    list=extend_schema(summary="证书列表（教师本人或所辖学校）"),
    retrieve=extend_schema(summary="一份证书及其状态", responses={200: CertificateSerializer, 404: ERRORS[404]}),
)
class CertificateViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CertificateSerializer

    def get_queryset(self) -> QuerySet[Certificate]:
        return (Certificate.objects.filter(perm.certificate_scope(self.request.user))
                .select_related("teacher__school").order_by("-period_end", "teacher_id", "-pk"))

    @extend_schema(summary="证书 PDF（含核验二维码）",
                   responses={(200, "application/pdf"): OpenApiResponse(description="PDF"), 404: ERRORS[404]})
    @action(detail=True, methods=["get"])
    def pdf(self, request: Request, pk: str | None = None) -> HttpResponse:
        cert = self.get_object()
        url = request.build_absolute_uri(certificates.verify_url(cert, ""))
        response = HttpResponse(pdfs.certificates_pdf([(cert, url)], title=cert.number), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{cert.number}.pdf"'
        return response

    @extend_schema(summary="补办（区县继教办，须填写理由）：新编号，原证书作废", request=StepSerializer,
                   responses={201: CertificateSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def reissue(self, request: Request, pk: str | None = None) -> Response:
        cert = self.get_object()
        body = StepSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor = ledger.Actor(request.user, client_ip(request))
        new = call_service(lambda: certificates.reissue(actor, cert.pk, body.validated_data["reason"]))
        return Response(self.get_serializer(new).data, status=status.HTTP_201_CREATED)
