"""The production command: several workers need the shared cache; system checks pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path, **variables) -> dict:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_")
        and k not in ("DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY")
    }
    environment.update(GATEWAY_DATA_DIR=str(tmp_path), **variables)
    return environment


def _load_gunicorn_config(tmp_path, **variables) -> subprocess.CompletedProcess:
    code = "import runpy; config = runpy.run_path('gatewaysite/gunicorn.py'); print(config['workers'], config['bind'])"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(tmp_path, **variables),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_several_workers_without_redis_refuse_to_start(tmp_path):
    result = _load_gunicorn_config(tmp_path, WEB_CONCURRENCY="2")
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr


def test_several_workers_with_redis_start(tmp_path):
    result = _load_gunicorn_config(
        tmp_path,
        WEB_CONCURRENCY="3",
        REDIS_URL="redis://127.0.0.1:6379/0",
        GATEWAY_BIND="127.0.0.1:9123",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "127.0.0.1:9123"]


def test_one_worker_without_redis_starts(tmp_path):
    assert _load_gunicorn_config(tmp_path, WEB_CONCURRENCY="1").returncode == 0


def _check(tmp_path, **variables) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_env(tmp_path, **variables),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_system_checks_pass_on_local_memory_with_the_ratelimit_check_silenced(tmp_path):
    result = _check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 silenced" in result.stdout


def test_system_checks_pass_on_redis_with_nothing_silenced(tmp_path):
    result = _check(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode == 0, result.stderr
    assert "0 silenced" in result.stdout
