"""Versions from the object store against local files: the first request on a cold host, then the
steady state, on the same version, in one run.

    .venv/bin/python bench/store.py [--rows 1000000] [--seconds 10] [--connections 8]

Host A imports the demo sales rows (manage.py import_dataset, as bench/peer.py does) with
GATEWAY_STORAGE_URL set: the version is written to the store and stays on A's disk. Host B shares
A's PostgreSQL, Redis and store, with an empty disk of its own. Both run the production command
(gunicorn, 2 sync workers). Printed:
  - the version's size, and the import's wall time;
  - on B, the first request of each call (the page fetches the version) in ms, against the same
    call's warm time (for the row by key the same id, from a worker's row cache once it has
    answered it);
  - wrk (2 threads, --connections, --seconds per call, after a 2 s warm-up) on A and on B for
    the filtered page with its count, the row by key (random id) and the Q2 aggregate, and the
    ratio B / A of requests per second (the store's promise: B within 1.1x of A).

It starts its own Redis and PostgreSQL (bench/fault_services.py), uses the SeaweedFS on
127.0.0.1:8333 when one answers (else starts `weed mini` in a temporary folder and stops it), and
removes its prefix from the store at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from fault_services import gateway_serve, gateway_setup, manage, postgres_server, redis_server
from peer import CALLS
from peer_wrk import wrk_one
from server import PYTHON, ROOT, bench_env, temporary_directory

S3 = "http://127.0.0.1:8333"
BUCKET = "gateway-bench"


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def seaweedfs(directory: Path) -> Iterator[None]:
    """SeaweedFS's S3 on 127.0.0.1:8333: the one running, else one of ours until exit."""
    if _answers(S3):
        yield
        return
    weed = Path(PYTHON).with_name("weed")
    process = subprocess.Popen(
        [str(weed), "mini", f"-dir={directory}", "-ip=127.0.0.1", "-master.telemetry=false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _answers(S3):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("weed mini did not answer on 127.0.0.1:8333 within 60 s")
            time.sleep(0.5)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _s3():
    import boto3

    return boto3.client(
        "s3", endpoint_url=S3, aws_access_key_id="bench", aws_secret_access_key="bench",
        region_name="us-east-1",
    )  # fmt: skip


def _timed_get(url: str, key: str) -> tuple[float, int]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
        status = response.status
    return (time.perf_counter() - started) * 1000, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"

    with contextlib.ExitStack() as stack:
        work = stack.enter_context(temporary_directory("gateway-store-bench-"))
        stack.enter_context(seaweedfs(work / "weed"))
        with contextlib.suppress(Exception):
            _s3().create_bucket(Bucket=BUCKET)
        redis = stack.enter_context(redis_server(work / "redis"))
        postgres = stack.enter_context(postgres_server())
        common = {
            "REDIS_URL": redis.url,
            "GATEWAY_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "GATEWAY_STORAGE_URL": f"s3://{BUCKET}/{prefix}",
            "GATEWAY_STORAGE_ENDPOINT": S3,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
        envs = {}
        for name in ("a", "b"):
            (work / name).mkdir()
            envs[name] = {
                **bench_env(work / name, database_url=postgres.url("gateway")),
                **common,
            }
        postgres.sql("postgres", "CREATE DATABASE gateway")
        gateway_setup(envs["a"])
        manage(envs["b"], "collectstatic", "--noinput", "-v0")
        csv_path = work / "sales.csv"
        manage(envs["a"], script=f"from datasets.demo import sales_csv_write; sales_csv_write(path={str(csv_path)!r}, rows={args.rows})")  # fmt: skip
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "manage.py", "import_dataset", str(csv_path), "--slug", "sales",
             "--primary-key", "order_id", "--pii", "customer_email=mask"],
            cwd=ROOT, env=envs["a"], check=True, capture_output=True, timeout=1800,
        )  # fmt: skip
        imported = time.monotonic() - started
        key = manage(envs["a"], "issue_key", "bench", "--all", "--rate", "100000000/m")
        key = key.strip().splitlines()[-1]
        version = next((work / "a" / "datasets" / "sales").glob("v1-*.duckdb"))
        print(f"{args.rows} rows: version file {version.stat().st_size / 1e6:.1f} MB, import "
              f"(upload to the store included) {imported:.1f} s")  # fmt: skip

        host_a = stack.enter_context(gateway_serve(envs["a"], key=key, log=work / "a.log"))
        host_b = stack.enter_context(gateway_serve(envs["b"], key=key, log=work / "b.log"))
        print("\nFirst requests on host B (an empty disk), then the same call warm:")
        for name, path, _, _ in CALLS:
            path = path.replace("%d", "123457")
            first, status = _timed_get(host_b.url + path, key)
            warm = min(_timed_get(host_b.url + path, key)[0] for _ in range(5))
            print(f"  {name:26} first {first:9.1f} ms (status {status})   warm {warm:7.1f} ms")

        print(f"\nSteady state, wrk {args.connections} connections, {args.seconds} s per call:")
        headers = {"Authorization": f"Bearer {key}"}
        for name, path, _, _ in CALLS:
            figures = {}
            for label, host in (("A (local files)", host_a), ("B (fetched)", host_b)):
                wrk_one(host.url + path, headers=headers, connections=2, seconds=2,
                        random_max=args.rows)  # fmt: skip
                mix = wrk_one(host.url + path, headers=headers, connections=args.connections,
                              seconds=args.seconds, random_max=args.rows)  # fmt: skip
                bad = sum(count for status, count in mix.statuses.items() if status != 200)
                figures[label] = mix.result.requests_per_second
                print(f"  {name:26} {label:16} {mix.result.line()}  non-200 {bad}")
            a_rps, b_rps = figures.values()
            print(f"  {name:26} A / B = {a_rps / b_rps:.3f}  "
                  f"({a_rps / 2:.0f} and {b_rps / 2:.0f} req/s per worker)")  # fmt: skip

        client = _s3()
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
        if listed:
            client.delete_objects(
                Bucket=BUCKET, Delete={"Objects": [{"Key": item["Key"]} for item in listed]}
            )
        print(json.dumps({"store_objects_removed": len(listed)}))


if __name__ == "__main__":
    main()
