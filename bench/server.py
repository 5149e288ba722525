"""Shared pieces of the benchmarks: a Gateway served by the production command, and wrk runs.

Everything talks to 127.0.0.1 only, and every server started here is stopped on exit.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SETUP_SCRIPT = """
from datasets.demo import demo_load
from keys.services import api_key_issue
demo_load(rows={rows})
print(api_key_issue(name="bench", all_datasets=True, rate="{rate}").raw_key)
"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    """Wait until `url` answers, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


@dataclass
class Gateway:
    """A running Gateway: its base URL, a key, and its environment."""

    url: str
    key: str
    env: dict
    process: subprocess.Popen


def bench_env(data_dir: Path, *, redis_db: int = 9, database_url: str | None = None) -> dict:
    """The environment of a benchmarked Gateway: its own data dir, Redis db and database."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        GATEWAY_DATA_DIR=str(data_dir),
        REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
        DJANGO_SETTINGS_MODULE="gatewaysite.settings",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def prepare(env: dict, *, rows: int, rate: str = "100000000/m") -> str:
    """Migrate, load the demo with `rows` rows, and issue a key; returns the raw key."""
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    subprocess.run(
        [PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    result = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", SETUP_SCRIPT.format(rows=rows, rate=rate)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def serve(env: dict, *, key: str, workers: int = 2) -> Iterator[Gateway]:
    """The production command (gunicorn, sync workers) on a free port, stopped on exit."""
    port = free_port()
    server_env = dict(env, GATEWAY_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY=str(workers))
    # The server's log goes to a file: a pipe nobody reads would block the workers once full.
    log = open(Path(env["GATEWAY_DATA_DIR"]) / "gunicorn.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [str(Path(PYTHON).with_name("gunicorn")), "-c", "gatewaysite/gunicorn.py", "--access-logfile", "/dev/null", "gatewaysite.wsgi:application"],
        cwd=ROOT, env=server_env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield Gateway(url=f"http://127.0.0.1:{port}", key=key, env=server_env, process=process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@contextlib.contextmanager
def temporary_directory(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class WrkResult:
    """What wrk measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def line(self) -> str:
        return f"{self.requests_per_second:9.1f} req/s   p50 {self.p50_ms:7.2f} ms   p99 {self.p99_ms:8.2f} ms   errors {self.errors}"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise SystemExit(f"wrk printed a latency this script does not read: {text!r}")
    number, unit = match.groups()
    return float(number) * _UNITS[unit]


LUA_RANDOM_ID = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format(wrk.path, math.random(1, {max_id})))
end
"""


def wrk(
    url: str,
    *,
    headers: dict[str, str],
    connections: int = 8,
    seconds: int = 10,
    random_id_max: int | None = None,
) -> WrkResult:
    """Run wrk against `url` (with %d in it and random_id_max: a random id on every request)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    command = [
        "wrk",
        "--latency",
        "-t",
        str(min(connections, 2)),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if random_id_max:
            script.write(
                LUA_RANDOM_ID.format(max_id=random_id_max).replace("wrk.path", f'"{_path(url)}"')
            )
        else:
            script.write("")
    if random_id_max:
        command += ["-s", script.name]
    command.append(url.replace("%d", "1"))
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    os.unlink(script.name)
    output = result.stdout
    if "Requests/sec" not in output or "50%" not in output:
        raise SystemExit(f"wrk gave no figures for {url}:\n{output}\n{result.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1))
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(rps, p50, p99, requests, errors)


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    pids = [pid] + [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    for one in pids:
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024
