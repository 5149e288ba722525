"""Strict readers of environment variables: a bad value stops start-up naming the variable."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_RATE = re.compile(r"^\d+/\d*[smhd]$")


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_file_load(default: Path) -> Path:
    """Read `GATEWAY_ENV_FILE` (else `default`, the project's `.env`) into the environment.

    Variables already set in the environment win over the file's; a missing file is no error.
    """
    path = Path(os.environ.get("GATEWAY_ENV_FILE") or default)
    if path.is_file():
        load_dotenv(path, override=False)
    return path


def env_str(name: str, default: str) -> str:
    """A plain string."""
    return _raw(name) or default


def env_bool(name: str, default: bool) -> bool:
    """true/false, yes/no, on/off, 1/0; anything else is an error."""
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use true or false.")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """A whole number no smaller than `minimum`."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at least {minimum}.")
    return number


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of a fixed set of words."""
    value = (_raw(name) or default).lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of: {', '.join(choices)}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_origins(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of web origins (scheme://host[:port], no path)."""
    origins = []
    for item in env_list(name, default):
        parts = urlsplit(item)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.path.strip("/"):
            raise ImproperlyConfigured(
                f"{name} has {item!r}, which is not a web origin: use a form such as "
                "https://chatgpt.com (scheme and host, no path)."
            )
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return origins


def env_rate(name: str, default: str) -> str:
    """A django-ratelimit rate such as 60/m."""
    value = _raw(name) or default
    if not _RATE.match(value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate: use a form such as 60/m or 1000/h."
        )
    return value


def env_url(name: str, *, schemes: tuple[str, ...]) -> str | None:
    """An absolute URL with one of `schemes`, or None when unset."""
    value = _raw(name)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a valid URL: expected {' or '.join(s + '://…' for s in schemes)}."
        )
    return value


def storage_url(name: str) -> tuple[str, str] | None:
    """(bucket, key prefix) of an s3://bucket/prefix URL, or None when unset."""
    value = env_url(name, schemes=("s3",))
    if value is None:
        return None
    parts = urlsplit(value)
    # S3's bucket rule: 3-63 lower-case letters, digits, dots and hyphens.
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", parts.netloc):
        raise ImproperlyConfigured(
            f"{name}={value!r} does not name a bucket: use s3://bucket/prefix (a bucket name of "
            "3-63 lower-case letters, digits, dots and hyphens)."
        )
    return parts.netloc, parts.path.strip("/")


def public_url(name: str) -> str | None:
    """The https address users reach, without a trailing slash."""
    value = env_url(name, schemes=("https", "http"))
    if value is None:
        return None
    parts = urlsplit(value)
    if not parts.hostname:
        raise ImproperlyConfigured(f"{name}={value!r} has no host name.")
    return value.rstrip("/")


def secret_key(name: str, data_dir: Path) -> str:
    """The key from the environment, else one generated once and kept in the data directory."""
    value = _raw(name)
    if value is not None:
        return value
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: two workers starting at once agree on one key.
        fd, temp = tempfile.mkstemp(dir=data_dir)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
    return path.read_text().strip()
