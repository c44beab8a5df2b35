"""API for the office's batch review (issue 16): the same service as the
queue page's batch form (services.review), the same answers as the record
actions — 404 for a record outside scope, 409 for a state that moved on,
400 for a refused request; a large selection becomes a background job (202)
whose progress is read at /api/review-jobs/<id>/."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from xuefen.numbers import fmt
from xuefen.web import permissions as perm
from xuefen.web.api.views import ERRORS, Conflict, Refused, client_ip
from xuefen.web.models import BulkReview, Record, SpotCheck, SpotCheckItem
from xuefen.web.services import ledger, review, schoolcredits, spotcheck
from xuefen.web.services.base import Actor, Denied, ServiceError
from xuefen.web.services.base import Conflict as ServiceConflict


class BulkReviewSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=review.MAX_ID), allow_empty=False,
                                max_length=100_000, help_text="学分记录 id")
    action = serializers.ChoiceField(choices=review.BULK_ACTIONS, help_text="approve（本级审核通过）或 return（退回）")
    comment = serializers.CharField(required=False, allow_blank=True, default="", help_text="说明；退回时必填")


class BulkJobSerializer(serializers.ModelSerializer):
    # Plain text, not an enum: the schema already has an enum named for ImportBatch.state.
    state = serializers.CharField(read_only=True, help_text="queued 排队中 / running 处理中 / done 已完成 / failed 未执行")

    class Meta:
        model = BulkReview
        fields = ("id", "action", "total", "done", "state", "error", "created_at", "finished_at")


class BulkReviewView(APIView):
    serializer_class = BulkReviewSerializer

    @extend_schema(summary="批量审核：通过或退回所选记录（全部成功或全部不执行，每条记录一条审计记录）",
                   request=BulkReviewSerializer,
                   responses={200: OpenApiResponse(description="已处理，返回处理条数"),
                              202: BulkJobSerializer, **ERRORS})
    def post(self, request: Request) -> Response:
        body = BulkReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if perm.queue_state(request.user) is None:
            raise exceptions.PermissionDenied("当前角色不参与审核")
        data: dict[str, Any] = body.validated_data
        actor = Actor(request.user, client_ip(request))
        try:
            if review.runs_in_background(len(set(data["ids"]))):
                from xuefen.web.tasks import dispatch_review

                job = review.start_job(actor, data["ids"], data["action"], data["comment"])
                dispatch_review(job.pk, actor.ip)
                job.refresh_from_db()
                return Response(BulkJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
            moved = review.bulk_review(actor, data["ids"], data["action"], data["comment"])
        except Denied:
            raise exceptions.NotFound("所选记录中有不存在或无权处理的记录") from None
        except ServiceConflict as exc:
            raise Conflict(str(exc)) from None
        except ServiceError as exc:
            raise Refused(str(exc)) from None
        return Response({"done": moved})


class BulkJobView(APIView):
    serializer_class = BulkJobSerializer

    @extend_schema(summary="批量审核任务的进度", responses={200: BulkJobSerializer, 404: ERRORS[404]})
    def get(self, request: Request, pk: int) -> Response:
        job = BulkReview.objects.filter(pk=pk).first()
        if job is None or not perm.can_view_bulk_job(request.user, job):
            raise exceptions.NotFound()
        return Response(BulkJobSerializer(job).data)


# --- 更正, 抽检, 校本研修 entry ----------------------------------------------------------------


def _answer(run: Any, in_scope: bool = False) -> Any:
    """One service call, its refusals as the record actions answer them: a
    refusal is 404 unless the object is known to be in scope (then 403)."""
    try:
        return run()
    except Denied as exc:
        if in_scope:
            raise exceptions.PermissionDenied(str(exc)) from None
        raise exceptions.NotFound() from None
    except (Record.DoesNotExist, SpotCheckItem.DoesNotExist):
        raise exceptions.NotFound() from None
    except ServiceConflict as exc:
        raise Conflict(str(exc)) from None
    except ServiceError as exc:
        raise Refused(str(exc)) from None


class CorrectSerializer(serializers.Serializer):
    changes = serializers.DictField(child=serializers.CharField(allow_blank=True),
                                    help_text="要更正的字段（交换格式字段名 → 新值）")
    comment = serializers.CharField(help_text="更正理由（必填）")
    version = serializers.IntegerField(required=False, allow_null=True, default=None)


class CorrectView(APIView):
    serializer_class = CorrectSerializer

    @extend_schema(summary="更正一条记录（须填理由；原值保留在审计历史中）", request=CorrectSerializer,
                   responses={200: OpenApiResponse(description="更正后的学分"), **ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        if not Record.objects.for_user(request.user).filter(pk=pk).exists():
            raise exceptions.NotFound()
        body = CorrectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        actor = Actor(request.user, client_ip(request))
        record = _answer(lambda: ledger.correct_record(actor, pk, d["changes"], d["comment"], d["version"]),
                         in_scope=True)
        return Response({"id": record.pk, "credits": fmt(record.credits), "version": record.version})


class SpotCheckSerializer(serializers.ModelSerializer):
    records = serializers.SerializerMethodField()

    class Meta:
        model = SpotCheck
        fields = ("id", "org", "seed", "size", "rule", "pool", "created_at", "records")

    def get_records(self, check: SpotCheck) -> list[dict[str, Any]]:
        return [{"item": i.pk, "record": i.record_id, "result": i.result, "note": i.note} for i in check.items.all()]


class DrawSerializer(serializers.Serializer):
    size = serializers.IntegerField(min_value=1, max_value=spotcheck.MAX_SAMPLE)
    seed = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0)
    year = serializers.CharField(required=False, allow_blank=True, default="")
    source = serializers.CharField(required=False, allow_blank=True, default="")
    category = serializers.CharField(required=False, allow_blank=True, default="")


class SpotChecksView(APIView):
    serializer_class = SpotCheckSerializer

    def _district(self, request: Request) -> Any:
        p = perm.profile(request.user)
        if p is None or p.org is None or not perm.can_spot_check(request.user, p.org):
            raise exceptions.PermissionDenied("只有区县继教办可以抽检")
        return p.org

    @extend_schema(summary="本辖区的抽检", responses={200: SpotCheckSerializer(many=True), 403: ERRORS[403]})
    def get(self, request: Request) -> Response:
        district = self._district(request)
        checks = SpotCheck.objects.filter(org__path__startswith=district.path).prefetch_related("items")[:100]
        return Response(SpotCheckSerializer(checks, many=True).data)

    @extend_schema(summary="按条件与随机种子抽检", request=DrawSerializer,
                   responses={201: SpotCheckSerializer, **ERRORS})
    def post(self, request: Request) -> Response:
        district = self._district(request)
        body = DrawSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        actor = Actor(request.user, client_ip(request))
        check = _answer(lambda: spotcheck.draw(actor, district, d["size"], d["seed"], d["year"], d["source"],
                                               d["category"]))
        return Response(SpotCheckSerializer(check).data, status=status.HTTP_201_CREATED)


class ResultSerializer(serializers.Serializer):
    result = serializers.ChoiceField(choices=("passed", "failed"), help_text="passed 属实 / failed 不属实")
    note = serializers.CharField(required=False, allow_blank=True, default="")
    revoke = serializers.BooleanField(required=False, default=False, help_text="不属实时同时撤销该记录")


class SpotCheckResultView(APIView):
    serializer_class = ResultSerializer

    @extend_schema(summary="记录一条抽检结果（可同时撤销）", request=ResultSerializer,
                   responses={200: OpenApiResponse(description="已记录"), **ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        body = ResultSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        actor = Actor(request.user, client_ip(request))
        item = _answer(lambda: spotcheck.record_result(actor, pk, d["result"], d["note"], d["revoke"]))
        return Response({"item": item.pk, "result": item.result})


class SchoolCreditsSerializer(serializers.Serializer):
    facts = serializers.DictField(child=serializers.CharField(allow_blank=True),
                                  help_text="各行相同的字段（登记年度、培训项目名称、形式……）")
    hours = serializers.DictField(child=serializers.CharField(allow_blank=True), help_text="教师 id → 学时")


class SchoolCreditsView(APIView):
    serializer_class = SchoolCreditsSerializer

    @extend_schema(summary="为多名教师一次录入校本研修学分（全部成功或全部不写）", request=SchoolCreditsSerializer,
                   responses={201: OpenApiResponse(description="生成的记录 id"), **ERRORS})
    def post(self, request: Request) -> Response:
        if not perm.can_enter_school_credits(request.user):
            raise exceptions.PermissionDenied("只有学校学分管理专员可以录入校本研修学分")
        body = SchoolCreditsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        hours = {int(k): v for k, v in body.validated_data["hours"].items() if str(k).isdigit()}
        actor = Actor(request.user, client_ip(request))
        made = _answer(lambda: schoolcredits.enter_for_teachers(actor, body.validated_data["facts"], hours))
        return Response({"records": [r.pk for r in made]}, status=status.HTTP_201_CREATED)
