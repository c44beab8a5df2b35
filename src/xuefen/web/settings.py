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
# Production names its hosts (issue 19 item 12): the development list would
# answer any request that reaches the server by a loopback name.
if PRODUCTION and not os.environ.get("XUEFEN_ALLOWED_HOSTS"):
    raise RuntimeError("生产环境必须设置 XUEFEN_ALLOWED_HOSTS（本平台对外的域名，逗号分隔）")
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
    "django_otp",
    "django_otp.plugins.otp_totp",
    "xuefen.web.apps.XuefenWebConfig",
]

MIDDLEWARE = [
    "xuefen.web.middleware.RequestSizeLimit",
    "django.middleware.security.SecurityMiddleware",
    "xuefen.web.views.security.ContentSecurityPolicy",
    # Static files straight from the package: no web server needed for the embedded default.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "xuefen.web.middleware.SessionTouch",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Idle and absolute timeouts, sessions ended elsewhere, forced password change.
    "xuefen.web.views.security.SessionGuard",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "xuefen.web.middleware.DatabaseBusy",
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

# Connections (issue 19 item 11): the production server (gunicorn, xuefen.web.serving)
# runs a fixed number of worker threads, each keeping one connection for
# CONN_MAX_AGE seconds, so the server never holds more than workers × threads
# connections however many browsers are open.  Under the development server,
# which starts a thread per request, a kept connection would outlive its
# thread: there it is closed after each request.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'xuefen.sqlite3'}",
        conn_max_age=int(os.environ.get("XUEFEN_DB_CONN_MAX_AGE", "60" if PRODUCTION else "0")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # Concurrent writers on the embedded database (issue 19 item 5): WAL lets
    # readers go on while one writes; every transaction takes the write lock
    # when it begins (IMMEDIATE), so two writers queue on the busy timeout
    # instead of one failing at its first write with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": int(os.environ.get("XUEFEN_SQLITE_BUSY_SECONDS", "30")),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
    if PRODUCTION and os.environ.get("XUEFEN_ALLOW_SQLITE") != "1":
        raise RuntimeError("生产环境须使用 PostgreSQL（设置 DATABASE_URL）；"
                           "确需在生产环境使用 SQLite 时设置 XUEFEN_ALLOW_SQLITE=1")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# 等保2.0 8.1.4.1 身份鉴别 a (口令复杂度) / ASVS V2.1: length, three of four
# character classes, not the username, name or ID number, not a common password.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "xuefen.web.services.accounts.CharacterClassesValidator", "OPTIONS": {"classes": 3}},
    {"NAME": "xuefen.web.services.accounts.NotIdentityValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Idle timeout: a session lasts 30 minutes after the last request.
SESSION_COOKIE_AGE = int(os.environ.get("XUEFEN_SESSION_IDLE_SECONDS", "1800"))
# Not saved on every request: SessionTouch (web/middleware.py) pushes the expiry on
# at most once a minute, so the idle timeout holds to within that minute.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_TOUCH_SECONDS = int(os.environ.get("XUEFEN_SESSION_TOUCH_SECONDS", "60"))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Absolute session life (views.security.SessionGuard): 12 hours after login,
# whatever the activity; the idle limit is SESSION_COOKIE_AGE above.
SESSION_ABSOLUTE_SECONDS = int(os.environ.get("XUEFEN_SESSION_ABSOLUTE_SECONDS", str(12 * 3600)))
SESSION_IDLE_SECONDS = SESSION_COOKIE_AGE

# Login throttling (xuefen.web.services.throttle): per username and client
# address together, so neither a stranger nor a school behind one NAT can lock
# someone else out; and per address over many usernames (password spraying).
LOGIN_MAX_FAILURES = int(os.environ.get("XUEFEN_LOGIN_MAX_FAILURES", "5"))
LOGIN_LOCK_SECONDS = int(os.environ.get("XUEFEN_LOGIN_LOCK_SECONDS", "900"))
LOGIN_SPRAY_USERNAMES = int(os.environ.get("XUEFEN_LOGIN_SPRAY_USERNAMES", "30"))
# Reverse proxies whose X-Forwarded-For is believed (addresses or networks,
# comma-separated); from anyone else the header is ignored.
TRUSTED_PROXIES = [p.strip() for p in os.environ.get("XUEFEN_TRUSTED_PROXIES", "").split(",") if p.strip()]
# Roles offered the optional TOTP second factor (等保 8.1.4.1 d: 两种或两种以上组合的鉴别技术).
OTP_ROLES = ("district_office", "city_center", "sysadmin")
OTP_TOTP_ISSUER = "xuefen 学分平台"

# The audit chain's anchors (services.audit): every N entries or T seconds,
# and, when set, appended to a file that should live on other storage.
AUDIT_ANCHOR_EVERY = int(os.environ.get("XUEFEN_AUDIT_ANCHOR_EVERY", "100"))
AUDIT_ANCHOR_SECONDS = int(os.environ.get("XUEFEN_AUDIT_ANCHOR_SECONDS", "3600"))
AUDIT_ANCHOR_FILE = os.environ.get("XUEFEN_AUDIT_ANCHOR_FILE", "")

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Embedded default: served from the app's static/ without collectstatic.  Production
# (issue 19 item 11): `xuefen serve` collects them into STATIC_ROOT with gzip copies,
# which WhiteNoise serves itself; no finder is consulted per request.
WHITENOISE_USE_FINDERS = not PRODUCTION
if PRODUCTION:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
else:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
MEDIA_ROOT = DATA_DIR / "media"
# Evidence files are served through a permission-checked view, never as /media/.
EVIDENCE_MAX_BYTES = int(os.environ.get("XUEFEN_EVIDENCE_MAX_BYTES", str(10 * 1024 * 1024)))
IMPORT_MAX_BYTES = int(os.environ.get("XUEFEN_IMPORT_MAX_BYTES", str(50 * 1024 * 1024)))
IMPORT_BACKGROUND_ROWS = int(os.environ.get("XUEFEN_IMPORT_BACKGROUND_ROWS", "2000"))
# Hostile files (issue 19 items 3-4, issue 17 item 4): a roster file's size once
# unpacked, rows and columns; evidence per declaration; the body of any request.
IMPORT_MAX_ROWS = int(os.environ.get("XUEFEN_IMPORT_MAX_ROWS", "200000"))
IMPORT_MAX_COLUMNS = int(os.environ.get("XUEFEN_IMPORT_MAX_COLUMNS", "64"))
IMPORT_MAX_UNPACKED_BYTES = int(os.environ.get("XUEFEN_IMPORT_MAX_UNPACKED_BYTES", str(256 * 1024 * 1024)))
# A running import whose heartbeat is older than this has lost its worker (services.imports.recover).
IMPORT_LEASE_SECONDS = int(os.environ.get("XUEFEN_IMPORT_LEASE_SECONDS", "300"))
# Broker unreachable for a large file: "inline" runs the work in the request, "fail" refuses it clearly.
IMPORT_BROKER_FALLBACK = os.environ.get("XUEFEN_IMPORT_BROKER_FALLBACK", "inline")
EVIDENCE_MAX_FILES = int(os.environ.get("XUEFEN_EVIDENCE_MAX_FILES", "5"))
EVIDENCE_MAX_TOTAL_BYTES = int(os.environ.get("XUEFEN_EVIDENCE_MAX_TOTAL_BYTES", str(20 * 1024 * 1024)))
REQUEST_MAX_BYTES = int(os.environ.get("XUEFEN_REQUEST_MAX_BYTES",
                                       str(max(IMPORT_MAX_BYTES, EVIDENCE_MAX_TOTAL_BYTES) + 1024 * 1024)))

CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "xuefen_cache"}}
if os.environ.get("REDIS_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}}

# Background work: Celery when a broker is configured, inline otherwise.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("XUEFEN_BROKER_TIMEOUT_SECONDS", "3"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Hashed, short-lived tokens; obtained only through a logged-in session.
        "xuefen.web.api.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "COERCE_DECIMAL_TO_STRING": True,
}
# API tokens (api.authentication): stored as digests; an access token lives
# hours, its refresh token days; both end at logout and password change.
API_TOKEN_HOURS = int(os.environ.get("XUEFEN_API_TOKEN_HOURS", "8"))
API_REFRESH_DAYS = int(os.environ.get("XUEFEN_API_REFRESH_DAYS", "7"))
SPECTACULAR_SETTINGS = {
    "TITLE": "xuefen API",
    "DESCRIPTION": "教师培训学分平台 REST API：记录、申报、导入与评估结果。权限与页面一致。",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # GET /api/schema/ for signed-in users only (issue 19 item 12): the same
    # description is public in the repository (docs/api/openapi.yaml), but an
    # anonymous probe of a deployment learns nothing from the server itself.
    # XUEFEN_API_SCHEMA_PUBLIC=1 serves it to anyone.
    "SERVE_PERMISSIONS": (["rest_framework.permissions.AllowAny"] if os.environ.get("XUEFEN_API_SCHEMA_PUBLIC") == "1"
                          else ["rest_framework.permissions.IsAuthenticated"]),
    # Separate request and response components, so multipart uploads are described as binary.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "xuefen.web.api.schema.add_common_responses"],
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

# --- office work (issue 16) ---
# A batch review over more records than this runs as a background job with a
# progress bar (services.review); without a broker it runs in the request.
REVIEW_BACKGROUND_RECORDS = int(os.environ.get("XUEFEN_REVIEW_BACKGROUND_RECORDS", "300"))
REVIEW_PAGE_SIZE = 50
# A declaration's 登记年度: this year or up to this many years before it
# (services.declarations; 朝阳 附件3 第三十条 opens declarations in March).
DECLARATION_YEARS_BACK = int(os.environ.get("XUEFEN_DECLARATION_YEARS_BACK", "1"))
# Certificates (issue 14): the address printed in a certificate's QR code when
# no request names it (the CLI, the demo).  The default is ./run.sh's server.
PUBLIC_BASE_URL = os.environ.get("XUEFEN_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
