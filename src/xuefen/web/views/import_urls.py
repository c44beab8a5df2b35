from django.urls import path

from xuefen.web.views import imports

urlpatterns = [
    path("imports/", imports.index, name="imports"),
    path("imports/template.xlsx", imports.template, name="imports-template"),
    path("imports/<int:pk>/", imports.detail, name="imports-detail"),
    path("imports/<int:pk>/progress/", imports.progress, name="imports-progress"),
    path("imports/<int:pk>/confirm/", imports.confirm, name="imports-confirm"),
]
