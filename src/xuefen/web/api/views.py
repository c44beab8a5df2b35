"""The REST API: the same data, scope and services as the pages.

Status codes (documented in docs/api/README.md):

* **404** — the object does not exist *or lies outside the caller's scope*
  (``for_user``): existence never leaks;
* **403** — the object is in scope but the caller's role may not do this
  (e.g. a principal approving, a teacher revoking), or the action has no
  object and the role may not perform it (a non-teacher declaring);
* **409** — optimistic locking: the ``version`` sent is stale, or the record
  is no longer in a state the action applies to;
* **400** — the request is malformed or the service refuses the content
  (missing reason, invalid facts, evidence that is not PDF/JPG/PNG).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from xuefen.engine.report import as_dict
from xuefen.web import permissions as perm
from xuefen.web.api import authentication as api_auth
from xuefen.web.api import serializers as s
from xuefen.web.models import ApiToken, ImportBatch, Record, Status, Teacher
from xuefen.web.services import accounts, audit, ledger
from xuefen.web.services.evaluation import evaluate_teacher


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "该记录已被他人处理，请刷新后再试"
    default_code = "conflict"


class Refused(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "请求被拒绝"
    default_code = "refused"


T = TypeVar("T")


def call_service(fn: Callable[[], T]) -> T:
    """Run one service call and turn its refusals into HTTP answers (every
    API module's one mapping: an object gone or outside the caller's scope
    is 404)."""
    try:
        return fn()
    except ObjectDoesNotExist:
        raise exceptions.NotFound() from None
    except ledger.Denied as exc:
        raise exceptions.PermissionDenied(str(exc)) from None
    except ledger.Conflict as exc:
        raise Conflict(str(exc)) from None
    except ledger.ServiceError as exc:
        raise Refused(str(exc)) from None


def client_ip(request: Request) -> str | None:
    from xuefen.web.views.common import client_ip as page_client_ip

    return page_client_ip(request._request)


ERRORS = {
    400: OpenApiResponse(description="请求格式错误或被业务规则拒绝（缺理由、字段不合规、材料类型不符）"),
    403: OpenApiResponse(description="对象在可见范围内，但当前角色无权执行该操作"),
    404: OpenApiResponse(description="对象不存在或不在可见范围内（不区分两者）"),
    409: OpenApiResponse(description="版本已过期或记录状态已变化（乐观锁）"),
    401: OpenApiResponse(description="未认证，或令牌无效、已过期"),
}



@extend_schema_view(
    list=extend_schema(summary="学分记录列表（按权限范围）", parameters=[
        OpenApiParameter("teacher", OpenApiTypes.INT, description="教师 id"),
        OpenApiParameter("year", OpenApiTypes.INT, description="登记年度"),
        OpenApiParameter("status", OpenApiTypes.STR, description="状态",
                         enum=[c for c, _label in Status.choices]),
    ]),
    retrieve=extend_schema(summary="一条学分记录", responses={200: s.RecordSerializer, 404: ERRORS[404]}),
)
class RecordViewSet(viewsets.ReadOnlyModelViewSet):
    """Credit records, scoped exactly like the pages (``Record.objects.for_user``)."""

    serializer_class = s.RecordSerializer

    def get_queryset(self) -> QuerySet[Record]:
        return (Record.objects.for_user(self.request.user).select_related("teacher")
                .prefetch_related("evidence").order_by("teacher_id", "year", "uid"))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = s.RecordFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        records = self.get_queryset().filter(**params.validated_data)
        page = self.paginate_queryset(records)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def _act(self, request: Request, run: Callable[[ledger.Actor, int, s.ActionSerializer], Record]) -> Response:
        record = self.get_object()  # 404 outside scope, before anything else is said
        body = s.ActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor = ledger.Actor(request.user, client_ip(request))
        updated = call_service(lambda: run(actor, record.pk, body))
        updated = self.get_queryset().get(pk=updated.pk)
        return Response(self.get_serializer(updated).data)

    @extend_schema(summary="审核通过（按角色：学校审核 / 区县审核 / 市级认定）", request=s.ActionSerializer,
                   responses={200: s.RecordSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        step = perm.approve_step(request.user)

        def run(actor: ledger.Actor, record_id: int, body: s.ActionSerializer) -> Record:
            if step is None:
                raise ledger.Denied("当前角色不参与审核")
            return ledger.transition(actor, record_id, step, body.validated_data["version"],
                                     body.validated_data["comment"])

        return self._act(request, run)

    @extend_schema(summary="退回（须填写理由）", request=s.ActionSerializer,
                   responses={200: s.RecordSerializer, **ERRORS})
    @action(detail=True, methods=["post"], url_path="return")
    def return_(self, request: Request, pk: str | None = None) -> Response:
        def run(actor: ledger.Actor, record_id: int, body: s.ActionSerializer) -> Record:
            return ledger.return_record(actor, record_id, body.validated_data["comment"],
                                        body.validated_data["version"])

        return self._act(request, run)

    @extend_schema(summary="撤销（弄虚作假等，须填写理由）", request=s.ActionSerializer,
                   responses={200: s.RecordSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        def run(actor: ledger.Actor, record_id: int, body: s.ActionSerializer) -> Record:
            return ledger.revoke_record(actor, record_id, body.validated_data["comment"],
                                        body.validated_data["version"])

        return self._act(request, run)


@extend_schema_view(
    create=extend_schema(summary="教师本人申报学分（multipart/form-data，附证明材料）",
                         request={"multipart/form-data": s.DeclarationSerializer},
                         responses={201: s.RecordSerializer, 400: ERRORS[400],
                                    403: OpenApiResponse(description="只有教师本人可以申报")}),
)
class DeclarationViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    """A teacher declares a record for herself: ``services.ledger.declare_record``."""

    serializer_class = s.DeclarationSerializer
    parser_classes = (MultiPartParser, FormParser)

    def get_queryset(self) -> QuerySet[Record]:
        return Record.objects.for_user(self.request.user)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not perm.is_teacher(request.user):
            raise exceptions.PermissionDenied("只有教师本人可以申报")
        teacher = Teacher.objects.for_user(request.user).select_related("school").first()
        if teacher is None:
            raise exceptions.PermissionDenied("账号未关联教师档案")
        body = s.DeclarationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        actor = ledger.Actor(request.user, client_ip(request))
        confirmed = str(request.data.get("confirm", "")).lower() in ("1", "true", "yes")
        record = call_service(lambda: ledger.declare_record(actor, teacher, body.facts(),
                                                            body.validated_data["evidence"], warn=not confirmed))
        record = Record.objects.for_user(request.user).prefetch_related("evidence").get(pk=record.pk)
        return Response(s.RecordSerializer(record).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="教师列表（按权限范围）", parameters=[
        OpenApiParameter("school", OpenApiTypes.INT, description="学校（机构）id"),
    ]),
    retrieve=extend_schema(summary="一名教师", responses={200: s.TeacherSerializer, 404: ERRORS[404]}),
)
class TeacherViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.TeacherSerializer

    def get_queryset(self) -> QuerySet[Teacher]:
        teachers = Teacher.objects.for_user(self.request.user).select_related("school", "result")
        school = self.request.query_params.get("school", "")
        if self.action == "list" and school:
            if not school.isdigit():
                raise exceptions.ValidationError({"school": "应为机构 id"})
            teachers = teachers.filter(school_id=int(school))
        return teachers.order_by("teacher_no")

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        # PIPL: every response that carries 身份证号 in full is audited (whose, not the numbers).
        data = getattr(response, "data", None)
        if (response.status_code == 200 and self.action in ("list", "retrieve") and isinstance(data, dict)
                and perm.sees_full_id_number(request.user)):
            rows = data.get("results", [data])
            ids = [row["id"] for row in rows if isinstance(row, dict) and "id" in row]
            audit.id_numbers_shown(request.user, ids, request.path, ip=request.META.get("REMOTE_ADDR"))
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(summary="教师当前周期的评估结果（引擎输出，学分为精确小数字符串）",
                   responses={200: s.EvaluationSerializer, 403: ERRORS[403],
                              404: OpenApiResponse(description="不在可见范围内，或所在单位未绑定学分政策")})
    @action(detail=True, methods=["get"])
    def result(self, request: Request, pk: str | None = None) -> Response:
        teacher = self.get_object()
        if not perm.can_view_results(request.user, teacher):
            raise exceptions.PermissionDenied("无权查看该教师的达标情况")
        ev = evaluate_teacher(teacher)
        if ev is None:
            raise exceptions.NotFound("所在单位未绑定学分政策")
        return Response({"teacher": teacher.pk, "evaluation": s.exact(as_dict(ev))})


@extend_schema_view(
    list=extend_schema(summary="导入批次（只读，按权限范围）"),
    retrieve=extend_schema(summary="一个导入批次及其逐行问题",
                           responses={200: s.ImportBatchDetailSerializer, 404: ERRORS[404]}),
)
class ImportBatchViewSet(viewsets.ReadOnlyModelViewSet):
    def get_queryset(self) -> QuerySet[ImportBatch]:
        return (ImportBatch.objects.filter(perm.import_scope(self.request.user))
                .select_related("org", "uploaded_by").order_by("-created_at", "-pk"))

    def get_serializer_class(self) -> type[Any]:
        return s.ImportBatchDetailSerializer if self.action == "retrieve" else s.ImportBatchSerializer


SESSION_ONLY = OpenApiResponse(description="令牌只能由已登录的浏览器会话查看、生成或吊销，不能用令牌本身")


class TokenView(APIView):
    """The caller's API token pair.  Only a browser session (after the
    throttled login page) may see, create or revoke it — a token cannot mint
    tokens and no password is ever sent to the API.  Generating replaces the
    old pair; the keys are shown once and stored only as digests."""

    authentication_classes = (SessionAuthentication,)
    serializer_class = s.TokenSerializer

    @extend_schema(summary="当前令牌的生成与到期时间（不返回令牌本身）", responses={200: s.TokenSerializer, 403: SESSION_ONLY})
    def get(self, request: Request) -> Response:
        token = ApiToken.objects.filter(user=request.user).first()
        return Response({"created": token.created if token else None, "expires": token.expires if token else None,
                         "refresh_expires": token.refresh_expires if token else None})

    @extend_schema(summary="生成（或轮换）令牌；令牌与刷新令牌只在此时返回一次", request=None,
                   responses={201: s.TokenSerializer, 403: SESSION_ONLY})
    def post(self, request: Request) -> Response:
        token, key, refresh = accounts.issue_token(ledger.Actor(request.user, client_ip(request)))
        return _pair(token, key, refresh)

    @extend_schema(summary="吊销令牌", request=None, responses={204: None, 403: SESSION_ONLY})
    def delete(self, request: Request) -> Response:
        accounts.revoke_token(ledger.Actor(request.user, client_ip(request)))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _pair(token: ApiToken, key: str, refresh: str) -> Response:
    return Response({"token": key, "refresh": refresh, "created": token.created, "expires": token.expires,
                     "refresh_expires": token.refresh_expires}, status=status.HTTP_201_CREATED)


class TokenRefreshView(APIView):
    """A new pair for a valid refresh token; the old pair ends."""

    # The token scheme only names the WWW-Authenticate challenge (401, not
    # 403, for a spent refresh token); the refresh token is the credential.
    authentication_classes = (api_auth.ExpiringTokenAuthentication,)
    permission_classes = ()
    serializer_class = s.TokenRefreshSerializer

    @extend_schema(summary="用刷新令牌换取新的令牌对（旧的两枚随即失效）", request=s.TokenRefreshSerializer,
                   responses={201: s.TokenSerializer, 400: ERRORS[400], 401: ERRORS[401]})
    def post(self, request: Request) -> Response:
        form = s.TokenRefreshSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        token, key, refresh = api_auth.refresh_pair(form.validated_data["refresh"])
        return _pair(token, key, refresh)
