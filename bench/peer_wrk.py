"""wrk with a Lua script that picks each request's path and counts the statuses it gets back.

bench/server.py's wrk() runs one URL (or one URL with a random id); this runs a weighted mix of
paths, each with an optional random id, and reports how many responses had each status, which
wrk itself only summarises as "Non-2xx or 3xx responses".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field

from server import WrkResult

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}

# Each thread keeps its own status counts; done() (in the main Lua state) collects them.
LUA_MIX = """
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
  table.insert(threads, thread)
end
function init(args)
  statuses = {}
  math.randomseed(os.time() * 1000 + thread_number * 7919)
end
local paths = { PATHS }
local random_max = RANDOM_MAX
request = function()
  local path = paths[math.random(1, #paths)]
  if string.find(path, "%%d") then
    path = string.format(path, math.random(1, random_max))
  end
  return wrk.format("GET", path)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("STATUS %d %d\\n", status, count))
    end
  end
end
"""


@dataclass
class MixResult:
    """What wrk measured, with the count of each status."""

    result: WrkResult
    statuses: Counter = field(default_factory=Counter)
    socket_errors: int = 0


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_mix_command(
    base_url: str,
    *,
    paths: list[str],
    headers: dict[str, str],
    connections: int,
    seconds: int,
    random_max: int = 1,
    threads: int = 2,
) -> tuple[list[str], str]:
    """The wrk command line and its Lua script file (delete it after the run)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    script = LUA_MIX.replace("PATHS", ", ".join(_lua_string(p) for p in paths)).replace(
        "RANDOM_MAX", str(random_max)
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    command = ["wrk", "--latency", "-t", str(min(threads, connections)), "-c", str(connections)]
    command += ["-d", f"{seconds}s", "--timeout", "10s", "-s", handle.name]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    return command + [base_url + "/"], handle.name


def wrk_mix_parse(output: str) -> MixResult:
    """The figures of a wrk run made by wrk_mix_command."""
    if "Latency Distribution" not in output:
        raise SystemExit(f"wrk did not report latencies:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1))
    statuses = Counter()
    for status, count in re.findall(r"^STATUS (\d+) (\d+)$", output, re.MULTILINE):
        statuses[int(status)] += int(count)
    socket_errors = 0
    found = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if found:
        socket_errors = sum(int(n) for n in found.groups())
    non_2xx = sum(count for status, count in statuses.items() if not 200 <= status < 300)
    result = WrkResult(rps, p50, p99, requests, non_2xx + socket_errors)
    return MixResult(result=result, statuses=statuses, socket_errors=socket_errors)


def wrk_mix(base_url: str, **options) -> MixResult:
    """Run wrk with a mix of paths (see wrk_mix_command) and parse its output."""
    command, script = wrk_mix_command(base_url, **options)
    try:
        seconds = options["seconds"]
        run = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(script)
    return wrk_mix_parse(run.stdout + run.stderr)


def wrk_one(
    url: str, *, headers: dict[str, str], connections: int, seconds: int, random_max: int = 1
) -> MixResult:
    """wrk on one URL (a %d in it takes a random id from 1 to random_max on every request)."""
    base, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    return wrk_mix(f"{base}://{host}", paths=["/" + path], headers=headers, connections=connections,
                   seconds=seconds, random_max=random_max)  # fmt: skip
