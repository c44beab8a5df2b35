"""Django settings for the xuefen platform.

Embedded defaults (no environment): SQLite under ``var/``, background work run
inline, debug pages off unless ``XUEFEN_DEBUG=1``.  Production is selected with
``XUEFEN_ENV=production`` and then requires a real secret key and host names;
``manage.py check --deploy`` passes with those settings.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("XUEFEN_DATA_DIR", Path.cwd() / "var"))
ENV = os.environ.get("XUEFEN_ENV", "development")
PRODUCTION = ENV == "production"
DEBUG = os.environ.get("XUEFEN_DEBUG", "0") == "1" and not PRODUCTION


def _secret_key() -> str:
    key = os.environ.get("XUEFEN_SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise RuntimeError("生产环境必须设置 XUEFEN_SECRET_KEY")
    # A per-installation key for the embedded default, created on first use.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [h for h in os.environ.get("XUEFEN_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "xuefen.web.apps.XuefenWebConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the package: no web server needed for the embedded default.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "xuefen.web.urls"
WSGI_APPLICATION = "xuefen.web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "xuefen.web.views.common.nav",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'xuefen.sqlite3'}",
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Idle timeout: a session lasts 30 minutes after the last request.
SESSION_COOKIE_AGE = int(os.environ.get("XUEFEN_SESSION_IDLE_SECONDS", "1800"))
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Login throttling (xuefen.web.services.throttle): per username and per address.
LOGIN_MAX_FAILURES = int(os.environ.get("XUEFEN_LOGIN_MAX_FAILURES", "5"))
LOGIN_LOCK_SECONDS = int(os.environ.get("XUEFEN_LOGIN_LOCK_SECONDS", "900"))

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
WHITENOISE_USE_FINDERS = True  # serve from the app's static/ without collectstatic
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
MEDIA_ROOT = DATA_DIR / "media"
# Evidence files are served through a permission-checked view, never as /media/.
EVIDENCE_MAX_BYTES = int(os.environ.get("XUEFEN_EVIDENCE_MAX_BYTES", str(10 * 1024 * 1024)))
IMPORT_MAX_BYTES = int(os.environ.get("XUEFEN_IMPORT_MAX_BYTES", str(50 * 1024 * 1024)))
IMPORT_BACKGROUND_ROWS = int(os.environ.get("XUEFEN_IMPORT_BACKGROUND_ROWS", "2000"))

CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "xuefen_cache"}}
if os.environ.get("REDIS_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}}

# Background work: Celery when a broker is configured, inline otherwise.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF tokens with an age limit; obtained only through a logged-in session.
        "xuefen.web.api.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "COERCE_DECIMAL_TO_STRING": True,
}
API_TOKEN_MAX_AGE_DAYS = int(os.environ.get("XUEFEN_API_TOKEN_DAYS", "90"))
SPECTACULAR_SETTINGS = {
    "TITLE": "xuefen API",
    "DESCRIPTION": "教师培训学分平台 REST API：记录、申报、导入与评估结果。权限与页面一致。",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components, so multipart uploads are described as binary.
    "COMPONENT_SPLIT_REQUEST": True,
    # Two models name their workflow field "state" (imports; the annual close, issue 14).
    "ENUM_NAME_OVERRIDES": {"AnnualCloseStateEnum": "xuefen.web.models.AnnualCloseState",
                            "StateEnum": "xuefen.web.models.ImportBatchState",
                            "CertificateKindEnum": "xuefen.web.models.CertificateKind",
                            "ImportKindEnum": "xuefen.web.models.ImportBatchKinds"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_ids": {"()": "xuefen.web.logmask.MaskIdNumbers"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["mask_ids"]}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

if PRODUCTION:
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"

# Certificates (issue 14): the address printed in a certificate's QR code when
# no request names it (the CLI, the demo).  The default is ./run.sh's server.
PUBLIC_BASE_URL = os.environ.get("XUEFEN_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
