"""Gateway settings, read from the environment (see .env.example and the README)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from gatewaysite.env import (
    env_bool,
    env_choice,
    env_file_load,
    env_int,
    env_list,
    env_origins,
    env_rate,
    env_str,
    env_url,
    public_url,
    secret_key,
    storage_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# KEY=value lines of the project's .env (or GATEWAY_ENV_FILE), under the environment's own values.
GATEWAY_ENV_FILE = env_file_load(BASE_DIR / ".env")

GATEWAY_DATA_DIR = Path(env_str("GATEWAY_DATA_DIR", str(BASE_DIR / "var"))).resolve()
GATEWAY_DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = secret_key("GATEWAY_SECRET_KEY", GATEWAY_DATA_DIR)
DEBUG = env_bool("GATEWAY_DEBUG", False)

GATEWAY_PUBLIC_URL = public_url("GATEWAY_PUBLIC_URL")
ALLOWED_HOSTS = env_list("GATEWAY_ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
SILENCED_SYSTEM_CHECKS: list[str] = []
if GATEWAY_PUBLIC_URL:
    ALLOWED_HOSTS.append(urlsplit(GATEWAY_PUBLIC_URL).hostname or "")  # public_url() checked it
    CSRF_TRUSTED_ORIGINS = [GATEWAY_PUBLIC_URL]

# Served over https (the public URL says so): http is redirected to the public host, cookies are
# sent over https only, and browsers are told to use https for this host (HSTS). /healthz
# answers over http too, for load balancers that probe the instance directly.
GATEWAY_HTTPS = bool(GATEWAY_PUBLIC_URL and GATEWAY_PUBLIC_URL.startswith("https://"))
# Reached only through a proxy: trust its X-Forwarded-Proto (whether the request came over https)
# and the address it appends to X-Forwarded-For (gatewaysite.security.client_address).
GATEWAY_BEHIND_PROXY = env_bool("GATEWAY_BEHIND_PROXY", GATEWAY_HTTPS)
# How long browsers keep to https for this host once they saw it over https; 0 turns HSTS off.
GATEWAY_HSTS_SECONDS = env_int("GATEWAY_HSTS_SECONDS", 31_536_000)
if GATEWAY_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if GATEWAY_HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_SSL_HOST = urlsplit(GATEWAY_PUBLIC_URL).netloc
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = GATEWAY_HSTS_SECONDS
    # HSTS covers Gateway's own host only: including every subdomain, or asking browsers to
    # preload the domain, is the domain owner's decision, not Gateway's (security.W005, W021).
    SILENCED_SYSTEM_CHECKS += ["security.W005", "security.W021"]

GATEWAY_SCHEMA_AUTH = env_choice("GATEWAY_SCHEMA_AUTH", "bearer", ("bearer", "header", "oauth"))
GATEWAY_SCHEMA_PUBLIC = env_bool("GATEWAY_SCHEMA_PUBLIC", True)
GATEWAY_DEFAULT_RATE = env_rate("GATEWAY_DEFAULT_RATE", "60/m")
GATEWAY_MAX_RESPONSE_CHARS = env_int("GATEWAY_MAX_RESPONSE_CHARS", 100_000, minimum=1000)
GATEWAY_USAGE_RETENTION_DAYS = env_int("GATEWAY_USAGE_RETENTION_DAYS", 90, minimum=1)
GATEWAY_UPLOAD_MAX_MB = env_int("GATEWAY_UPLOAD_MAX_MB", 1024, minimum=1)
# Dataset versions in an S3-compatible object store (datasets/store.py), so that every host
# serves every dataset; unset, versions are local files in the data directory only.
GATEWAY_STORAGE = storage_url("GATEWAY_STORAGE_URL")
GATEWAY_STORAGE_ENDPOINT = env_url("GATEWAY_STORAGE_ENDPOINT", schemes=("https", "http"))
AWS_REGION = env_str("AWS_REGION", "us-east-1")
# The local cache of versions fetched from the store, in MB (least recently used leave first).
GATEWAY_CACHE_MB = env_int("GATEWAY_CACHE_MB", 10240, minimum=1)
# Answers on uploaded datasets kept in each process, in MB (datasets/engine/result_cache.py).
GATEWAY_RESULT_CACHE_MB = env_int("GATEWAY_RESULT_CACHE_MB", 64, minimum=0)
# Hours a superseded or deleted version stays in the store (manage.py prune_store).
GATEWAY_STORAGE_RETENTION_HOURS = env_int("GATEWAY_STORAGE_RETENTION_HOURS", 24, minimum=1)
# Failed sign-ins to /admin/login/ allowed per username and per client address (gatewaysite/login.py).
GATEWAY_LOGIN_RATE = env_rate("GATEWAY_LOGIN_RATE", "10/15m")
# Requests with a rejected API key allowed per client address (keys/ratelimit.py).
GATEWAY_FAILED_AUTH_RATE = env_rate("GATEWAY_FAILED_AUTH_RATE", "30/m")
# Web origins allowed to call /mcp from a browser (ChatGPT's and Claude's by default); any other
# Origin header is refused with 403 (DNS rebinding, a page calling the endpoint with a user's key).
GATEWAY_ALLOWED_ORIGINS = env_origins(
    "GATEWAY_ALLOWED_ORIGINS",
    ["https://chatgpt.com", "https://chat.openai.com", "https://claude.ai"],
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_ratelimit",
    "gatewaysite.apps.GatewaySiteConfig",
    "datasets",
    "keys",
    "access",
    "oauth2_provider",
    "accounts",
]

MIDDLEWARE = [
    # First, so that every response gets the policy, static files and errors included.
    "gatewaysite.security.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "access.middleware.UsageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gatewaysite.urls"
WSGI_APPLICATION = "gatewaysite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database(url: str | None) -> dj_database_url.DBConfig:
    if url is None:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(GATEWAY_DATA_DIR / "gateway.sqlite3"),
            "CONN_MAX_AGE": 600,
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    try:
        config = dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    except ValueError as error:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {error}") from None
    if not config.get("ENGINE"):
        raise ImproperlyConfigured(
            "DATABASE_URL is not a database URL: use postgresql://user:pass@host:5432/db."
        )
    return config


DATABASES = {
    "default": _database(
        env_url("DATABASE_URL", schemes=("postgres", "postgresql", "postgis", "sqlite", "mysql"))
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Local memory is per process. It is safe for `make run` (one process: every counter lives
    # in it) and unsafe for several workers (each would count its own budget): the production
    # command refuses to start several workers without REDIS_URL (see gatewaysite/gunicorn.py).
    SILENCED_SYSTEM_CHECKS += ["django_ratelimit.E003", "django_ratelimit.W001"]

RATELIMIT_USE_CACHE = "default"
RATELIMIT_VIEW = None
# django-ratelimit's "ip" key: REMOTE_ADDR, or the proxy's X-Forwarded-For entry behind a proxy.
RATELIMIT_IP_META_KEY = "gatewaysite.security.client_address"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = GATEWAY_DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# A dataset's change form sends 10 fields per column (12 leaves room): Django's default of 1000
# fields stopped at about 90 columns; this fits datasets of up to 2000 columns. The body itself
# stays capped by DATA_UPLOAD_MAX_MEMORY_SIZE.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 12 * 2000 + 200

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "access.authentication.CallerAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["access.permissions.HasCredential"],
    "DEFAULT_THROTTLE_CLASSES": ["access.permissions.PolicyThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "gatewaysite.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "URL_FORMAT_OVERRIDE": None,
}

# OAuth 2.1 authorization server (django-oauth-toolkit): people sign in instead of sharing a key.
# Authorization code only, PKCE S256 (required for every client but the admin's GPT Actions
# clients: accounts/oauth.py), refresh tokens rotated, tokens and client secrets stored hashed.
# See docs/oauth.md.
GATEWAY_OAUTH_REGISTRATION_RATE = env_rate("GATEWAY_OAUTH_REGISTRATION_RATE", "10/h")
GATEWAY_OAUTH_TOKEN_SECONDS = env_int("GATEWAY_OAUTH_TOKEN_SECONDS", 3600, minimum=60)
# Client ID metadata documents (CIMD) are read only from these hosts (ALLOWED_HOSTS syntax, "*"
# any): django-oauth-toolkit fetches them over https from public addresses only, bounded in size
# and time. Empty: CIMD off.
GATEWAY_OAUTH_CIMD_HOSTS = env_list("GATEWAY_OAUTH_CIMD_HOSTS", ["*"])
# prune_oauth_clients deletes self-registered clients without a token after this many hours.
GATEWAY_OAUTH_CLIENT_UNUSED_HOURS = env_int("GATEWAY_OAUTH_CLIENT_UNUSED_HOURS", 24, minimum=1)
# Named for the migrations that refer to it (accounts.GptActionsClient): not swapped.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "accounts.oauth.GatewayOAuth2Validator",
    "ACCESS_TOKEN_GENERATOR": "accounts.oauth.access_token_generate",
    "REFRESH_TOKEN_GENERATOR": "accounts.oauth.refresh_token_generate",
    "SCOPES": {"datasets": "Read the datasets you are granted"},
    "DEFAULT_SCOPES": ["datasets"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": GATEWAY_OAUTH_TOKEN_SECONDS,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "REFRESH_TOKEN_EXPIRE_SECONDS": 30 * 24 * 3600,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    "ALLOW_LOCALHOST_LOOPBACK": True,
    "OIDC_ISS_ENDPOINT": GATEWAY_PUBLIC_URL or "",
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_PROTECTED_RESOURCE_NAME": "Gateway",
    "DCR_ENABLED": True,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    "CIMD_ENABLED": bool(GATEWAY_OAUTH_CIMD_HOSTS),
    "CIMD_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.cimd.HostAllowlistCIMDPermission",),
    "CIMD_ALLOWED_HOSTS": GATEWAY_OAUTH_CIMD_HOSTS,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
}
# http redirects stay allowed for loopback callbacks of native MCP clients (RFC 8252) only: the
# validator refuses any other http redirect (accounts/oauth.py).
SILENCED_SYSTEM_CHECKS += ["oauth2_provider.W008"]

SPECTACULAR_SETTINGS = {
    "TITLE": "Gateway",
    "DESCRIPTION": (
        "Datasets published for ChatGPT and API clients. Use the aggregate operation of a "
        "dataset for totals, counts and averages, its list rows operation for records, and "
        "describe_dataset for its columns."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Adds each dataset's concrete operations and enforces ChatGPT's import rules.
    "DEFAULT_GENERATOR_CLASS": "datasets.schema.generator.GatewaySchemaGenerator",
    # Not the default enum hook: it moves enums into components and makes nullable ones oneOf
    # with a null schema, which the GPT Builder rejects.
    "POSTPROCESSING_HOOKS": [],
    "ENUM_ADD_EXPLICIT_BLANK_NULL_CHOICE": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None, "displayOperationId": True},
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"gateway": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
