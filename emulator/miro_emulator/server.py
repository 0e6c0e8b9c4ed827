"""Serves an Emulator over real HTTP on 127.0.0.1 from a daemon thread."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from miro_emulator.app import RESET, SCIM_PREFIX, Emulator
from miro_emulator.config import EmulatorConfig
from miro_emulator.http import Request, Response
from miro_emulator.state import OrgState

IDLE_CONNECTION_TIMEOUT_S = 30.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive clients must not hold stop() hostage

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def close_open_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.open_connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "miro-emulator"
    sys_version = ""
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.open_connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log lives in /_emulator/stats."""

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        outcome = self.server.emulator.handle(request)
        if outcome is RESET:
            self._reset()
            return
        assert isinstance(outcome, Response)
        self._send(outcome)

    def _send(self, response: Response) -> None:
        payload = response.encoded()
        self.send_response(response.status)
        if payload:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN: a real connection reset.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _dispatch  # noqa: N815


class RunningEmulator:
    """A served emulator. Use as a context manager or call stop()."""

    def __init__(self, emulator: Emulator, server: _Server) -> None:
        self.emulator = emulator
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="miro-emulator", daemon=True
        )
        self._thread.start()
        host, port = server.server_address[:2]
        self.port = int(port)
        self.base_url = f"http://{host!s}:{self.port}"
        self.scim_url = self.base_url + SCIM_PREFIX
        emulator.scim_base_for_links = self.scim_url
        self._stopped = False

    @property
    def config(self) -> EmulatorConfig:
        return self.emulator.config

    @property
    def org_id(self) -> str:
        return self.emulator.config.org_id

    @property
    def token(self) -> str:
        return self.emulator.config.token

    @property
    def scim_token(self) -> str:
        return self.emulator.config.scim_token

    @property
    def state(self) -> OrgState:
        return self.emulator.state

    def stats(self) -> dict[str, Any]:
        return self.emulator.stats()

    def set_faults(self, profile: str) -> None:
        self.emulator.set_fault_profile(profile)

    def wait_for_deliveries(self, count: int, timeout_s: float = 10.0) -> bool:
        return self.emulator.deliveries.wait(count, timeout_s)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.close_open_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.emulator.close()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start_emulator(
    config: EmulatorConfig | None = None, port: int = 0, host: str = "127.0.0.1"
) -> RunningEmulator:
    """Build the org and serve it; port 0 picks a free port."""
    emulator = Emulator(config or EmulatorConfig())
    try:
        server = _Server((host, port), emulator)
    except OSError:
        emulator.close()
        raise
    return RunningEmulator(emulator, server)
