from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from xuefen.web.api import training, views

router = DefaultRouter()
router.include_root_view = False
router.register("records", views.RecordViewSet, basename="api-record")
router.register("declarations", views.DeclarationViewSet, basename="api-declaration")
router.register("teachers", views.TeacherViewSet, basename="api-teacher")
router.register("imports", views.ImportBatchViewSet, basename="api-import")
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
    path("", include(router.urls)),
]
