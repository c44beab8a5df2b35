from django.urls import path

from xuefen.web.views import security

urlpatterns = [
    path("account/password/", security.password_change, name="account-password"),
    path("account/otp/", security.otp_setup, name="account-otp"),
    path("account/locks/", security.locks, name="account-locks"),
    path("account/locks/unlock/", security.unlock, name="account-unlock"),
]
