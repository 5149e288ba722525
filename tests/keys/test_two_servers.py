"""Two real server processes sharing Redis and a database: one budget per key, revocation seen by both."""

from __future__ import annotations

import contextlib

import pytest

from tests.servers import REDIS_URL, get, manage, running, server_environment

pytestmark = [pytest.mark.system, pytest.mark.redis]


@pytest.fixture
def servers(redis, tmp_path):
    # One SQLite file in a fresh data directory, shared by both servers and the commands.
    environment = server_environment(tmp_path / "shared", REDIS_URL=REDIS_URL)
    manage(environment, "migrate", "--noinput")
    with contextlib.ExitStack() as stack:
        ports = [stack.enter_context(running(environment)) for _ in range(2)]
        yield environment, ports


def test_rate_limit_is_shared_by_two_servers(servers):
    environment, (first, second) = servers
    # A day-long window: the test cannot straddle a window edge in practice.
    raw = manage(environment, "issue_key", "shared budget", "--all", "--rate", "5/d").splitlines()[
        -1
    ]
    statuses = [get(port, "/api/v1/datasets/", raw)[0] for port in (first, second) * 3]
    assert statuses == [200, 200, 200, 200, 200, 429]
    for port in (first, second):
        status, headers, body = get(port, "/api/v1/datasets/", raw)
        assert status == 429
        assert body["error"]["code"] == "rate_limited"
        assert 1 <= int(headers["Retry-After"]) <= 86400


def test_revocation_by_command_is_seen_at_once_by_both_servers(servers):
    environment, ports = servers
    raw = manage(environment, "issue_key", "to revoke", "--all").splitlines()[-1]
    # Both servers have loaded and cached the key.
    assert [get(port, "/api/v1/datasets/", raw)[0] for port in ports] == [200, 200]
    key_id = raw.split("_")[1]
    manage(environment, "revoke_key", key_id)
    for port in ports:
        status, _, body = get(port, "/api/v1/datasets/", raw)
        assert status == 401
        assert "revoked" in body["error"]["message"]
