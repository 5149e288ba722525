"""Gateway on several hosts: gunicorn servers with data directories of their own, sharing one
PostgreSQL database, Redis and an object store (SeaweedFS, reached through a proxy the tests can
cut), as machines behind a load balancer do."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest

from tests.servers import (
    REDIS_URL,
    TcpProxy,
    get,
    manage,
    postgres_database,
    server_environment,
    server_process,
)
from tests.services import S3_BUCKET, S3_ENDPOINT

pytestmark = pytest.mark.system

SECRET_KEY = "several-hosts-share-one-secret-key-" + "k" * 16
PASSWORD = "several-hosts-Admin-9"


def sales_csv(path: Path, *, rows: int, label: str) -> str:
    lines = ["id,order_date,region,revenue"]
    regions = ["EU", "US", "APAC"]
    for number in range(1, rows + 1):
        month = 1 + number % 12
        lines.append(
            f"{number},2024-{month:02d}-{1 + number % 28:02d},{regions[number % 3]},{number}.5"
        )
    lines[1] = f"1,2024-01-01,{label},1.5"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@dataclass
class Hosts:
    environments: dict[str, dict]
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen]
    proxy: TcpProxy


@pytest.fixture
def services(postgres, redis):
    from tests.services import require

    require("s3")
    client = boto3.client(
        "s3",
        endpoint_url=S3_ENDPOINT,
        aws_access_key_id="gateway",
        aws_secret_access_key="gateway-secret",
        region_name="us-east-1",
    )
    with contextlib.suppress(Exception):
        client.create_bucket(Bucket=S3_BUCKET)


@contextlib.contextmanager
def hosts(tmp_path: Path, names: tuple[str, ...], **variables: str) -> Iterator[Hosts]:
    """Hosts `names` (each a gunicorn with 2 workers) and one more environment per name for
    commands: all share the database, Redis and the store (behind a proxy)."""
    proxy = TcpProxy(int(S3_ENDPOINT.rsplit(":", 1)[1])).start()
    try:
        with postgres_database() as database_url, contextlib.ExitStack() as stack:
            common = {
                "DATABASE_URL": database_url,
                "REDIS_URL": REDIS_URL,
                "GATEWAY_SECRET_KEY": SECRET_KEY,
                "GATEWAY_STORAGE_URL": f"s3://{S3_BUCKET}/hosts-{uuid.uuid4().hex[:12]}",
                "GATEWAY_STORAGE_ENDPOINT": f"http://127.0.0.1:{proxy.port}",
                "AWS_ACCESS_KEY_ID": "gateway",
                "AWS_SECRET_ACCESS_KEY": "gateway-secret",
                "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
                **variables,
            }
            environments = {}
            for name in names:
                (tmp_path / name).mkdir()
                environments[name] = server_environment(tmp_path / name, **common)
            manage(environments[names[0]], "migrate", "--noinput")
            ports, processes = {}, {}
            for name in names:
                port, process = stack.enter_context(
                    server_process(environments[name], gunicorn_workers=2)
                )
                ports[name], processes[name] = port, process
            yield Hosts(environments, ports, processes, proxy)
    finally:
        proxy.stop()


def another_machine(environment: dict, data_dir: Path) -> dict:
    """The environment of a machine like the one of `environment`, with a disk of its own (where
    an admin runs commands)."""
    data_dir.mkdir()
    return {**environment, "GATEWAY_DATA_DIR": str(data_dir)}


def api(port: int, path: str, key: str) -> tuple[int, dict]:
    status, _, body = get(port, path, key)
    return status, body


def mcp_rows(port: int, key: str, dataset: str) -> dict:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "query_rows", "arguments": {"dataset": dataset, "limit": 3}},
    }
    response = httpx.post(
        f"http://127.0.0.1:{port}/mcp",
        content=json.dumps(body),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]["structuredContent"]


CALLS = [
    "/api/v1/datasets/sales/rows/?ordering=id&limit=5",
    "/api/v1/datasets/sales/rows/1/",
    "/api/v1/datasets/sales/aggregate/?group_by=region&metrics=sum:revenue,count",
    "/api/v1/datasets/sales/",
]


def answers(port: int, key: str) -> list[dict]:
    """The answers to CALLS, with the links they carry made independent of the host's port."""
    results = []
    for path in CALLS:
        status, body = api(port, path, key)
        assert status == 200, (port, path, body)
        results.append(json.loads(json.dumps(body).replace(f"127.0.0.1:{port}", "HOST")))
    return results


def admin_session(port: int) -> httpx.Client:
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20)
    page = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed_in = client.post(
        "/admin/login/",
        data={"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert signed_in.status_code == 302, signed_in.text[:500]
    return client


def test_every_host_serves_what_any_host_imported(services, tmp_path):
    with hosts(tmp_path, ("a", "b")) as cluster:
        env_a, env_b = cluster.environments["a"], cluster.environments["b"]
        a, b = cluster.ports["a"], cluster.ports["b"]
        manage(env_a, "import_dataset", sales_csv(tmp_path / "v1.csv", rows=300, label="EU"),
               "--slug", "sales")  # fmt: skip
        key = manage(env_a, "issue_key", "gpt", "--all").splitlines()[-1]

        # B never saw the file: its next request on each door fetches it from the store.
        assert answers(b, key) == answers(a, key)
        schema = get(b, "/openapi.json")
        assert schema[0] == 200 and "/api/v1/datasets/sales/rows/" in schema[2]["paths"]
        assert mcp_rows(b, key, "sales")["results"] == mcp_rows(a, key, "sales")["results"]
        assert list((tmp_path / "b" / "datasets" / "sales").glob("v1-*.duckdb"))

        # A new version imported on B reaches A.
        manage(env_b, "import_dataset", sales_csv(tmp_path / "v2.csv", rows=200, label="LATAM"),
               "--slug", "sales", "--replace")  # fmt: skip
        status, first = api(a, "/api/v1/datasets/sales/rows/1/", key)
        assert (status, first["region"]) == (200, "LATAM")
        assert api(a, "/api/v1/datasets/sales/", key)[1]["row_count"] == 200

        # An admin upload started on A: its progress page reads the same on B.
        manage(env_a, "createsuperuser", "--noinput", "--username", "admin",
               "--email", "admin@example.org")  # fmt: skip
        admin = admin_session(a)
        form = admin.get("/admin/datasets/dataset/add/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        content = Path(sales_csv(tmp_path / "up.csv", rows=5000, label="US")).read_bytes()
        started = admin.post(
            "/admin/datasets/dataset/add/",
            data={
                "csrfmiddlewaretoken": token,
                "slug": "uploaded",
                "title": "",
                "description": "",
                "primary_key_column": "",
            },  # fmt: skip
            files={"file": ("uploaded.csv", content, "text/csv")},
        )
        assert started.status_code == 302, started.text[:1000]
        status_url = started.headers["location"].rstrip("/") + "/status/"
        on_b = httpx.Client(base_url=f"http://127.0.0.1:{b}", cookies=admin.cookies, timeout=20)
        deadline = time.monotonic() + 60
        while True:
            seen = {port: client.get(status_url) for port, client in ((a, admin), (b, on_b))}
            assert all(response.status_code == 200 for response in seen.values()), seen
            states = {port: response.json()["state"] for port, response in seen.items()}
            if set(states.values()) == {"done"} or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert states == {a: "done", b: "done"}
        status, described = api(b, "/api/v1/datasets/uploaded/", key)
        assert (status, described["row_count"]) == (200, 5000)


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL a gunicorn master and its workers: a machine that went away."""
    children = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
    ).stdout.split()
    for pid in [process.pid, *map(int, children)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_a_host_killed_under_load_leaves_the_other_answering_every_call(services, tmp_path):
    with hosts(tmp_path, ("a", "b")) as cluster:
        env_a = cluster.environments["a"]
        a, b = cluster.ports["a"], cluster.ports["b"]
        manage(env_a, "import_dataset", sales_csv(tmp_path / "v1.csv", rows=1000, label="EU"),
               "--slug", "sales")  # fmt: skip
        key = manage(env_a, "issue_key", "gpt", "--all", "--rate", "100000/m").splitlines()[-1]
        answers(a, key)
        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def load(worker: int) -> None:
            for number in range(60):
                path = CALLS[(worker + number) % len(CALLS)]
                status, _ = api(b, path, key)
                with lock:
                    statuses[status] += 1

        threads = [threading.Thread(target=load, args=(worker,)) for worker in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        _kill(cluster.processes["a"])
        for thread in threads:
            thread.join(120)
        with pytest.raises(OSError):
            api(a, CALLS[0], key)
        assert statuses == Counter({200: 240})


def test_a_host_without_the_store_serves_what_it_holds_and_names_the_store_otherwise(
    services, tmp_path
):
    with hosts(tmp_path, ("b",)) as cluster:
        importer = another_machine(cluster.environments["b"], tmp_path / "importer")
        b = cluster.ports["b"]
        manage(importer, "import_dataset", sales_csv(tmp_path / "s.csv", rows=300, label="EU"),
               "--slug", "sales")  # fmt: skip
        manage(importer, "import_dataset", sales_csv(tmp_path / "o.csv", rows=300, label="US"),
               "--slug", "other")  # fmt: skip
        key = manage(importer, "issue_key", "gpt", "--all").splitlines()[-1]
        held = answers(b, key)  # `sales` is fetched; `other` is not

        cluster.proxy.stop()
        for _ in range(4):  # every worker of B
            assert answers(b, key) == held
            status, headers, body = get(b, "/api/v1/datasets/other/rows/", key)
            assert status == 503 and headers["Retry-After"]
            assert body["error"]["code"] == "store_unavailable"
            assert "object store" in body["error"]["message"]

        cluster.proxy.start()
        deadline = time.monotonic() + 30
        while get(b, "/api/v1/datasets/other/rows/", key)[0] != 200:
            assert time.monotonic() < deadline, "the store came back, the version did not"
            time.sleep(0.5)


def test_versions_larger_than_the_cache_are_all_served_within_its_limit(services, tmp_path):
    with hosts(tmp_path, ("b",), GATEWAY_CACHE_MB="2") as cluster:
        importer = another_machine(cluster.environments["b"], tmp_path / "importer")
        b = cluster.ports["b"]
        slugs = ["first", "second", "third"]
        for slug in slugs:
            manage(importer, "import_dataset", sales_csv(tmp_path / f"{slug}.csv", rows=500,
                   label=slug), "--slug", slug)  # fmt: skip
        key = manage(importer, "issue_key", "gpt", "--all", "--rate", "100000/m").splitlines()[-1]
        cache = tmp_path / "b" / "datasets"
        for round_ in range(3):
            for slug in slugs:
                for path in (f"/api/v1/datasets/{slug}/rows/1/", f"/api/v1/datasets/{slug}/rows/"):
                    status, body = api(b, path, key)
                    assert status == 200, (round_, slug, body)
                held = sum(p.stat().st_size for p in cache.rglob("v*") if p.is_file())
                assert held <= 2 * 1024 * 1024, (round_, slug, held)
