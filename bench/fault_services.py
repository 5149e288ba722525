"""Services the load, fault and peer benchmarks start for themselves, and stop on exit.

A Redis server and a PostgreSQL cluster (initdb) of their own, in a temporary folder on a free
port of 127.0.0.1, so that stopping them never touches the machine's shared services; and a
Gateway served by the production command whose log goes to a file (a pipe nobody reads would
block the workers once full, the moment a fault makes them log).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from server import PYTHON, ROOT, Gateway, free_port, wait_http

PG_USER = "postgres"  # initdb refuses to run as root: the cluster belongs to this system user


def _wait_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing answered on 127.0.0.1:{port} within {timeout} s")


@dataclass
class RedisServer:
    """A redis-server of our own: no persistence, loopback only."""

    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (again) on the same port, with an empty data set."""
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        _wait_port(self.port)

    def stop(self) -> None:
        """Stop it at once (SIGKILL: a crash, not a clean shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """A running redis-server of our own, killed on exit."""
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(port=free_port(), directory=directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise SystemExit(f"PostgreSQL's {name} is not installed (/usr/lib/postgresql/*/bin)")
    return found[-1]


def _as_pg_user(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        command = ["runuser", "-u", PG_USER, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result


@dataclass
class PostgresServer:
    """A PostgreSQL cluster of our own (trust authentication, loopback only, no fsync)."""

    port: int
    directory: Path

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        _as_pg_user([_pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-o", options, "-l", str(self.directory / "postgres.log"), "-w", "start"])  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (`immediate`: no shutdown checkpoint, every client cut off)."""
        with contextlib.suppress(SystemExit):
            _as_pg_user(
                [_pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop"]
            )

    def sql(self, database: str, statement: str) -> str:
        """Run SQL through psql as the superuser; returns its output."""
        return _as_pg_user([_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atq", "-c", statement]).stdout  # fmt: skip


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster made by initdb in a temporary folder of its own, removed on exit."""
    # Its own folder: the cluster's user must be able to reach it, and mkdtemp makes 0700 folders.
    directory = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(directory, PG_USER, PG_USER)
        _as_pg_user([_pg_bin("initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", "postgres", "--no-sync", "--no-instructions"])  # fmt: skip
        server = PostgresServer(port=free_port(), directory=directory)
        server.start()
        try:
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def manage(env: dict, *args: str, script: str | None = None) -> str:
    """Run manage.py in Gateway's environment `env` (a shell script with `script`); its stdout."""
    command = [PYTHON, "manage.py", *args]
    if script is not None:
        command += ["shell", "-v", "0", "-c", script]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        raise SystemExit(
            f"manage.py {' '.join(args) or 'shell'} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def gateway_setup(env: dict) -> None:
    """Migrate Django's database and collect static files."""
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "collectstatic", "--noinput", "-v0")


@contextlib.contextmanager
def gateway_serve(env: dict, *, key: str, log: Path, workers: int = 2) -> Iterator[Gateway]:
    """The production command (gunicorn -c gatewaysite/gunicorn.py) on a free port, its log in `log`."""
    port = free_port()
    server_env = dict(env, GATEWAY_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY=str(workers))
    with open(log, "ab") as log_file:
        process = subprocess.Popen(
            [str(Path(PYTHON).with_name("gunicorn")), "-c", "gatewaysite/gunicorn.py", "--access-logfile", "/dev/null", "gatewaysite.wsgi:application"],
            cwd=ROOT, env=server_env, stdout=log_file, stderr=log_file, start_new_session=True,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        yield Gateway(url=f"http://127.0.0.1:{port}", key=key, env=server_env, process=process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def worker_pids(master_pid: int) -> list[int]:
    """The gunicorn workers of a master process."""
    output = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout
    return sorted(int(pid) for pid in output.split())


def rss_kb(pid: int) -> int:
    """Resident memory of one process in kB (0 once it is gone)."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def log_problems(log: Path) -> list[str]:
    """Lines of a Gateway log that show a server error or a dead worker."""
    markers = (
        "Traceback",
        "Internal Server Error",
        "WORKER TIMEOUT",
        "exited with code",
        "was sent SIGKILL",
    )
    if not log.exists():
        return []
    return [
        line
        for line in log.read_text(errors="replace").splitlines()
        if any(m in line for m in markers)
    ]
