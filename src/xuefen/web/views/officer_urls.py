from django.urls import path

from xuefen.web.views import officer, review

urlpatterns = [
    path("dashboard/", officer.dashboard, name="dashboard"),
    path("dashboard/org/<int:pk>/", officer.dashboard, name="dashboard-org"),
    path("dashboard/org/<int:pk>/export.xlsx", officer.dashboard_export, name="dashboard-export"),
    path("publicity/", officer.publicity, name="publicity"),
    path("publicity/<int:pk>/", officer.publicity, name="publicity-org"),
    path("teachers/<int:pk>/", officer.teacher_detail, name="teacher-detail"),
    path("review/", review.review_queue, name="review-queue"),
    path("review/bulk/", review.review_bulk, name="review-bulk"),
    path("review/jobs/<int:pk>/", review.review_job, name="review-job"),
    path("review/jobs/<int:pk>/progress/", review.review_job_progress, name="review-job-progress"),
    path("review/<int:pk>/<str:action>/", review.review_action, name="review-action"),
]
