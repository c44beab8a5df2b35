from django.urls import path

from xuefen.web.views import annual

urlpatterns = [
    path("annual/", annual.index, name="annual-index"),
    path("annual/school/<int:pk>/<int:year>/", annual.school_year, name="annual-school"),
    path("annual/school/<int:pk>/<int:year>/certificates.pdf", annual.school_certificates_pdf,
         name="annual-certificates-pdf"),
    path("annual/school/<int:pk>/<int:year>/<str:action>/", annual.school_year_action, name="annual-action"),
    path("annual/district/<int:pk>/settings/", annual.district_settings, name="annual-settings"),
    path("me/certificates/", annual.my_certificates, name="my-certificates"),
    path("teachers/<int:pk>/certificates/", annual.teacher_certificates, name="teacher-certificates"),
    path("teachers/<int:pk>/statement.pdf", annual.statement, name="teacher-statement"),
    path("teachers/<int:pk>/booklet.pdf", annual.booklet, name="teacher-booklet"),
    path("certificates/<int:pk>.pdf", annual.certificate_pdf, name="certificate-pdf"),
    path("certificates/<int:pk>/reissue/", annual.reissue, name="certificate-reissue"),
    path("verify/<str:token>/", annual.verify, name="verify"),
]
