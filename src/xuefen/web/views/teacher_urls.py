from django.urls import path

from xuefen.web.views import teacher

urlpatterns = [
    path("me/", teacher.home, name="teacher-home"),
    path("me/declare/", teacher.declare, name="declare"),
    path("me/records/<int:pk>/resubmit/", teacher.resubmit, name="resubmit"),
    path("me/export.xlsx", teacher.export_account, name="teacher-export"),
    path("records/<int:pk>/", teacher.record_detail, name="record-detail"),
    path("evidence/<int:pk>/", teacher.evidence_file, name="evidence-file"),
]
