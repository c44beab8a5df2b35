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

from xuefen.web import permissions as perm
from xuefen.web.api.views import ERRORS, Conflict, Refused, client_ip
from xuefen.web.models import BulkReview
from xuefen.web.services import review
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
                from xuefen.web.tasks import bulk_review

                job = review.start_job(actor, data["ids"], data["action"], data["comment"])
                bulk_review.delay(job.pk, actor.ip)
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
