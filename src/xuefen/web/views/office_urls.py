from django.urls import path

from xuefen.web.views import office

urlpatterns = [
    path("spot-checks/", office.spot_checks, name="spot-checks"),
    path("spot-checks/<int:pk>/", office.spot_check, name="spot-check"),
    path("spot-checks/items/<int:pk>/", office.spot_check_result, name="spot-check-result"),
    path("records/<int:pk>/correct/", office.correct, name="record-correct"),
    path("school-credits/", office.school_credits, name="school-credits"),
]
