"""Settings come from the environment; bad values stop start-up with the variable named."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from gatewaysite import env

ROOT = Path(__file__).resolve().parents[2]


def _start(tmp_path, **variables) -> subprocess.CompletedProcess:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    environment.update(
        GATEWAY_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="gatewaysite.settings", **variables
    )
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_DEBUG", "perhaps"),
        ("DATABASE_URL", "nonsense"),
        ("REDIS_URL", "localhost:6379"),
        ("GATEWAY_MAX_RESPONSE_CHARS", "lots"),
        ("GATEWAY_DEFAULT_RATE", "fast"),
        ("GATEWAY_SCHEMA_AUTH", "cookie"),
        ("GATEWAY_PUBLIC_URL", "gateway.example.com"),
    ],
)
def test_invalid_value_stops_startup_naming_the_variable(tmp_path, variable, value):
    result = _start(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr.splitlines()[-1]


def test_defaults_start_and_keep_one_generated_secret_key(tmp_path):
    assert _start(tmp_path).returncode == 0
    first = (tmp_path / "secret_key").read_text()
    assert _start(tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text() == first
    assert len(first) >= 50


class TestHelpers:
    valid = [
        (env.env_bool, "true", True),
        (env.env_bool, "No", False),
        (env.env_bool, "1", True),
        (env.env_int, "42", 42),
        (env.env_rate, "60/m", "60/m"),
        (env.env_rate, "1000/h", "1000/h"),
        (env.env_list, "a, b,,c", ["a", "b", "c"]),
    ]
    invalid = [
        (env.env_bool, "perhaps"),
        (env.env_int, "4.5"),
        (env.env_int, "-1"),
        (env.env_rate, "60 per minute"),
    ]

    @pytest.mark.parametrize(("reader", "raw", "expected"), valid)
    def test_valid(self, monkeypatch, reader, raw, expected):
        monkeypatch.setenv("GATEWAY_X", raw)
        default = {env.env_bool: False, env.env_int: 0, env.env_rate: "1/s", env.env_list: []}[
            reader
        ]
        assert reader("GATEWAY_X", default) == expected

    @pytest.mark.parametrize(("reader", "raw"), invalid)
    def test_invalid(self, monkeypatch, reader, raw):
        monkeypatch.setenv("GATEWAY_X", raw)
        default = {env.env_bool: False, env.env_int: 0, env.env_rate: "1/s"}[reader]
        with pytest.raises(ImproperlyConfigured, match="GATEWAY_X"):
            reader("GATEWAY_X", default)


def test_env_example_lists_every_variable_the_settings_read():
    settings_source = (ROOT / "gatewaysite" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\("([A-Z_]+)"', settings_source)) | set(
        re.findall(r'(?:public_url|secret_key)\("([A-Z_]+)"', settings_source)
    )
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert read, "no variables found in settings.py"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"
