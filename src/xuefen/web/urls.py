from django.urls import include, path
from django.views.i18n import set_language

from xuefen.web.views import auth, common

urlpatterns = [
    path("", common.home, name="home"),
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("", include("xuefen.web.views.teacher_urls")),
    path("", include("xuefen.web.views.officer_urls")),
    path("", include("xuefen.web.views.import_urls")),
    path("", include("xuefen.web.views.audit_urls")),
    path("", include("xuefen.web.views.training_urls")),
    path("api/", include("xuefen.web.api.urls")),
]
