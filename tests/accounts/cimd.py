"""Client ID metadata documents in tests: a local server on 127.0.0.1 that serves them, and a
fetcher that reads `https://127.0.0.1:<port>/...` documents from it over plain http.

django-oauth-toolkit's own fetcher (the one Gateway uses) reads https from public addresses
only; tests cannot reach such an address, so they swap the fetcher in (CIMD_METADATA_FETCHER)
and keep everything else: the document checks, the stored client and the authorization flow.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import urllib3
from oauth2_provider.cimd import CIMDError, SafeMetadataFetcher
from oauth2_provider.settings import oauth2_settings


class LoopbackMetadataFetcher(SafeMetadataFetcher):
    """Reads a document of 127.0.0.1 over http, with the same size, type and time bounds."""

    def fetch(self, client_id):
        parts = urlsplit(client_id)
        if parts.hostname != "127.0.0.1":
            raise CIMDError("tests fetch documents from 127.0.0.1 only")
        timeout = oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS
        pool = urllib3.HTTPConnectionPool(
            "127.0.0.1", parts.port, timeout=urllib3.Timeout(total=timeout), retries=False
        )
        try:
            response = pool.urlopen("GET", parts.path, redirect=False, preload_content=False)
            try:
                return self._read_document(response)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as error:
            raise CIMDError(f"could not fetch client_id document: {error}") from error
        finally:
            pool.close()


@contextlib.contextmanager
def metadata_server(documents: dict[str, dict]) -> Iterator[str]:
    """Serve `documents` (path -> JSON object) on 127.0.0.1; yields `https://127.0.0.1:<port>`,
    the base of their client ids. A document's `client_id` may use `{base}`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            document = documents.get(self.path)
            if document is None:
                self.send_error(404)
                return
            body = json.dumps(document).replace("{base}", base).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
