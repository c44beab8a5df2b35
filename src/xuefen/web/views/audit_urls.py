from django.urls import path

from xuefen.web.views import audit

urlpatterns = [
    path("audit/", audit.log_view, name="audit-log"),
]
