from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from xuefen.web.api import annual, office, training, views

router = DefaultRouter()
router.include_root_view = False
router.register("records", views.RecordViewSet, basename="api-record")
router.register("declarations", views.DeclarationViewSet, basename="api-declaration")
router.register("teachers", views.TeacherViewSet, basename="api-teacher")
router.register("imports", views.ImportBatchViewSet, basename="api-import")
router.register("annual-closes", annual.AnnualCloseViewSet, basename="api-annual-close")
router.register("objections", annual.ObjectionViewSet, basename="api-objection")
router.register("certificates", annual.CertificateViewSet, basename="api-certificate")
# training (issue 15)
router.register("training/projects", training.ProjectViewSet, basename="api-training-project")
router.register("training/courses", training.CourseViewSet, basename="api-training-course")
router.register("training/classes", training.ClassViewSet, basename="api-training-class")
router.register("training/enrolments", training.EnrolmentViewSet, basename="api-training-enrolment")
router.register("training/sessions", training.SessionViewSet, basename="api-training-session")
router.register("research", training.ResearchViewSet, basename="api-research")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("token/", views.TokenView.as_view(), name="api-token"),
    path("records/bulk/", office.BulkReviewView.as_view(), name="api-records-bulk"),
    path("review-jobs/<int:pk>/", office.BulkJobView.as_view(), name="api-review-job"),
    path("token/refresh/", views.TokenRefreshView.as_view(), name="api-token-refresh"),
    path("records/<int:pk>/correct/", office.CorrectView.as_view(), name="api-record-correct"),
    path("spot-checks/", office.SpotChecksView.as_view(), name="api-spot-checks"),
    path("spot-check-items/<int:pk>/", office.SpotCheckResultView.as_view(), name="api-spot-check-result"),
    path("school-credits/", office.SchoolCreditsView.as_view(), name="api-school-credits"),
    path("", include(router.urls)),
]
