from django.templatetags.static import static
from django.urls import include, path
from django.views.generic.base import RedirectView
from django.views.i18n import set_language

from xuefen.web.views import auth, common

urlpatterns = [
    path("", common.home, name="home"),
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("favicon.ico", RedirectView.as_view(url=static("xuefen/favicon.svg"), permanent=True)),
    path("", include("xuefen.web.views.teacher_urls")),
    path("", include("xuefen.web.views.officer_urls")),
    path("", include("xuefen.web.views.import_urls")),
    path("", include("xuefen.web.views.audit_urls")),
    path("", include("xuefen.web.views.manage_urls")),
    path("", include("xuefen.web.views.office_urls")),
    path("", include("xuefen.web.views.security_urls")),
    path("", include("xuefen.web.views.annual_urls")),
    path("", include("xuefen.web.views.training_urls")),
    path("api/", include("xuefen.web.api.urls")),
]
