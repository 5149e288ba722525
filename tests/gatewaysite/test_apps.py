"""Start-up work: a fresh threaded server answers its first concurrent schema requests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONCURRENT = 24
STARTUP_SECONDS = 60


def _environment(data_dir: Path) -> dict[str, str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    environment.update(
        GATEWAY_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="gatewaysite.settings"
    )
    return environment


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _wait_until_up(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server stopped during start-up"
        try:
            _status(f"{base}/healthz")
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not answer within {STARTUP_SECONDS} s")


def test_first_concurrent_schema_requests_on_a_threaded_server_all_succeed(tmp_path):
    environment = _environment(tmp_path)
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=environment,
        check=True,
        capture_output=True,
        timeout=180,
    )
    port = _free_port()
    # runserver serves each request in its own thread, from gatewaysite.wsgi.application.
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server)
        # /healthz builds no schema: these are the process's first schema requests, all at once.
        start = threading.Barrier(CONCURRENT, timeout=30)

        def first_request(_: int) -> int:
            start.wait()
            return _status(f"{base}/openapi.json")

        with ThreadPoolExecutor(CONCURRENT) as pool:
            statuses = list(pool.map(first_request, range(CONCURRENT)))
    finally:
        server.terminate()
        try:
            _, errors = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            _, errors = server.communicate()
    assert statuses == [200] * CONCURRENT, errors[-3000:]
