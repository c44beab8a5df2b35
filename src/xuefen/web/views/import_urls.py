from django.urls import path

from xuefen.web.views import imports

urlpatterns = [
    path("imports/", imports.index, name="imports"),
]
