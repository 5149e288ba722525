"""Sustained load on the production command: requests per second, errors, and workers' memory.

    .venv/bin/python bench/load.py [--rows 1000000] [--seconds 60] [--connections 8] [--workers 2]

Gateway runs as in production: gunicorn -c gatewaysite/gunicorn.py with --workers sync workers,
PostgreSQL as Django's database (a cluster of its own made by initdb) and a Redis of its own as the
shared cache, keys, rate limiting and usage recording on. The key's rate is far above what the run
sends, so every answer must be a 200. wrk sends, for --seconds, a mix of three calls picked at
random on every request (a Lua script): the filtered page with its count, a row by a random key,
and the Q2 aggregate. Errors are every non-2xx answer plus every socket error (connect, read,
write, timeout). Memory is each process's resident set (VmRSS), read before the load (idle, just
started), every 5 s during it, and after it; memory is flat when the workers grow by less than
10% (and less than 20 MB) from the 10th second to the end, once the dataset's pages are warm.
Afterwards the usage records are flushed and counted: one per request.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from fault_services import (
    gateway_serve,
    gateway_setup,
    log_problems,
    manage,
    postgres_server,
    redis_server,
    rss_kb,
    worker_pids,
)
from peer_wrk import wrk_mix_command, wrk_mix_parse
from server import bench_env, temporary_directory

MIX = [
    "/api/v1/datasets/sales/rows/?region=EU&revenue__gt=1000&ordering=-order_date",
    "/api/v1/datasets/sales/rows/%d/",
    "/api/v1/datasets/sales/aggregate/?order_date__gte=2024-04-01&order_date__lte=2024-06-30"
    "&group_by=product&metrics=sum:revenue&ordering=-sum_revenue",
]
SAMPLE_EVERY = 5
USAGE_COUNT = """
from keys.usage import usage_flush
from keys.models import UsageRecord
usage_flush()
print(UsageRecord.objects.count(), UsageRecord.objects.exclude(status=200).count())
"""


def memory(master: int, workers: list[int]) -> dict[str, float]:
    """RSS in MB of the master and each worker."""
    sample = {"master": rss_kb(master) / 1024}
    for number, pid in enumerate(workers, 1):
        sample[f"worker {number}"] = rss_kb(pid) / 1024
    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"Load benchmark, {time.strftime('%Y-%m-%d %H:%M')}: {args.rows:,} rows, {args.workers} workers, "
          f"{args.connections} connections, {args.seconds} s, mix of {len(MIX)} calls; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    with (
        temporary_directory("gateway-load-") as work,
        redis_server(work / "redis") as redis,
        postgres_server() as postgres,
    ):
        postgres.sql("postgres", "CREATE DATABASE gateway")
        env = bench_env(work / "gateway", database_url=postgres.url("gateway"))
        env["REDIS_URL"] = redis.url
        gateway_setup(env)
        manage(env, script=f"from datasets.demo import demo_load; demo_load(rows={args.rows})")
        key = (
            manage(env, "issue_key", "load", "--all", "--rate", "100000000/m")
            .strip()
            .splitlines()[-1]
        )
        log = work / "gateway.log"
        with gateway_serve(env, key=key, log=log, workers=args.workers) as gateway:
            master = gateway.process.pid
            workers = worker_pids(master)
            samples = [("before", memory(master, workers))]
            command, script = wrk_mix_command(
                gateway.url, paths=MIX, headers={"Authorization": f"Bearer {key}"},
                connections=args.connections, seconds=args.seconds, random_max=args.rows,
            )  # fmt: skip
            started = time.monotonic()
            client = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            try:
                next_sample = SAMPLE_EVERY
                while client.poll() is None and time.monotonic() - started < args.seconds + 60:
                    elapsed = time.monotonic() - started
                    if elapsed >= next_sample and next_sample <= args.seconds:
                        samples.append((f"{next_sample} s", memory(master, workers)))
                        next_sample += SAMPLE_EVERY
                    time.sleep(0.2)
                output = client.communicate(timeout=60)[0]
            finally:
                if client.poll() is None:
                    client.kill()
                subprocess.run(["rm", "-f", script])
            time.sleep(2)
            samples.append(("after (+2 s)", memory(master, workers)))
            workers_after = worker_pids(master)
        problems = log_problems(log)
        recorded, recorded_errors = (int(n) for n in manage(env, script=USAGE_COUNT).split())

    measured = wrk_mix_parse(output)
    result = measured.result
    print(f"\nRequests: {result.requests:,} in {args.seconds} s = {result.requests_per_second:.1f} req/s, "
          f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms")  # fmt: skip
    statuses = ", ".join(
        f"{status}: {count:,}" for status, count in sorted(measured.statuses.items())
    )
    print(f"Statuses: {statuses}; socket errors: {measured.socket_errors}")
    print(f"Errors (non-2xx + socket errors): {result.errors}")
    print(f"Usage records written: {recorded:,} ({recorded_errors} with a status other than 200)")
    print(
        f"Workers restarted during the run: {'no' if workers_after == workers else f'YES {workers} -> {workers_after}'}"
    )
    print(
        f"Server errors or worker deaths in Gateway's log: {len(problems)}"
        + "".join(f"\n  {p}" for p in problems[:10])
    )

    names = list(samples[0][1])
    print("\nResident memory (MB)   " + "".join(f"{name:>10s}" for name in names))
    for label, sample in samples:
        print(f"  {label:20s} " + "".join(f"{sample[name]:10.1f}" for name in names))
    warm = next((sample for label, sample in samples if label == "10 s"), samples[1][1])
    end = samples[-1][1]
    flat = True
    for name in names[1:]:
        growth = end[name] - warm[name]
        flat &= growth < min(0.10 * warm[name], 20)
        print(
            f"  {name}: {warm[name]:.1f} MB at 10 s -> {end[name]:.1f} MB after ({growth:+.1f} MB)"
        )
    print(
        f"Memory flat: {'yes' if flat else 'NO'}; zero errors: {'yes' if result.errors == 0 else 'NO'}"
    )


if __name__ == "__main__":
    main()
