"""Loopback stand-ins for AWS: AWS's own DynamoDB Local (Java) where Java is present, moto server for
SQS, Secrets Manager, SSM and EventBridge (and for DynamoDB when Java is missing), and a small Lambda
Invoke API that records asynchronous self-invocations so the runner can play them after the current one."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess  # nosec B404  # starts the local servers, fixed command lines
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miro_sync_cli.local.errors import LocalStackError

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DYNAMODB_LOCAL_DIR = Path(
    os.environ.get("MIRO_SYNC_DYNAMODB_LOCAL_DIR", PROJECT_ROOT / ".local" / "dynamodb")
)
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",  # nosec B105  # a placeholder the loopback stand-ins accept
    "AWS_SESSION_TOKEN": "local",  # nosec B105  # a placeholder the loopback stand-ins accept
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when this process dies, even by SIGKILL, so no server outlives us."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_until_listening(
    port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise LocalStackError(f"local server on port {port} exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise LocalStackError(f"local server on port {port} did not start within {timeout_s:.0f} s")


class DynamoDBLocal:
    """AWS's DynamoDB Local jar in a child process, in memory (or on disk with `data_dir`)."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("java") is not None and (DYNAMODB_LOCAL_DIR / "DynamoDBLocal.jar").is_file()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DynamoDBLocal:
        storage = ["-inMemory"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-sharedDb", "-dbPath", str(self.data_dir.resolve())]
        command = [
            "java",
            "-Xmx512m",
            f"-Dmiro_sync.owner_pid={os.getpid()}",  # lets anyone tell whose server this is
            "-Djava.library.path=DynamoDBLocal_lib",
            "-jar",
            "DynamoDBLocal.jar",
            *storage,
            "-port",
            str(self.port),
        ]
        self._process = subprocess.Popen(  # nosec B603  # noqa: S603 - fixed command line, no shell
            command,
            cwd=DYNAMODB_LOCAL_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        try:
            _wait_until_listening(self.port, 30, self._process)
        except LocalStackError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None


class MotoServer:
    """moto's threaded server on 127.0.0.1 (real HTTP, in this process)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        # werkzeug otherwise installs its own handler and prints a line per request to moto server.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        _wait_until_listening(self.port, 30)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@dataclass
class AsyncInvocation:
    function_name: str
    payload: dict[str, Any]


@dataclass
class LambdaInvokeApi:
    """Serves `POST /2015-03-31/functions/{name}/invocations` for InvocationType=Event and queues the
    payloads: in Lambda an async self-invocation starts a new container; locally the runner plays
    them in order after the invocation that queued them returns."""

    port: int = field(default_factory=free_port)
    pending: deque[AsyncInvocation] = field(default_factory=deque)
    _server: Any = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LambdaInvokeApi:
        from werkzeug.serving import make_server
        from werkzeug.wrappers import Request, Response

        @Request.application
        def application(request: Request) -> Response:
            parts = request.path.strip("/").split("/")
            if (
                request.method != "POST"
                or len(parts) != 4
                or parts[0] != "2015-03-31"
                or parts[3] != "invocations"
            ):
                return Response(json.dumps({"Type": "User", "message": "not supported locally"}), status=400)
            invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            if invocation_type != "Event":
                message = "the local stack only queues asynchronous (Event) self-invocations"
                return Response(json.dumps({"Type": "User", "message": message}), status=400)
            try:
                payload = json.loads(request.get_data() or b"{}")
            except json.JSONDecodeError:
                return Response(json.dumps({"Type": "User", "message": "payload is not JSON"}), status=400)
            self.pending.append(AsyncInvocation(function_name=parts[2], payload=payload))
            return Response(b"", status=202)

        self._server = make_server("127.0.0.1", self.port, application, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-lambda-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class LocalServers:
    """The running stand-ins and the endpoint environment that points boto3 at them."""

    dynamodb_url: str
    moto_url: str
    lambda_api: LambdaInvokeApi
    uses_dynamodb_local: bool

    def endpoint_environment(self) -> dict[str, str]:
        return {
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_url,
            "AWS_ENDPOINT_URL_LAMBDA": self.lambda_api.url,
        }


def _external_endpoint() -> str | None:
    """A user's own DynamoDB Local or LocalStack (AWS_ENDPOINT_URL) replaces both local servers."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


@contextlib.contextmanager
def local_servers(data_dir: Path | None = None, *, prefer_java: bool = True) -> Iterator[LocalServers]:
    """Start (and always stop) the loopback servers the local stack needs."""
    stack = contextlib.ExitStack()
    with stack:
        lambda_api = LambdaInvokeApi().start()
        stack.callback(lambda_api.stop)
        external = _external_endpoint()
        if external is not None:
            yield LocalServers(external, external, lambda_api, uses_dynamodb_local=False)
            return
        moto = MotoServer().start()
        stack.callback(moto.stop)
        if prefer_java and DynamoDBLocal.available():
            dynamodb = DynamoDBLocal(data_dir).start()
            stack.callback(dynamodb.stop)
            yield LocalServers(dynamodb.url, moto.url, lambda_api, uses_dynamodb_local=True)
        else:
            yield LocalServers(moto.url, moto.url, lambda_api, uses_dynamodb_local=False)


def wait_for_http(url: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()  # nosec B310  # noqa: S310 - loopback only
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError) as error:
            if time.monotonic() > deadline:
                raise LocalStackError(f"{url} did not answer: {error}") from error
            time.sleep(0.05)
