from django.urls import path

from xuefen.web.views import dashboards, office

urlpatterns = [
    path("spot-checks/", office.spot_checks, name="spot-checks"),
    path("spot-checks/<int:pk>/", office.spot_check, name="spot-check"),
    path("spot-checks/items/<int:pk>/", office.spot_check_result, name="spot-check-result"),
    path("records/<int:pk>/correct/", office.correct, name="record-correct"),
    path("school-credits/", office.school_credits, name="school-credits"),
    path("dashboard/org/<int:pk>/at-risk/", dashboards.at_risk, name="at-risk"),
    path("dashboard/org/<int:pk>/at-risk.xlsx", dashboards.at_risk_export, name="at-risk-export"),
]
