"""Real server processes for system tests: runserver or gunicorn on a free 127.0.0.1 port.

Each test gets its own data directory; commands run as other processes with the same
environment, as an admin's shell or a cron job would.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.services import POSTGRES_URL, REDIS_URL

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(data_dir: Path, **variables: str) -> dict[str, str]:
    """This process's environment without Gateway's settings, plus a data directory and these."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GATEWAY_") and name not in ("DATABASE_URL", "REDIS_URL")
    }
    environment.update(
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_ENV_FILE=str(data_dir / "absent.env"),
        DJANGO_SETTINGS_MODULE="gatewaysite.settings",
        PYTHONUNBUFFERED="1",
        **variables,
    )
    return environment


def manage(environment: dict, *args: str, stdin: str | None = None) -> str:
    """Run `manage.py ARGS` in another process; its standard output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def get(port: int, path: str, raw_key: str | None = None) -> tuple[int, dict, dict]:
    """GET a path: status, headers and the JSON body."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if raw_key:
        request.add_header("Authorization", f"Bearer {raw_key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def _wait_until_up(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server on {port} exited: {log.read_text()}")
        with contextlib.suppress(OSError):
            if get(port, "/healthz")[0] == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"server on {port} did not answer within 60 s: {log.read_text()}")


@contextlib.contextmanager
def server_process(
    environment: dict, *, gunicorn_workers: int = 0
) -> Iterator[tuple[int, subprocess.Popen]]:
    """A server on a free port (runserver, or gunicorn with that many workers): (port, process)."""
    port = free_port()
    if gunicorn_workers:
        command = [GUNICORN, "-c", "gatewaysite/gunicorn.py", "gatewaysite.wsgi:application"]
        environment = {
            **environment,
            "GATEWAY_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(gunicorn_workers),
        }
    else:
        command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    log = Path(environment["GATEWAY_DATA_DIR"]) / f"server-{port}.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_up(port, server, log)
        yield port, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@contextlib.contextmanager
def running(environment: dict, *, gunicorn_workers: int = 0) -> Iterator[int]:
    """A server on a free port (runserver, or gunicorn with that many workers); yields the port."""
    with server_process(environment, gunicorn_workers=gunicorn_workers) as (port, _):
        yield port


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for Gateway's own tables; its URL. Dropped on exit."""
    name = f"gateway_system_{uuid.uuid4().hex[:12]}"
    admin_url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class TcpProxy:
    """A TCP proxy on a free 127.0.0.1 port to `target_port`, which a test can cut and restore:
    an object store that goes away, with the server behind it still running."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        if self._listener is not None:
            # shutdown() first: close() alone leaves a thread blocked in accept() listening.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


__all__ = ["REDIS_URL", "TcpProxy", "free_port", "get", "manage", "postgres_database", "running"]
