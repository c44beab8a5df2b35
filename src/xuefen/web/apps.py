from django.apps import AppConfig


class XuefenWebConfig(AppConfig):
    name = "xuefen.web"
    label = "xuefen"
    verbose_name = "学分平台"
    default_auto_field = "django.db.models.BigAutoField"
