from django.urls import path

from xuefen.web.views import officer

urlpatterns = [
    path("dashboard/", officer.dashboard, name="dashboard"),
    path("dashboard/org/<int:pk>/", officer.dashboard, name="dashboard-org"),
    path("dashboard/org/<int:pk>/export.xlsx", officer.dashboard_export, name="dashboard-export"),
    path("publicity/", officer.publicity, name="publicity"),
    path("publicity/<int:pk>/", officer.publicity, name="publicity-org"),
    path("teachers/<int:pk>/", officer.teacher_detail, name="teacher-detail"),
    path("review/", officer.review_queue, name="review-queue"),
    path("review/<int:pk>/<str:action>/", officer.review_action, name="review-action"),
]
