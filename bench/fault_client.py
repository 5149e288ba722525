"""A small threaded HTTP client for the fault benchmarks: every answer kept, with its time.

wrk only counts; a fault test needs each answer's status, Retry-After and error code, and the
moment it was asked, to sort the answers into the phases of the fault (before, during, after).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    """One request: when it was sent, its status (0: no answer), Retry-After, error code, duration."""

    sent: float
    status: int
    retry_after: str | None
    code: str
    seconds: float


def call(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> Answer:
    """GET `url` once on a new connection (gunicorn's sync workers close it after each answer)."""
    parts = urlsplit(url)
    sent = time.monotonic()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {}
        )
        response = connection.getresponse()
        body = response.read()
        code = ""
        if response.status >= 400:
            try:
                code = json.loads(body)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "(not the error shape)"
        return Answer(
            sent, response.status, response.getheader("Retry-After"), code, time.monotonic() - sent
        )
    except (OSError, http.client.HTTPException) as error:
        return Answer(sent, 0, None, type(error).__name__, time.monotonic() - sent)
    finally:
        connection.close()


class Load:
    """`threads` clients calling `urls` in turn as fast as answers come, until stop()."""

    def __init__(
        self,
        urls: list[str],
        headers: dict[str, str],
        *,
        threads: int = 4,
        max_seconds: float = 120,
    ):
        self.urls, self.headers, self.answers = urls, headers, []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + max_seconds  # never runs on by itself
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)
        ]

    def _run(self, number: int) -> None:
        turn = number
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            answer = call(self.urls[turn % len(self.urls)], self.headers)
            turn += 1
            with self._lock:
                self.answers.append(answer)
            if answer.status == 0:
                time.sleep(0.05)  # a refused connection returns at once: do not spin

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def between(self, start: float, end: float) -> list[Answer]:
        """Answers to the requests sent from `start` to `end` (time.monotonic())."""
        with self._lock:
            return [a for a in self.answers if start <= a.sent < end]


def summary(answers: list[Answer]) -> str:
    """'200: 812, 503 source_unavailable: 40 (Retry-After on 40)' and the slowest answer."""
    if not answers:
        return "no requests"
    counts = Counter((a.status, a.code) for a in answers)
    parts = []
    for (status, code), count in sorted(counts.items()):
        label = f"{status} {code}".strip() if status else f"no answer ({code})"
        if status in (429, 503):
            with_header = sum(
                1 for a in answers if a.status == status and a.code == code and a.retry_after
            )
            label += f" (Retry-After on {with_header})"
        parts.append(f"{label}: {count}")
    slowest = max(a.seconds for a in answers)
    return ", ".join(parts) + f"; slowest {slowest * 1000:.0f} ms"
