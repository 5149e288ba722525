"""Gateway against Datasette on the same 1,000,000-row sales data, same client (wrk), same run.

    .venv/bin/python bench/peer.py [--rows 1000000] [--seconds 10] [--connections 8,1] [--profile]
                               [--result-cache-mb MB]

Both import the same generated CSV (datasets.demo.sales_csv_write), timed as their users run it:
  - Gateway:   manage.py import_dataset sales.csv --slug sales --primary-key order_id
               --pii customer_email=mask (as the demo does); timed until the command exits (the
               dataset is live then: nothing is built after it)
  - Datasette: sqlite-utils insert db.sqlite sales sales.csv --csv --pk order_id [--detect-types]
               (types detected: sqlite-utils 4 does it by default and has no --detect-types
               option; order_id becomes the INTEGER PRIMARY KEY; no other index)
then both serve it, and wrk (from 127.0.0.1, 2 threads) sends each call for --seconds at 8 and at
1 connections, Gateway then Datasette, after a 2 s warm-up of each:
  - a filtered page with its count (region=EU, revenue > 1000, newest first, 50 rows);
  - a row by key with a random id on every request (a wrk Lua script);
  - the Q2 aggregate (sum of revenue per product; Datasette through its SQL endpoint).
The page and Q2 are the same URL on every request, as a dashboard or a model asking again sends
them: each Gateway worker answers them from its answers kept per version after the first
(datasets/engine/result_cache.py), and a row by key from DuckDB unless that key was asked before.
--result-cache-mb 0 turns that off: every call runs its query, the engine's own speed.
Gateway runs the production command (gunicorn, 2 sync workers) with keys, rate limiting (a key
with a rate no run reaches) and usage recording on, a Redis of its own as the cache and a
PostgreSQL cluster of its own (initdb) as Django's database. Datasette 0.65 runs
`datasette serve db.sqlite` with its defaults (num_sql_threads 3) except sql_time_limit_ms, raised
from 1 s to 10 s so that no query or count is cut short under load (Datasette answers a count that
overruns its limit with null instead of the number: the two servers must do the same work).
Datasette and sqlite-utils are installed into their own virtualenv (GATEWAY_PEER_VENV, default
/tmp/gateway-peer-venv), made on first use with `python -m venv` and pip.

--profile: for each call that misses its target, samples one Gateway worker with py-spy (where
its time goes), then runs the call again on each server and prints the CPU time each process used
(and the CPU time per request); bench/peer_profile.py splits one request's time in process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

from fault_services import (
    gateway_serve,
    gateway_setup,
    log_problems,
    manage,
    postgres_server,
    redis_server,
    worker_pids,
)
from peer_wrk import wrk_one
from server import ROOT, WrkResult, bench_env, free_port, temporary_directory, wait_http

PEER_VENV = Path(os.environ.get("GATEWAY_PEER_VENV", "/tmp/gateway-peer-venv"))
PEER_PACKAGES = ["datasette", "sqlite-utils", "py-spy"]
Q2_SQL = (
    "select product, sum(revenue) as sum_revenue from sales "
    "where order_date >= '2024-04-01' and order_date <= '2024-06-30' "
    "group by product order by 2 desc"
)
# name, Gateway path, Datasette path, target ratio (Gateway/Datasette requests per second)
CALLS = [
    (
        "filtered page with count",
        "/api/v1/datasets/sales/rows/?region=EU&revenue__gt=1000&ordering=-order_date",
        "/db/sales.json?region=EU&revenue__gt=1000&_sort_desc=order_date&_nosuggest=1&_size=50",
        15.0,
    ),
    ("row by key (random id)", "/api/v1/datasets/sales/rows/%d/", "/db/sales/%d.json", 2.5),
    (
        "Q2 aggregate",
        "/api/v1/datasets/sales/aggregate/?order_date__gte=2024-04-01&order_date__lte=2024-06-30"
        "&group_by=product&metrics=sum:revenue&ordering=-sum_revenue",
        "/db.json?" + urllib.parse.urlencode({"sql": Q2_SQL}),
        30.0,
    ),
]
IMPORT_TARGET = 20.0


def peer_venv() -> Path:
    """The bench virtualenv with Datasette, sqlite-utils and py-spy (made on first use)."""
    if not all(
        (PEER_VENV / "bin" / tool).exists() for tool in ("datasette", "sqlite-utils", "py-spy")
    ):
        print(f"Creating {PEER_VENV} with {', '.join(PEER_PACKAGES)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(PEER_VENV / "bin" / "pip"), "install", "-q", *PEER_PACKAGES],
            check=True, timeout=900, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    return PEER_VENV


def _version(venv: Path, package: str) -> str:
    output = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True, text=True,
    )  # fmt: skip
    return output.stdout.strip()


def _detect_types_option(venv: Path) -> list[str]:
    """--detect-types where sqlite-utils has it (3.x); 4.x detects types by default and dropped it."""
    usage = subprocess.run(
        [str(venv / "bin" / "sqlite-utils"), "insert", "--help"], capture_output=True, text=True
    )
    return ["--detect-types"] if "--detect-types" in usage.stdout else []


def _timed(command: list[str], **kwargs) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=1800, **kwargs)
    return time.perf_counter() - started


def _get_json(url: str, headers: dict[str, str] | None = None) -> dict:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def check_same_answers(gateway: str, datasette: str, key: str, *, rows: int) -> None:
    """Stop unless both servers give the same answers to the benchmarked calls."""
    auth = {"Authorization": f"Bearer {key}"}
    page = _get_json(gateway + CALLS[0][1], auth)
    table = _get_json(datasette + CALLS[0][2])
    same_count = page["count"] == table["filtered_table_rows_count"]
    if table["filtered_table_rows_count"] is None:
        print(
            "Datasette answered the filtered page without its count (its time limit cut it short)."
        )
    row_id = min(123456, rows)
    gw_row = _get_json(gateway + CALLS[1][1] % row_id, auth)
    ds_row = _get_json(datasette + CALLS[1][2] % row_id)
    ds_row = dict(zip(ds_row["columns"], ds_row["rows"][0], strict=True))
    same_row = (
        gw_row["order_id"] == ds_row["order_id"]
        and abs(gw_row["revenue"] - ds_row["revenue"]) < 0.005
    )
    gw_q2 = [
        (r["product"], r["sum_revenue"]) for r in _get_json(gateway + CALLS[2][1], auth)["results"]
    ]
    ds_q2 = [tuple(row) for row in _get_json(datasette + CALLS[2][2])["rows"]]
    same_q2 = [p for p, _ in gw_q2] == [p for p, _ in ds_q2] and all(
        abs(a - b) < 1 for (_, a), (_, b) in zip(gw_q2, ds_q2, strict=True)
    )
    print(
        f"Same answers: filtered count {page['count']:,} / {table['filtered_table_rows_count']}, "
        f"page sizes {len(page['results'])} / {len(table['rows'])}, row {row_id} {'same' if same_row else 'DIFFERENT'}, "
        f"Q2 per product {'same' if same_q2 else 'DIFFERENT'} ({len(gw_q2)} products)"
    )
    if not (same_count and same_row and same_q2 and len(page["results"]) == len(table["rows"])):
        raise SystemExit("Gateway and Datasette disagree: the comparison would not be fair.")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _machine_busy_seconds() -> float:
    """CPU time every process on the machine has used since boot (all cores, idle and iowait excluded)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    output = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in output.split()]


def cpu_split(
    processes: dict[str, list[int]], url: str, headers: dict[str, str], *, seconds: int, rows: int
) -> None:
    """Run wrk on `url` and print the CPU time each group of processes (and wrk) used meanwhile."""
    server = next(iter(processes))
    before = {name: sum(_cpu_seconds(pid) for pid in pids) for name, pids in processes.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine = _machine_busy_seconds()
    started = time.monotonic()
    result = wrk_one(url, headers=headers, connections=8, seconds=seconds, random_max=rows).result
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine = _machine_busy_seconds() - machine
    used = {
        name: sum(_cpu_seconds(pid) for pid in pids) - before[name]
        for name, pids in processes.items()
    }
    used["wrk"] = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    available = elapsed * (os.cpu_count() or 1)
    others = max(0.0, machine - sum(used.values()))
    parts = ", ".join(f"{name} {value:.1f} s" for name, value in used.items())
    parts += f", other processes on the machine {others:.1f} s"
    print(f"    CPU time during {elapsed:.0f} s of wrk ({result.requests_per_second:.0f} req/s, {available:.0f} CPU-s available): "
          f"{parts}, idle {max(0.0, available - machine):.1f} s; "
          f"{server}: {used[server] * 1000 / max(result.requests, 1):.2f} ms CPU per request")  # fmt: skip


def profile_worker(gateway_pid: int, url: str, key: str, *, seconds: int, rows: int) -> None:
    """Sample one Gateway worker with py-spy while wrk loads it; print where the time goes."""
    worker = worker_pids(gateway_pid)[0]
    raw = Path(f"/tmp/gateway-peer-profile-{worker}.txt")
    spy = subprocess.Popen(
        [str(PEER_VENV / "bin" / "py-spy"), "record", "-p", str(worker), "-d", str(seconds), "-r", "200",
         "-f", "raw", "-o", str(raw)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1)
    result = wrk_one(
        url,
        headers={"Authorization": f"Bearer {key}"},
        connections=8,
        seconds=seconds - 2,
        random_max=rows,
    ).result
    spy.wait(timeout=seconds + 60)
    inclusive, own, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        samples = int(count)
        total += samples
        own[_frame(frames[-1])] += samples
        for frame in {_frame(f) for f in frames}:
            inclusive[frame] += samples
    raw.unlink(missing_ok=True)
    print(
        f"    profile of worker {worker} ({total} samples at 200 Hz while wrk ran {result.requests_per_second:.0f} req/s):"
    )
    print("      inclusive (share of the worker's busy samples):")
    for frame, samples in inclusive.most_common(60):
        if _interesting(frame):
            print(f"        {samples / total:6.1%}  {frame}")
    print("      self:")
    for frame, samples in own.most_common(12):
        print(f"        {samples / total:6.1%}  {frame}")


def _frame(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py)"; per function, not per line
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def _interesting(frame: str) -> bool:
    boring = ("gunicorn/", "(<frozen", "threading.py", "socketserver", "_bootstrap")
    return not any(b in frame for b in boring)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", default="8,1", help="comma-separated connection counts")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy one worker on each missed target"
    )
    parser.add_argument(
        "--result-cache-mb",
        type=int,
        default=None,
        help="Gateway's GATEWAY_RESULT_CACHE_MB (default: the setting's default; 0: every call "
        "runs its query)",
    )
    parser.add_argument(
        "--datasette-time-limit-ms",
        type=int,
        default=10_000,
        help="Datasette's sql_time_limit_ms (its default is 1000; see above)",
    )
    args = parser.parse_args()
    connection_counts = [int(c) for c in args.connections.split(",")]
    venv = peer_venv()
    print(
        f"Peer benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, {args.rows:,} rows; "
        f"GATEWAY_RESULT_CACHE_MB={'default' if args.result_cache_mb is None else args.result_cache_mb}; "
        f"Datasette {_version(venv, 'datasette')}, sqlite-utils {_version(venv, 'sqlite-utils')}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with (
        temporary_directory("gateway-peer-") as work,
        redis_server(work / "redis") as redis,
        postgres_server() as postgres,
    ):
        postgres.sql("postgres", "CREATE DATABASE gateway")
        env = bench_env(work / "gateway", database_url=postgres.url("gateway"))
        env["REDIS_URL"] = redis.url
        if args.result_cache_mb is not None:
            env["GATEWAY_RESULT_CACHE_MB"] = str(args.result_cache_mb)
        gateway_setup(env)
        csv_path, db_path = work / "sales.csv", work / "db.sqlite"
        manage(
            env,
            script=f"from datasets.demo import sales_csv_write; sales_csv_write(path={str(csv_path)!r}, rows={args.rows})",
        )
        print(f"CSV: {csv_path.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows", flush=True)

        gateway_import = _timed(
            [sys.executable, "manage.py", "import_dataset", str(csv_path), "--slug", "sales",
             "--primary-key", "order_id", "--pii", "customer_email=mask", "-v", "0"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        print(
            f"Import, Gateway (manage.py import_dataset --primary-key order_id --pii customer_email=mask): {gateway_import:7.1f} s",
            flush=True,
        )
        insert = [
            str(venv / "bin" / "sqlite-utils"),
            "insert",
            str(db_path),
            "sales",
            str(csv_path),
            "--csv",
            "--pk",
            "order_id",
        ]
        insert += _detect_types_option(venv)
        peer_import = _timed(insert)
        print(
            f"Import, Datasette ({' '.join(['sqlite-utils', *insert[1:2], *insert[5:]])}): {peer_import:7.1f} s",
            flush=True,
        )
        schema = subprocess.run(
            ["sqlite3", str(db_path), ".schema sales"], capture_output=True, text=True
        ).stdout
        print("  SQLite schema: " + " ".join(schema.split()))
        key = (
            manage(env, "issue_key", "bench", "--all", "--rate", "100000000/m")
            .strip()
            .splitlines()[-1]
        )

        datasette_port = free_port()
        datasette = subprocess.Popen(
            [str(venv / "bin" / "datasette"), "serve", str(db_path), "--port", str(datasette_port), "-h", "127.0.0.1",
             "--setting", "num_sql_threads", "3", "--setting", "sql_time_limit_ms", str(args.datasette_time_limit_ms)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log = work / "gateway.log"
        try:
            datasette_url = f"http://127.0.0.1:{datasette_port}"
            wait_http(datasette_url + "/-/versions.json")
            with gateway_serve(env, key=key, log=log, workers=2) as gateway:
                check_same_answers(gateway.url, datasette_url, key, rows=args.rows)
                results = run_calls(gateway.url, datasette_url, key, args, connection_counts)
                if args.profile:
                    missed = [c for c in CALLS if results[(c[0], connection_counts[0])][2] < c[3]]
                    for name, path, ds_path, target in missed:
                        print(
                            f"\n  {name}: below its {target:g}x target; profiling one Gateway worker"
                        )
                        profile_worker(
                            gateway.process.pid, gateway.url + path, key, seconds=12, rows=args.rows
                        )
                        postmaster = int(
                            (postgres.directory / "data" / "postmaster.pid").read_text().split()[0]
                        )
                        gateway_processes = {
                            "Gateway workers": worker_pids(gateway.process.pid),
                            "gunicorn master": [gateway.process.pid],
                            "Redis": [redis.process.pid],
                            "PostgreSQL": [postmaster, *_children(postmaster)],
                        }
                        cpu_split(
                            gateway_processes,
                            gateway.url + path,
                            {"Authorization": f"Bearer {key}"},
                            seconds=10,
                            rows=args.rows,
                        )
                        peer_processes = {"Datasette": [datasette.pid]}
                        cpu_split(
                            peer_processes, datasette_url + ds_path, {}, seconds=10, rows=args.rows
                        )
        finally:
            os.killpg(datasette.pid, signal.SIGTERM)
            datasette.wait(timeout=20)
        problems = log_problems(log)

    print(
        f"\nSummary ({args.seconds} s per run; ratio = Gateway req/s / Datasette req/s; "
        f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    for connections in connection_counts:
        for name, _, _, target in CALLS:
            gw, ds, ratio = results[(name, connections)]
            verdict = "meets" if ratio >= target else "MISSES"
            print(f"  {connections} conn  {name:26s} {gw.requests_per_second:8.1f} vs {ds.requests_per_second:8.1f} req/s  "
                  f"ratio {ratio:6.2f}  (target {target:g}x: {verdict})")  # fmt: skip
    import_ratio = peer_import / gateway_import
    verdict = "meets" if import_ratio >= IMPORT_TARGET else "MISSES"
    print(f"  import  Gateway {gateway_import:.1f} s, sqlite-utils {peer_import:.1f} s: "
          f"{import_ratio:.1f}x faster (target {IMPORT_TARGET:g}x: {verdict})")  # fmt: skip
    print(
        f"  Gateway log: {len(problems)} server errors or worker deaths"
        + "".join(f"\n    {p}" for p in problems[:10])
    )


def run_calls(
    gateway: str, datasette: str, key: str, args, connection_counts: list[int]
) -> dict[tuple[str, int], tuple[WrkResult, WrkResult, float]]:
    """wrk each call on both servers, at each connection count; print and return the figures."""
    auth = {"Authorization": f"Bearer {key}"}
    results = {}
    for connections in connection_counts:
        print(
            f"\n{connections} connection(s), {args.seconds} s each     requests/s      p50 ms     p99 ms  errors"
        )
        for name, gw_path, ds_path, target in CALLS:
            figures = []
            for label, base, path, headers in (
                ("Gateway", gateway, gw_path, auth),
                ("Datasette", datasette, ds_path, {}),
            ):
                wrk_one(
                    base + path, headers=headers, connections=1, seconds=2, random_max=args.rows
                )  # warm-up
                result = wrk_one(
                    base + path,
                    headers=headers,
                    connections=connections,
                    seconds=args.seconds,
                    random_max=args.rows,
                ).result
                figures.append(result)
                print(
                    f"  {name:26s} {label:9s} {result.requests_per_second:9.1f}  {result.p50_ms:9.2f}  {result.p99_ms:9.2f}  {result.errors:6d}",
                    flush=True,
                )
            ratio = figures[0].requests_per_second / max(figures[1].requests_per_second, 1e-9)
            print(f"  {'':26s} ratio {ratio:.2f} (target {target:g}x)", flush=True)
            results[(name, connections)] = (figures[0], figures[1], ratio)
    return results


if __name__ == "__main__":
    main()
