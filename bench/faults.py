"""Fault tests on the production command: a source database, the shared cache, two instances.

    .venv/bin/python bench/faults.py [--only a,b,c] [--up 6] [--down 10] [--back 10]

(a) PostgreSQL source stopped mid-load. A PostgreSQL cluster of the script's own (initdb in a
    temporary folder, free port) holds a 5,000-row sales table, registered as a Gateway source and
    dataset. 4 client threads call its rows endpoint (a filtered page, a row by key); the cluster
    is stopped with `pg_ctl stop -m immediate`, then started again. Expected: 503 with Retry-After
    while it is down (never a 500, never a hang), 200 again by itself once it is back.
(b) Redis stopped mid-load. The Gateway's REDIS_URL is a redis-server of the script's own
    (--save ""), killed, then started again (empty). Expected, as docs/keys.md says: calls keep
    being answered, authentication and scope still hold (a revoked key stays refused), rate limits
    and quotas are not enforced while it is down, /healthz answers 503 naming the cache, and
    everything (limits included) works again once it is back.
(c) Two instances, one limit. Two gunicorn processes (2 workers each, two ports) share Django's
    database (PostgreSQL, own cluster) and one Redis. A key with rate 20/m is used alternately on
    the two: exactly 20 answers are 200, then 429 with Retry-After.

Everything runs on 127.0.0.1; the machine's shared PostgreSQL and Redis are never touched. Each
phase is bounded in time and the servers are stopped on exit. Prints the count of each status per
phase and a verdict per fault; exits 1 if any fault does not behave as expected.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from fault_client import Answer, Load, call, summary
from fault_services import (
    gateway_serve,
    gateway_setup,
    log_problems,
    manage,
    postgres_server,
    redis_server,
)
from server import bench_env, temporary_directory

SOURCE_TABLE = """
CREATE TABLE sales AS
SELECT i AS order_id,
       date '2024-01-01' + (i % 366) AS order_date,
       'Product ' || chr(65 + i % 8) AS product,
       (ARRAY['EU', 'US', 'APAC', 'LATAM'])[1 + i % 4] AS region,
       1 + i % 12 AS units,
       round(((i * 37) % 100000) / 100.0, 2)::float8 AS revenue
FROM generate_series(1, 5000) AS i;
ALTER TABLE sales ADD PRIMARY KEY (order_id);
"""
REGISTER_SOURCE = """
from datasets.sources import dataset_register, source_create
source = source_create(name="faults_pg", url={url!r}, statement_timeout=5)
dataset = dataset_register(source=source, table="sales", slug="pg_sales")
print(dataset.row_count)
"""
USAGE_BETWEEN = """
import datetime as dt
from keys.usage import usage_flush
from keys.models import UsageRecord
usage_flush()
start = dt.datetime.fromtimestamp({start}, tz=dt.UTC)
end = dt.datetime.fromtimestamp({end}, tz=dt.UTC)
print(UsageRecord.objects.filter(time__gte=start, time__lt=end, key_id={key_id!r}).count())
"""


def _key(env: dict, name: str, rate: str) -> str:
    return manage(env, "issue_key", name, "--all", "--rate", rate).strip().splitlines()[-1]


def _statuses(answers: list[Answer]) -> str:
    return " ".join(str(a.status) for a in answers)


def _phase(name: str, answers: list[Answer]) -> None:
    print(f"  {name:34s} {len(answers):5d} requests: {summary(answers)}")


def _wall(monotonic: float) -> float:
    """A time.monotonic() value as a Unix time (usage records store wall-clock times)."""
    return time.time() - (time.monotonic() - monotonic)


def fault_postgres_source(work: Path, args) -> bool:
    """(a) A PostgreSQL source stopped mid-load, then started again."""
    print("\n(a) PostgreSQL source stopped mid-load (pg_ctl stop -m immediate), then started again")
    with redis_server(work / "a-redis") as redis, postgres_server() as postgres:
        postgres.sql("postgres", "CREATE DATABASE source")
        postgres.sql("source", SOURCE_TABLE)
        env = bench_env(work / "a-gateway")
        env["REDIS_URL"] = redis.url
        gateway_setup(env)
        rows = (
            manage(env, script=REGISTER_SOURCE.format(url=postgres.url("source")))
            .strip()
            .splitlines()[-1]
        )
        print(
            f"  source: own cluster on 127.0.0.1:{postgres.port}, table sales, {rows} rows, statement timeout 5 s"
        )
        key = _key(env, "faults-a", "100000000/m")
        log = work / "a-gateway.log"
        with gateway_serve(env, key=key, log=log, workers=2) as gateway:
            urls = [
                gateway.url
                + "/api/v1/datasets/pg_sales/rows/?region=EU&ordering=-order_date&limit=20",
                gateway.url + "/api/v1/datasets/pg_sales/rows/1234/",
            ]
            with Load(
                urls,
                {"Authorization": f"Bearer {key}"},
                threads=4,
                max_seconds=args.up + args.down + args.back + 60,
            ) as load:
                began = time.monotonic()
                time.sleep(args.up)
                stopping = time.monotonic()
                postgres.stop("immediate")
                stopped = time.monotonic()
                time.sleep(1)
                health_down = call(gateway.url + "/healthz")
                time.sleep(max(0, args.down - 1))
                starting = time.monotonic()
                postgres.start()
                started = time.monotonic()
                time.sleep(args.back)
                ended = time.monotonic()
        problems = log_problems(log)
    # A request in flight when the stop begins is cut off with the others: it belongs to the stop.
    up = [a for a in load.between(began, stopping) if a.sent + a.seconds < stopping]
    stopping_answers = [a for a in load.between(began, stopped) if a not in up]
    down, restarting = load.between(stopped, starting), load.between(starting, started)
    back = load.between(started, ended)
    print(f"  stop took {stopped - stopping:.1f} s, start took {started - starting:.1f} s")
    _phase(f"up ({stopping - began:.0f} s)", up)
    _phase("in flight or sent while stopping", stopping_answers)
    _phase(f"down ({starting - stopped:.0f} s)", down)
    _phase("while starting", restarting)
    _phase(f"back ({ended - started:.0f} s)", back)
    print(
        f"  /healthz while the source is down: {health_down.status} (Django's database and cache are up)"
    )
    first_ok = next((a for a in back if a.status == 200), None)
    if first_ok is not None:
        after_first = [a for a in back if a.sent > first_ok.sent]
        print(f"  first 200 {first_ok.sent - started:.2f} s after the cluster accepted connections again; "
              f"answers after it: {summary(after_first)}")  # fmt: skip
    print(
        f"  server errors or worker deaths in Gateway's log: {len(problems)}"
        + "".join(f"\n    {p}" for p in problems[:5])
    )
    everything = up + stopping_answers + down + restarting + back
    ok = (
        all(a.status in (200, 503) for a in everything)
        and all(a.retry_after for a in everything if a.status == 503)
        and all(a.status == 200 for a in up)
        and down and all(a.status == 503 for a in down)
        and first_ok is not None
        and all(a.status == 200 for a in back if a.sent > first_ok.sent)
        and not problems
    )  # fmt: skip
    print(f"  verdict: {'as expected' if ok else 'NOT as expected'}")
    return ok


def fault_redis(work: Path, args) -> bool:
    """(b) The shared cache (Redis) stopped mid-load, then started again."""
    print("\n(b) Redis (the shared cache) killed mid-load, then started again (empty)")
    with redis_server(work / "b-redis") as redis:
        env = bench_env(work / "b-gateway")
        env["REDIS_URL"] = redis.url
        gateway_setup(env)
        manage(env, script="from datasets.demo import demo_load; demo_load(rows=10000)")
        key = _key(env, "faults-b", "100000000/m")
        limited = _key(env, "faults-b-limited", "5/m")
        revoked = _key(env, "faults-b-revoked", "100000000/m")
        manage(env, "revoke_key", revoked.split("_")[1])
        log = work / "b-gateway.log"
        row = "/api/v1/datasets/sales/rows/42/"
        with gateway_serve(env, key=key, log=log, workers=2) as gateway:

            def checks(label: str, limited_calls: int) -> dict:
                limited_answers = [
                    call(gateway.url + row, {"Authorization": f"Bearer {limited}"})
                    for _ in range(limited_calls)
                ]
                result = {
                    "healthz": call(gateway.url + "/healthz"),
                    "revoked": call(gateway.url + row, {"Authorization": f"Bearer {revoked}"}),
                    "no key": call(gateway.url + row),
                    "limited": limited_answers,
                }
                print(f"  {label}: /healthz {result['healthz'].status}; revoked key {result['revoked'].status} "
                      f"{result['revoked'].code}; no key {result['no key'].status}; key with rate 5/m, "
                      f"{limited_calls} calls: {_statuses(limited_answers)}")  # fmt: skip
                return result

            urls = [
                gateway.url + "/api/v1/datasets/sales/rows/?region=EU&ordering=-order_date",
                gateway.url + row,
                gateway.url
                + "/api/v1/datasets/sales/aggregate/?group_by=product&metrics=sum:revenue",
            ]
            with Load(
                urls,
                {"Authorization": f"Bearer {key}"},
                threads=4,
                max_seconds=args.up + args.down + args.back + 120,
            ) as load:
                began = time.monotonic()
                time.sleep(args.up)
                before = checks("checks before", 6)
                stopping = time.monotonic()
                redis.stop()
                stopped = time.monotonic()
                time.sleep(1)
                during = checks("checks while down", 8)
                time.sleep(max(0, args.down - 1))
                starting = time.monotonic()
                redis.start()
                started = time.monotonic()
                time.sleep(2)
                after = checks("checks once back", 6)
                time.sleep(max(0, args.back - 2))
                ended = time.monotonic()
            log_text = log.read_text(errors="replace") if log.exists() else ""
            usage_down = int(
                manage(
                    env,
                    script=USAGE_BETWEEN.format(
                        start=_wall(stopped), end=_wall(starting), key_id=key.split("_")[1]
                    ),
                ).split()[-1]
            )
        problems = log_problems(log)
    up = [a for a in load.between(began, stopping) if a.sent + a.seconds < stopping]
    down, back = load.between(stopped, starting), load.between(started, ended)
    _phase(f"up ({stopping - began:.0f} s)", up)
    _phase(f"down ({starting - stopped:.0f} s)", down)
    _phase(f"back ({ended - started:.0f} s)", back)
    rate_warnings = len(re.findall(r"Shared cache unavailable \(.*not enforced", log_text))
    generation_warnings = len(re.findall(r"Shared cache unavailable: reading", log_text))
    usage_warnings = len(re.findall(r"Usage buffer in Redis unavailable", log_text))
    print(f"  log while down: {rate_warnings} 'Shared cache unavailable (...) not enforced' warnings (keys/ratelimit.py), "
          f"{generation_warnings} 'Shared cache unavailable: reading ... from the database' (gatewaysite/generations.py), "
          f"{usage_warnings} 'Usage buffer in Redis unavailable' (keys/usage.py)")  # fmt: skip
    down_ok = sum(1 for a in down if a.status == 200)
    print(
        f"  usage records of the load's key for requests sent while Redis was down: {usage_down} (200 answers then: {down_ok})"
    )
    print(
        f"  server errors or worker deaths in Gateway's log: {len(problems)}"
        + "".join(f"\n    {p}" for p in problems[:5])
    )
    documented = {
        "calls still answered 200 while down": down and all(a.status == 200 for a in down),
        "revoked key refused while down (401)": during["revoked"].status == 401,
        "no key refused while down (401)": during["no key"].status == 401,
        "rate limit enforced before (5 x 200 then 429)": [a.status for a in before["limited"]]
        == [200] * 5 + [429],
        "rate limit not enforced while down (all 200)": all(
            a.status == 200 for a in during["limited"]
        ),
        "/healthz 503 naming the cache while down": during["healthz"].status == 503,
        "/healthz 200 once back": after["healthz"].status == 200,
        "rate limit enforced again once back (5 x 200 then 429)": [
            a.status for a in after["limited"]
        ]
        == [200] * 5 + [429],
        "calls 200 once back": back and all(a.status == 200 for a in back),
        "usage still recorded while down": usage_down >= down_ok > 0,
        "'not enforced' warning at most once a minute per process": 0
        < rate_warnings
        <= 2 * (1 + (starting - stopped) // 60),
        "no 500 and no worker death": not problems
        and all(a.status != 500 for a in up + down + back),
    }
    for claim, holds in documented.items():
        print(f"  {'yes' if holds else 'NO '}  {claim}")
    ok = all(documented.values())
    print(
        f"  verdict: {'as documented (docs/keys.md, When Redis is down)' if ok else 'NOT as documented'}"
    )
    return ok


def fault_two_instances(work: Path, args) -> bool:
    """(c) Two instances sharing PostgreSQL and Redis enforce one rate limit."""
    print(
        "\n(c) Two instances (two gunicorn processes, 2 workers each) sharing PostgreSQL and Redis, key rate 20/m"
    )
    with redis_server(work / "c-redis") as redis, postgres_server() as postgres:
        postgres.sql("postgres", "CREATE DATABASE gateway_faults")
        env = bench_env(work / "c-gateway", database_url=postgres.url("gateway_faults"))
        env["REDIS_URL"] = redis.url
        gateway_setup(env)
        manage(env, script="from datasets.demo import demo_load; demo_load(rows=1000)")
        log = work / "c-gateway.log"
        for attempt in (1, 2):
            key = _key(env, f"faults-c-{attempt}", "20/m")
            with (
                gateway_serve(env, key=key, log=log, workers=2) as first,
                gateway_serve(env, key=key, log=log, workers=2) as second,
            ):
                answers = []
                for number in range(30):
                    instance = (first, second)[number % 2]
                    answers.append(
                        (
                            number % 2,
                            call(
                                instance.url + "/api/v1/datasets/sales/rows/7/",
                                {"Authorization": f"Bearer {key}"},
                            ),
                        )
                    )
            statuses = [a.status for _, a in answers]
            # A fixed window can end during the 30 calls: then count again in a fresh window.
            if statuses == [200] * 20 + [429] * 10 or attempt == 2:
                break
            retry = (
                max(int(a.retry_after or 1) for _, a in answers if a.status == 429)
                if 429 in statuses
                else 1
            )
            print(
                f"  a rate window ended during the calls ({_statuses([a for _, a in answers])}); again in {retry} s"
            )
            time.sleep(retry + 1)
        problems = log_problems(log)
    print(f"  instances on {first.url} and {second.url}; calls alternate A, B, A, B ...")
    print("  " + " ".join(f"{'AB'[i]}:{a.status}" for i, a in answers))
    for index, name in enumerate("AB"):
        mine = [a for i, a in answers if i == index]
        print(f"  instance {name}: {summary(mine)}")
    limited = [a for _, a in answers if a.status == 429]
    retry_afters = sorted({int(a.retry_after) for a in limited if a.retry_after})
    print(f"  successes: {statuses.count(200)}; 429s: {len(limited)}, Retry-After on {sum(1 for a in limited if a.retry_after)} "
          f"(values {retry_afters[0] if retry_afters else '-'}..{retry_afters[-1] if retry_afters else '-'} s)")  # fmt: skip
    ok = (
        statuses == [200] * 20 + [429] * 10 and all(a.retry_after for a in limited) and not problems
    )
    print(f"  verdict: {'one limit across both instances' if ok else 'NOT as expected'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c", help="which faults: a, b, c (comma-separated)")
    parser.add_argument("--up", type=int, default=6, help="seconds of load before the fault")
    parser.add_argument("--down", type=int, default=10, help="seconds of load while it lasts")
    parser.add_argument("--back", type=int, default=10, help="seconds of load after it")
    args = parser.parse_args()
    print(f"Fault benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
    faults = {"a": fault_postgres_source, "b": fault_redis, "c": fault_two_instances}
    verdicts = {}
    with temporary_directory("gateway-faults-") as work:
        for name in args.only.split(","):
            verdicts[name] = faults[name.strip()](work, args)
    print(
        "\nSummary: "
        + ", ".join(f"({name}) {'ok' if ok else 'FAILED'}" for name, ok in verdicts.items())
    )
    sys.exit(0 if all(verdicts.values()) else 1)


if __name__ == "__main__":
    main()
