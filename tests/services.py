"""Reaching the real PostgreSQL, MariaDB, ClickHouse, Redis and S3 (SeaweedFS) servers that tests use.

Locally a missing server skips its tests with the reason; under CI (CI=true) it fails them.
"""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("GATEWAY_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/2")
# ClickHouse's native protocol, user `default` without a password (Debian's packaged config).
CLICKHOUSE_URL = os.environ.get(
    "GATEWAY_TEST_CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:9000/default"
)
# SeaweedFS (`weed mini -dir=DIR -ip=127.0.0.1`): any credentials are accepted.
S3_ENDPOINT = os.environ.get("GATEWAY_TEST_S3_ENDPOINT", "http://127.0.0.1:8333")
S3_BUCKET = "gateway-test"

_PORTS = {
    "postgres": ("127.0.0.1", 5432),
    "mysql": ("127.0.0.1", 3306),
    "redis": ("127.0.0.1", 6379),
    "s3": ("127.0.0.1", 8333),
    "clickhouse": ("127.0.0.1", 9000),
}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(service: str) -> None:
    """Skip (locally) or fail (CI=true) the calling test when `service` does not answer."""
    host, port = _PORTS[service]
    if _reachable(host, port):
        return
    reason = f"{service} is not answering on {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}, and CI=true forbids skipping.")
    pytest.skip(reason)


def sql_run(url: str, statements: list[str]) -> None:
    """Run statements on a writable connection, in one transaction (test set-up and clean-up)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()
