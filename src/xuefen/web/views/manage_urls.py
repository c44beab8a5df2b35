from django.urls import path

from xuefen.web.views import manage

urlpatterns = [
    path("manage/", manage.orgs, name="manage-orgs"),
    path("manage/orgs/<int:pk>/", manage.org_detail, name="manage-org"),
    path("manage/users/", manage.users, name="manage-users"),
    path("manage/users/<int:pk>/", manage.user_detail, name="manage-user"),
    path("manage/users/<int:pk>/reset-password/", manage.user_reset_password, name="manage-user-reset"),
]
