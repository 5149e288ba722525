"""docs/chatgpt.md "Try it with ChatGPT from your laptop": the settings it names do what it says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.docs.samples import DOCS

ROOT = DOCS.parent
SECTION = "## Try it with ChatGPT from your laptop"
TUNNEL = "https://quiet-river-lamp.trycloudflare.com"

# Run in a fresh process: settings are read once, at start-up, from the environment.
PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory

middleware = SecurityMiddleware(lambda request: None)
local = middleware.process_request(RequestFactory().get("/admin/", HTTP_HOST="127.0.0.1:8000"))
tunneled = middleware.process_request(
    RequestFactory().get(
        "/openapi.json", HTTP_HOST="quiet-river-lamp.trycloudflare.com",
        HTTP_X_FORWARDED_PROTO="https",
    )
)
print(json.dumps({
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "public_url": settings.GATEWAY_PUBLIC_URL,
    "behind_proxy": settings.GATEWAY_BEHIND_PROXY,
    "local_redirect": local["Location"] if local is not None else None,
    "tunneled_redirect": tunneled is not None,
}))
"""


def _section() -> str:
    text = (DOCS / "chatgpt.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def _settings_with(tmp_path: Path, **environment: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GATEWAY_") and key != "DJANGO_SETTINGS_MODULE"
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "gatewaysite.settings",
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_ENV_FILE": str(tmp_path / "none.env"),
        **environment,
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_every_setting_the_section_names_exists():
    named = set(re.findall(r"GATEWAY_[A-Z_]+", _section()))
    settings_source = (ROOT / "gatewaysite" / "settings.py").read_text()
    readme = (ROOT / "README.md").read_text()

    assert {"GATEWAY_PUBLIC_URL", "GATEWAY_LOGIN_RATE", "GATEWAY_ALLOWED_HOSTS"} <= named
    for name in named:
        assert f'"{name}"' in settings_source, f"{name} is not read by gatewaysite/settings.py"
        assert f"| `{name}` |" in readme, f"{name} is not in the README's settings table"


def test_the_tunnels_address_as_public_url_serves_it_and_redirects_local_http(tmp_path):
    served = _settings_with(tmp_path, GATEWAY_PUBLIC_URL=TUNNEL)

    assert served["public_url"] == TUNNEL
    # Its host is served without GATEWAY_ALLOWED_HOSTS, and the tunnel's https is trusted.
    assert "quiet-river-lamp.trycloudflare.com" in served["allowed_hosts"]
    assert served["behind_proxy"] is True
    assert served["tunneled_redirect"] is False
    # While it is set, http://127.0.0.1:8000 sends the browser to the tunnel's address.
    assert served["local_redirect"] == f"{TUNNEL}/admin/"


def test_without_the_public_url_local_http_is_served_as_before(tmp_path):
    served = _settings_with(tmp_path)

    assert served["public_url"] is None
    assert served["local_redirect"] is None
    assert "quiet-river-lamp.trycloudflare.com" not in served["allowed_hosts"]
