"""Two real server processes sharing Redis and a database: one budget per key, revocation seen by both."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.services import REDIS_URL

pytestmark = [pytest.mark.system, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(data_dir: Path) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GATEWAY_") and name not in ("DATABASE_URL", "REDIS_URL")
    }
    # One SQLite file in a fresh data directory, shared by both servers and the commands.
    environment.update(
        GATEWAY_DATA_DIR=str(data_dir),
        REDIS_URL=REDIS_URL,
        DJANGO_SETTINGS_MODULE="gatewaysite.settings",
        PYTHONUNBUFFERED="1",
    )
    return environment


def _manage(environment: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _get(port: int, path: str, raw_key: str | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if raw_key:
        request.add_header("Authorization", f"Bearer {raw_key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def _wait_until_up(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server on {port} exited: {server.stdout.read()}")
        try:
            if _get(port, "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server on {port} did not answer within 60 s")


@pytest.fixture
def servers(redis, tmp_path):
    environment = _environment(tmp_path / "shared")
    _manage(environment, "migrate", "--noinput")
    started = []
    try:
        for _ in range(2):
            port = _free_port()
            server = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                cwd=ROOT,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            started.append((port, server))
        for port, server in started:
            _wait_until_up(port, server)
        yield environment, [port for port, _ in started]
    finally:
        for _, server in started:
            server.terminate()
        for _, server in started:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


def test_rate_limit_is_shared_by_two_servers(servers):
    environment, (first, second) = servers
    # A day-long window: the test cannot straddle a window edge in practice.
    raw = _manage(environment, "issue_key", "shared budget", "--all", "--rate", "5/d").splitlines()[
        -1
    ]
    statuses = [_get(port, "/api/v1/datasets/", raw)[0] for port in (first, second) * 3]
    assert statuses == [200, 200, 200, 200, 200, 429]
    for port in (first, second):
        status, headers, body = _get(port, "/api/v1/datasets/", raw)
        assert status == 429
        assert body["error"]["code"] == "rate_limited"
        assert 1 <= int(headers["Retry-After"]) <= 86400


def test_revocation_by_command_is_seen_at_once_by_both_servers(servers):
    environment, ports = servers
    raw = _manage(environment, "issue_key", "to revoke", "--all").splitlines()[-1]
    # Both servers have loaded and cached the key.
    assert [_get(port, "/api/v1/datasets/", raw)[0] for port in ports] == [200, 200]
    key_id = raw.split("_")[1]
    _manage(environment, "revoke_key", key_id)
    for port in ports:
        status, _, body = _get(port, "/api/v1/datasets/", raw)
        assert status == 401
        assert "revoked" in body["error"]["message"]
