"""What the API reads and writes.  Output only: every write goes through a
service in :mod:`xuefen.web.services`; the input serializers here only give
the request a shape (and the schema its documentation), the services validate
the facts with the same interchange parser as forms and imports."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from xuefen.numbers import fmt
from xuefen.web import permissions as perm
from xuefen.web.logmask import ID_NUMBER
from xuefen.web.models import Evidence, ImportBatch, Record, Status, Teacher, TeacherResult, mask_id_number


@extend_schema_field({"type": "string", "format": "decimal", "nullable": True, "example": "24.5"})
class ExactDecimalField(serializers.Field):
    """A Decimal as its exact text ("24", "0.125"): never a float, no padding."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: Decimal | None) -> str | None:
        return None if value is None else fmt(value)


def exact(value: Any) -> Any:
    """Decimals anywhere in a nested structure → exact strings."""
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, dict):
        return {str(k): exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [exact(v) for v in value]
    return value


def mask_ids_in(value: Any) -> Any:
    """Mask every 身份证号 inside strings of a nested structure."""
    if isinstance(value, str):
        return ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), value)
    if isinstance(value, dict):
        return {k: mask_ids_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_ids_in(v) for v in value]
    return value


class EvidenceSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="证明材料下载地址（同样按权限检查）")

    class Meta:
        model = Evidence
        fields = ("id", "original_name", "content_type", "size", "sha256", "uploaded_at", "url")

    def get_url(self, obj: Evidence) -> str:
        return reverse("evidence-file", args=[obj.pk])


class RecordSerializer(serializers.ModelSerializer):
    teacher_no = serializers.CharField(source="teacher.teacher_no", read_only=True)
    teacher_name = serializers.CharField(source="teacher.name", read_only=True)
    hours = ExactDecimalField()
    days = ExactDecimalField()
    preset_credits = ExactDecimalField()
    absent_hours = ExactDecimalField()
    credits = ExactDecimalField(help_text="本条记录按所属政策折算的学分（精确小数字符串）")
    evidence = EvidenceSerializer(many=True, read_only=True)

    class Meta:
        model = Record
        fields = (
            "id", "uid", "teacher", "teacher_no", "teacher_name", "year", "title", "category", "theme", "level",
            "form", "location", "hours", "days", "preset_credits", "result", "role", "achievement", "program",
            "absent_hours", "topics", "words", "approved", "certificate", "subject_related", "education_system",
            "completed_year", "makeup_for_year", "source", "status", "status_reason", "credits", "credit_category",
            "explanation", "policy_id", "import_batch", "version", "created_at", "updated_at", "evidence",
        )
        read_only_fields = fields


class RecordFilterSerializer(serializers.Serializer):
    """Query parameters of the record list."""

    teacher = serializers.IntegerField(required=False, min_value=1, help_text="教师 id")
    year = serializers.IntegerField(required=False, min_value=1900, max_value=2999, help_text="登记年度")
    status = serializers.ChoiceField(choices=Status.choices, required=False, help_text="状态")


class ActionSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, help_text="客户端看到的记录版本（乐观锁）：记录已被他人处理时返回 409")
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                    help_text="说明；退回和撤销时必填")


def _text(help_text: str) -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, max_length=200, help_text=help_text)


def _flag(help_text: str) -> serializers.BooleanField:
    # default=None: an absent flag is "not stated", not False (DRF reads absent form booleans as False).
    return serializers.BooleanField(required=False, allow_null=True, default=None, help_text=help_text)


class DeclarationSerializer(serializers.Serializer):
    """A teacher's declaration (multipart/form-data).  Values use the
    interchange vocabulary; the service validates them exactly as the
    declaration form and the importers do."""

    year = serializers.IntegerField(help_text="登记年度")
    title = _text("培训项目名称")
    form = _text("形式（如 集中、网络）")
    level = _text("级别（如 国家级、省级、市级、区县级、校级）")
    location = _text("地点")
    hours = _text("学时（精确小数，如 24 或 1.5）")
    days = _text("天数（精确小数）")
    result = _text("考核结果（如 合格）")
    role = _text("角色")
    achievement = _text("成果类型")
    program = _text("项目")
    category = _text("学分类别")
    theme = _text("主题")
    words = serializers.IntegerField(required=False, allow_null=True, min_value=0, help_text="字数")
    certificate = _flag("取得证书")
    subject_related = _flag("所教学科相关")
    evidence = serializers.ListField(
        child=serializers.FileField(), allow_empty=False,
        help_text="证明材料（PDF、JPG 或 PNG，可多个），按文件内容而非扩展名识别")

    def facts(self) -> dict[str, Any]:
        return {k: v for k, v in self.validated_data.items() if k != "evidence" and v not in (None, "")}


class TeacherResultSummarySerializer(serializers.ModelSerializer):
    total = ExactDecimalField()
    year_total = ExactDecimalField()

    class Meta:
        model = TeacherResult
        fields = ("policy_id", "cycle_start", "cycle_end", "passed", "status", "total", "year_passed", "year_total",
                  "computed_at")


class TeacherSerializer(serializers.ModelSerializer):
    school_name = serializers.CharField(source="school.name", read_only=True)
    id_number = serializers.SerializerMethodField(help_text="身份证号；仅区县继教办与市级中心可见全号，其余角色为掩码")
    result = serializers.SerializerMethodField(help_text="最近一次保存的评估摘要（本人与所属学校以上的管理者可见）")

    class Meta:
        model = Teacher
        fields = ("id", "teacher_no", "name", "id_number", "school", "school_name", "stage", "post", "hired_year",
                  "result")

    def _user(self) -> Any:
        request = self.context.get("request")
        return getattr(request, "user", None)

    def get_id_number(self, obj: Teacher) -> str:
        return obj.id_number if perm.sees_full_id_number(self._user()) else obj.masked_id

    @extend_schema_field(TeacherResultSummarySerializer(allow_null=True))
    def get_result(self, obj: Teacher) -> dict[str, Any] | None:
        if not perm.can_view_results(self._user(), obj):
            return None
        try:
            result = obj.result
        except TeacherResult.DoesNotExist:
            return None
        return dict(TeacherResultSummarySerializer(result).data)


class EvaluationSerializer(serializers.Serializer):
    """The engine's figures for one teacher: exactly the JSON of ``xuefen
    evaluate`` (``xuefen.engine.report.as_dict``), credits as exact decimal
    strings."""

    teacher = serializers.IntegerField(help_text="教师 id")
    evaluation = serializers.DictField(help_text="与命令行 `xuefen evaluate --json` 相同的结构")


class ImportBatchSerializer(serializers.ModelSerializer):
    org_name = serializers.CharField(source="org.name", read_only=True)
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    error_count = serializers.SerializerMethodField()

    class Meta:
        model = ImportBatch
        fields: tuple[str, ...] = ("id", "org", "org_name", "uploaded_by", "file_name", "sha256", "state",
                                   "total_rows", "done_rows", "created_rows", "error_count", "created_at", "kind")
        read_only_fields: tuple[str, ...] = fields

    def get_error_count(self, obj: ImportBatch) -> int:
        return len(obj.errors or [])


class ImportBatchDetailSerializer(ImportBatchSerializer):
    errors = serializers.SerializerMethodField(help_text="逐行问题；身份证号按查看者角色掩码")

    class Meta(ImportBatchSerializer.Meta):
        fields = (*ImportBatchSerializer.Meta.fields, "errors")
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.ANY)
    def get_errors(self, obj: ImportBatch) -> Any:
        request = self.context.get("request")
        errors = obj.errors or []
        return errors if perm.sees_full_id_number(getattr(request, "user", None)) else mask_ids_in(errors)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(required=False, help_text="新令牌，只在生成时返回一次")
    refresh = serializers.CharField(required=False, help_text="刷新令牌，只在生成时返回一次")
    created = serializers.DateTimeField(allow_null=True)
    expires = serializers.DateTimeField(allow_null=True)
    refresh_expires = serializers.DateTimeField(allow_null=True)


class TokenRefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=100)
