"""The production server's configuration: gunicorn -c gatewaysite/gunicorn.py gatewaysite.wsgi:application."""

import os
import sys
from pathlib import Path

from dotenv import load_dotenv

# The same .env file as the settings read, so REDIS_URL set there counts here too.
load_dotenv(os.environ.get("GATEWAY_ENV_FILE") or Path(__file__).resolve().parent.parent / ".env")

bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = 60
# Workers are replaced now and then (staggered): DuckDB keeps memory it allocated for queries,
# and a fresh worker returns it.
max_requests = int(os.environ.get("GATEWAY_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
accesslog = "-"
# Gunicorn's default line, plus the worker that answered (pid): calls of one client are spread
# over every worker, since nothing is kept per session.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" pid=%(p)s'

if workers > 1 and not os.environ.get("REDIS_URL"):
    # Without a shared cache each worker would keep its own rate-limit counters.
    sys.exit(
        "Refusing to start: WEB_CONCURRENCY > 1 needs REDIS_URL (rate limits and caches are shared through Redis)."
    )
